"""The mapping settings as cdk.json names them: each :class:`MappingConfig` field in camelCase
(``forwardEventPrefixes``...), read by the stack (``cdk synth -c``) and by
``segment-raindrop map -c`` alike, so a new mapping setting is declared once, in the model.

Values come as JSON from cdk.json and as text from the command line (``-c key=value``): a list
or an object given as text is decoded here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from segment_raindrop.core.config import ConfigError, MappingConfig, describe_errors
from segment_raindrop.core.environment import is_structured

MAPPING_KEYS: Final = {to_camel(name): name for name in MappingConfig.model_fields}
"""cdk.json context key -> MappingConfig field."""


def mapping_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping settings ``context`` gives, by field name, lists and objects decoded;
    raises :class:`ConfigError` naming the key of text that is not JSON."""
    values: dict[str, Any] = {}
    for key, value in context.items():
        name = MAPPING_KEYS.get(key)
        if name is None:
            continue
        values[name] = value
        if isinstance(value, str) and is_structured(MappingConfig.model_fields[name].annotation):
            try:
                values[name] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{key}: not valid JSON ({exc.msg})") from None
    return values


def mapping_from_context(
    context: Mapping[str, Any], *, base: Mapping[str, Any] | None = None
) -> MappingConfig:
    """``base`` (field values) with the settings ``context`` gives replacing whole fields;
    raises :class:`ConfigError` naming the keys."""
    values = {**(base or {}), **mapping_values(context)}
    try:
        return MappingConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, name=to_camel)) from None
