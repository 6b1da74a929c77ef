"""Where each Raindrop field is read from in a Segment event: ordered lists of dotted paths.

The defaults are the product's contract (docs/wire.md §3); ``FIELD_PATHS`` (CDK context
``fieldPaths``) replaces the list of any field, so a team can keep its own property names. The
first path that holds a usable value wins. Paths are split once per configuration (see
:class:`FieldPaths`), not once per event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

Path = tuple[str, ...]

DEFAULT_FIELD_PATHS: Final[dict[str, tuple[str, ...]]] = {
    "event_id": ("properties.trace_id", "messageId"),
    "user_id": ("userId", "anonymousId"),
    "timestamp": ("timestamp", "originalTimestamp", "receivedAt", "sentAt"),
    "ai_data.input": ("properties.ai_data.input",),
    "ai_data.output": ("properties.ai_data.output",),
    "ai_data.model": ("properties.ai_data.model", "properties.model"),
    "ai_data.convo_id": ("properties.ai_data.convo_id", "properties.convo_id"),
    "attachments": ("properties.attachments",),
    "signal.event_id": ("properties.trace_id",),
    "signal.signal_name": ("properties.signal_name",),
    "signal.signal_type": ("properties.signal_type",),
    "signal.sentiment": ("properties.sentiment",),
    "signal.attachment_id": ("properties.attachment_id",),
}
"""Raindrop field → the Segment paths it is read from, in order."""

# A segment is a property name as written: anything but a dot, and no surrounding spaces
# (a copy-paste slip that would silently never match).
_SEGMENT = re.compile(r"[^.\s](?:[^.]*[^.\s])?")
_MAX_PATHS_PER_FIELD: Final = 20


def validate_field_paths(value: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``value`` checked: every field known, every list non-empty, every path well formed.

    Raises ValueError naming the field and the path, never anything from an event.
    """
    checked: dict[str, tuple[str, ...]] = {}
    for field, paths in value.items():
        if field not in DEFAULT_FIELD_PATHS:
            known = ", ".join(DEFAULT_FIELD_PATHS)
            raise ValueError(f"unknown Raindrop field {field!r} (known fields: {known})")
        if not paths:
            raise ValueError(f"{field}: needs at least one path")
        if len(paths) > _MAX_PATHS_PER_FIELD:
            raise ValueError(f"{field}: at most {_MAX_PATHS_PER_FIELD} paths")
        for path in paths:
            if not all(_SEGMENT.fullmatch(part) for part in path.split(".")):
                raise ValueError(
                    f"{field}: malformed path {path!r} (expected dot-separated names such as "
                    "properties.prompt)"
                )
        checked[field] = tuple(paths)
    return checked


Getter = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class FieldPaths:
    """Every field's paths, pre-split, and a getter per path: what the mapper runs for each
    event (a getter for a path of one, two or three names is a closure without a loop, which
    keeps the mapping about as fast as the fixed rules it replaced)."""

    paths: Mapping[str, tuple[Path, ...]]
    getters: Mapping[str, tuple[Getter, ...]]

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Sequence[str]]) -> FieldPaths:
        merged = {**DEFAULT_FIELD_PATHS, **overrides}
        paths = {field: tuple(_split(path) for path in given) for field, given in merged.items()}
        getters = {field: tuple(getter(path) for path in split) for field, split in paths.items()}
        return cls(paths, getters)

    def __getitem__(self, field: str) -> tuple[Path, ...]:
        return self.paths[field]

    def names(self, field: str) -> str:
        """The field's paths as configured, for reasons: ``a or b``."""
        return " or ".join(".".join(path) for path in self.paths[field])

    def property_keys(self, *fields: str) -> frozenset[str]:
        """Top-level property names that ``fields`` read from (``properties.X...``)."""
        return frozenset(
            path[1]
            for field in fields
            for path in self.paths[field]
            if len(path) > 1 and path[0] == "properties"
        )


def _split(path: str) -> Path:
    return tuple(path.split("."))


def getter(path: Path) -> Getter:
    """A function giving the value at ``path`` in an event, or None (see :func:`lookup`)."""
    if len(path) == 1:
        (only,) = path
        return lambda event: event.get(only)
    if len(path) == 2:
        first, second = path

        def get_two(event: Mapping[str, Any]) -> Any:
            value = event.get(first)
            return value.get(second) if isinstance(value, dict) else None

        return get_two
    if len(path) == 3:
        first, second, third = path

        def get_three(event: Mapping[str, Any]) -> Any:
            value = event.get(first)
            if not isinstance(value, dict):
                return None
            value = value.get(second)
            return value.get(third) if isinstance(value, dict) else None

        return get_three
    return lambda event: lookup(event, path)


def lookup(event: Mapping[str, Any], path: Path) -> Any:
    """The value at ``path`` in ``event``, or None where the path leads nowhere."""
    value: Any = event
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
        if value is None:
            return None
    return value
