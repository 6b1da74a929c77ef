"""Reading Raindrop's fields out of a Segment event, along the paths FIELD_PATHS gives them.

The first path holding a usable value wins. Content that FIELD_PATHS reads from outside
``properties`` (a top-level ``prompt``, say) is redacted as it is read, so that no path configured
for it can carry it past redaction; ``properties`` are redacted whole by the mapper before they
are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from segment_raindrop.core.field_paths import FieldPaths, Getter
from segment_raindrop.core.mapping.items import InvalidEvent, validated
from segment_raindrop.core.mapping.values import (
    as_text,
    json_in_string,
    normalise_timestamp,
    properties_of,
    text,
)
from segment_raindrop.core.raindrop_api import AiData, Attachment
from segment_raindrop.core.redaction import Redactor

_AI_FIELDS = ("ai_data.input", "ai_data.output", "ai_data.model", "ai_data.convo_id")
# What an end user wrote or an app produced: redacted wherever FIELD_PATHS reads it from. Ids,
# names and timestamps are sent as they are.
_CONTENT_FIELDS = ("ai_data.input", "ai_data.output", "attachments")


class FieldReader:
    def __init__(self, paths: FieldPaths, redactor: Redactor) -> None:
        self.paths = paths
        self._get = _getters(paths, redactor)
        # Properties that ai_data paths read into: they may arrive as JSON text (the Classic
        # destination's string ai_data) and must be objects.
        self.ai_objects = frozenset(
            path[1]
            for name in _AI_FIELDS
            for path in paths[name]
            if len(path) > 2 and path[0] == "properties"
        )
        # What is sent as ai_data content or attachments is not repeated in properties.
        self._consumed = self.ai_objects | paths.property_keys(
            "ai_data.input", "ai_data.output", "attachments"
        )

    def decoded(self, event: dict[str, Any], *, ai_objects: bool) -> dict[str, Any]:
        """``event`` with its properties an object and, with ``ai_objects``, the objects that
        ai_data paths read into decoded when sent as JSON text (and checked to be objects)."""
        properties = properties_of(event)
        decoded: dict[str, Any] | None = None
        for key in self.ai_objects if ai_objects else ():
            value = properties.get(key)
            if isinstance(value, str):
                value = json_in_string(value, key)
                decoded = decoded if decoded is not None else dict(properties)
                decoded[key] = value
            if value is not None and not isinstance(value, dict):
                raise InvalidEvent(f"properties.{key} is not an object")
        if decoded is not None:
            return {**event, "properties": decoded}
        if event.get("properties") is None:
            return {**event, "properties": properties}
        return event

    def first(self, event: dict[str, Any], name: str) -> Any:
        """The first value present (not null) along the field's paths."""
        for get in self._get[name]:
            value = get(event)
            if value is not None:
                return value
        return None

    def first_text(self, event: dict[str, Any], name: str) -> str | None:
        for get in self._get[name]:
            found = text(get(event))
            if found is not None:
                return found
        return None

    def optional_user_id(self, event: dict[str, Any]) -> str | None:
        for get in self._get["user_id"]:
            value = get(event)
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
            found = text(value)
            if found is not None:
                return found
        return None

    def user_id(self, event: dict[str, Any]) -> str:
        user_id = self.optional_user_id(event)
        if user_id is None:
            raise InvalidEvent(f"event has no {self.paths.names('user_id')}")
        return user_id

    def event_id(self, event: dict[str, Any]) -> str:
        event_id = self.first_text(event, "event_id")
        if event_id is None:
            raise InvalidEvent(f"event has no {self.paths.names('event_id')}")
        return event_id

    def timestamp(self, event: dict[str, Any], unusable: list[str]) -> str:
        """The first usable timestamp's time; the paths passed over are added to ``unusable``,
        so a time taken from elsewhere does not go unnoticed."""
        passed_over: list[str] = []
        for path, get in zip(self.paths["timestamp"], self._get["timestamp"], strict=True):
            value = get(event)
            normalised = normalise_timestamp(value)
            if normalised is not None:
                unusable.extend(passed_over)
                return normalised
            if value is not None:
                passed_over.append(".".join(path))
        raise InvalidEvent("event has no valid timestamp")

    def ai_data(self, event: dict[str, Any]) -> AiData | None:
        content = {
            "model": as_text(self.first(event, "ai_data.model")),
            "input": self._ai_text(event, "ai_data.input"),
            "output": self._ai_text(event, "ai_data.output"),
            "convo_id": as_text(self.first(event, "ai_data.convo_id")),
        }
        if content["input"] is None and content["output"] is None:
            # Raindrop requires AI content in ai_data; an event without it is still an event.
            return None
        return validated(AiData, **content)

    def _ai_text(self, event: dict[str, Any], name: str) -> str | None:
        # Whitespace alone is no AI content: Raindrop refuses it, so the next path is tried.
        for get in self._get[name]:
            found = text(as_text(get(event)))
            if found is not None:
                return found
        return None

    def attachments(self, event: dict[str, Any]) -> tuple[list[Attachment] | None, int]:
        """The entries in Raindrop's attachment shape, and how many did not fit it."""
        raw = self.first(event, "attachments")
        if raw is None:
            return None, 0
        if not isinstance(raw, list):
            return None, 1
        kept: list[Attachment] = []
        for entry in raw:
            try:
                kept.append(Attachment.model_validate(entry))
            except ValidationError:
                continue
        return kept or None, len(raw) - len(kept)

    def remaining_properties(self, event: dict[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = event["properties"]
        consumed = self._consumed
        return {key: value for key, value in properties.items() if key not in consumed}


def _getters(paths: FieldPaths, redactor: Redactor) -> Mapping[str, tuple[Getter, ...]]:
    """Each field's getters; content read from outside ``properties`` is redacted as it is read."""
    getters = paths.getters
    if not redactor.active:
        return getters
    redacting = dict(getters)
    for name in _CONTENT_FIELDS:
        redacting[name] = tuple(
            get if path[0] == "properties" else _redacted(get, redactor)
            for path, get in zip(paths[name], getters[name], strict=True)
        )
    return redacting


def _redacted(get: Getter, redactor: Redactor) -> Getter:
    return lambda event: redactor.value(get(event))
