"""The Lambda environment contract: configuration to and from environment variables.

Written once, in both directions: the stack calls :func:`to_environment` to set each function's
variables, and a function calls :func:`read_config` on its first invocation. Every variable name
is a field alias of a model in :mod:`segment_raindrop.core.config`, so none is spelled twice.

Lists and objects are JSON: a comma-separated form could not express the default prefix
``"AI "`` with its meaningful trailing space.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from segment_raindrop.core.config import (
    ConfigError,
    DeliveryConfig,
    ForwarderConfig,
    MappingConfig,
    MirrorConfig,
    ReplayConfig,
    TelemetryConfig,
    describe_errors,
)

_M = TypeVar("_M", bound=BaseModel)
# Fields that are whole models of their own: their variables sit at the top level.
_NESTED: dict[str, type[BaseModel]] = {
    "mapping": MappingConfig,
    "delivery": DeliveryConfig,
    "mirror": MirrorConfig,
}


def _variables(model: type[BaseModel]) -> Iterator[tuple[str, str, Any]]:
    """(field name, variable name, annotation) of each field read from one variable."""
    for name, field in model.model_fields.items():
        if isinstance(field.validation_alias, str):
            yield name, field.validation_alias, field.annotation


def is_structured(annotation: Any) -> bool:
    """Whether a field of this type is a list or an object, written as JSON text."""
    # ``frozenset[str] | None`` (an optional list) is JSON like ``frozenset[str]``.
    if get_origin(annotation) in (Union, UnionType):
        return any(is_structured(arg) for arg in get_args(annotation))
    return get_origin(annotation) in (tuple, frozenset, dict, list, set)


def _read_values(env: Mapping[str, str], model: type[BaseModel]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for _, variable, annotation in _variables(model):
        raw = env.get(variable)
        if raw is None or raw.strip() == "":
            continue
        if is_structured(annotation):
            try:
                values[variable] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{variable}: not valid JSON ({exc.msg})") from None
        else:
            values[variable] = raw
    return values


def _variable(model: type[BaseModel]) -> Callable[[str], str]:
    def name(field: str) -> str:
        alias = model.model_fields[field].validation_alias if field in model.model_fields else None
        return alias if isinstance(alias, str) else field

    return name


def _validated(model: type[_M], values: dict[str, Any]) -> _M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, name=_variable(model))) from None


def _read(env: Mapping[str, str], model: type[_M]) -> _M:
    values = _read_values(env, model)
    for name, nested in _NESTED.items():
        if name in model.model_fields:
            values[name] = _validated(nested, _read_values(env, nested))
    return _validated(model, values)


def variable_names(model: type[BaseModel]) -> list[str]:
    """Every variable ``model`` is read from, its nested models' included."""
    names = [variable for _, variable, _ in _variables(model)]
    for name, nested in _NESTED.items():
        if name in model.model_fields:
            names += [variable for _, variable, _ in _variables(nested)]
    return names


def read_config(env: Mapping[str, str]) -> ForwarderConfig:
    """The functions' configuration from ``env``; raises :class:`ConfigError`."""
    return _read(env, ForwarderConfig)


def read_replay_config(env: Mapping[str, str]) -> ReplayConfig:
    """An operator's replay configuration from ``env`` (plus the CLI's own options)."""
    return _read(env, ReplayConfig)


def read_telemetry_config(env: Mapping[str, str]) -> TelemetryConfig:
    return _read(env, TelemetryConfig)


def read_mapping_config(env: Mapping[str, str]) -> MappingConfig:
    return _read(env, MappingConfig)


def to_environment(config: BaseModel) -> dict[str, str]:
    """The variables that :func:`read_config` turns back into ``config``.

    Fields set explicitly are written, defaults left unset are not: the stack sets every
    setting that comes from its context (so an operator reads them off the function), while
    Lambda's 4 KB of variables are not spent on the rest. ``None`` values are left out.
    """
    environment: dict[str, str] = {}
    for name, variable, annotation in _variables(type(config)):
        value = getattr(config, name)
        if value is None or name not in config.model_fields_set:
            continue
        environment[variable] = _text(value, structured=is_structured(annotation))
    for name in _NESTED:
        nested = getattr(config, name, None)
        if isinstance(nested, BaseModel):
            environment |= to_environment(nested)
    return environment


def _text(value: Any, *, structured: bool) -> str:
    if structured:
        if isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # repr: the shortest text that reads back as the same float (":g" keeps 6 digits).
        text = repr(value)
        return text.removesuffix(".0")
    return str(value)


def read_delivery_config(env: Mapping[str, str]) -> DeliveryConfig:
    return _read(env, DeliveryConfig)
