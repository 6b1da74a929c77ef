"""What Raindrop's ``/v1`` API accepts, checked independently of the forwarder's own models.

:func:`check_raindrop_items` is the receiver's ``validator`` in tests and local mode: a mistake
in the forwarder's pydantic models cannot hide itself when the items are checked by separate code
written from docs/wire.md §2.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = ["ENDPOINTS", "SINGLE_OBJECT_ENDPOINTS", "check_endpoint", "check_raindrop_items"]

ENDPOINTS: tuple[str, ...] = (
    "events/track",
    "signals/track",
    "users/identify",
    "events/track_partial",
    "traces",
)
"""The endpoint names, relative to the ``/v1`` base URL."""

SINGLE_OBJECT_ENDPOINTS: frozenset[str] = frozenset({"events/track_partial", "traces"})
"""Endpoints whose body is one JSON object (recorded as a one-item list), not an array."""


def check_endpoint(endpoint: str | None) -> None:
    """Raise ValueError unless ``endpoint`` is None (every endpoint) or one of ENDPOINTS."""
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")


# Presence rules are lenient where the public SDK is silent; types and enumerations are strict.

_ATTACHMENT_TYPES = frozenset({"code", "text", "image", "iframe"})
_ATTACHMENT_ROLES = frozenset({"input", "output", "context"})
_SIGNAL_TYPES = frozenset({"default", "standard", "feedback", "edit", "agent", "agent_internal"})
_SENTIMENTS = frozenset({"POSITIVE", "NEGATIVE"})


class _InvalidItemError(Exception):
    pass


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise _InvalidItemError(problem)


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_timestamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_common(item: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    for key in required:
        _require(_non_empty(item.get(key)), f"{key} must be a non-empty string")
    _require(_is_timestamp(item.get("timestamp")), "timestamp must be an ISO 8601 string")
    properties: dict[str, Any] = item.get("properties", {})
    _require(isinstance(properties, dict), "properties must be an object")
    return properties


def _check_event(item: dict[str, Any]) -> None:
    _check_common(item, ("event_id", "user_id", "event"))
    if "ai_data" in item:
        ai_data = item["ai_data"]
        _require(isinstance(ai_data, dict), "ai_data must be an object")
        for key in ("model", "input", "output", "convo_id"):
            _require(
                ai_data.get(key) is None or isinstance(ai_data[key], str),
                f"ai_data.{key} must be a string",
            )
        _require(
            _non_empty(ai_data.get("input")) or _non_empty(ai_data.get("output")),
            "ai_data needs a non-empty input or output",
        )
    # Raindrop's SDK sends "attachments": null when there are none.
    attachments = item.get("attachments") or []
    _require(isinstance(attachments, list), "attachments must be an array")
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        _require(isinstance(attachment, dict), f"{where} must be an object")
        _require(
            attachment.get("type") in _ATTACHMENT_TYPES,
            f"{where}.type must be one of {sorted(_ATTACHMENT_TYPES)}",
        )
        _require(isinstance(attachment.get("value"), str), f"{where}.value must be a string")
        _require(
            attachment.get("role", "input") in _ATTACHMENT_ROLES,
            f"{where}.role must be one of {sorted(_ATTACHMENT_ROLES)}",
        )
        _require(
            "attachment_id" not in attachment or _non_empty(attachment["attachment_id"]),
            f"{where}.attachment_id must be a non-empty string",
        )


def _check_signal(item: dict[str, Any]) -> None:
    properties = _check_common(item, ("event_id", "signal_name"))
    signal_type = item.get("signal_type", "default")
    _require(signal_type in _SIGNAL_TYPES, f"signal_type must be one of {sorted(_SIGNAL_TYPES)}")
    _require(
        signal_type != "feedback" or _non_empty(properties.get("comment")),
        "a feedback signal needs a non-empty properties.comment",
    )
    _require(
        signal_type != "edit" or _non_empty(properties.get("after")),
        "an edit signal needs a non-empty properties.after",
    )
    # Raindrop's SDK sends "attachment_id": null and "sentiment": null when not given.
    _require(
        item.get("attachment_id") is None or _non_empty(item["attachment_id"]),
        "attachment_id must be a non-empty string",
    )
    _require(
        item.get("sentiment") is None or item["sentiment"] in _SENTIMENTS,
        f"sentiment must be one of {sorted(_SENTIMENTS)}",
    )


def _check_identify(item: dict[str, Any]) -> None:
    _require(_non_empty(item.get("user_id")), "user_id must be a non-empty string")
    traits = item.get("traits", {})
    _require(isinstance(traits, dict), "traits must be an object")
    for key, value in traits.items():
        _require(
            isinstance(value, str | int | float | bool),
            f"traits.{key} must be a string, number or boolean",
        )


def _check_partial(item: dict[str, Any]) -> None:
    # Any subset of a track's fields; the event_id is the merge key.
    _require(_non_empty(item.get("event_id")), "event_id must be a non-empty string")
    _require(
        item.get("is_pending") is None or isinstance(item["is_pending"], bool),
        "is_pending must be a boolean",
    )


def _check_traces(item: dict[str, Any]) -> None:
    _require(isinstance(item.get("resourceSpans", []), list), "resourceSpans must be an array")


_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "events/track": _check_event,
    "events/track_partial": _check_partial,
    "traces": _check_traces,
    "signals/track": _check_signal,
    "users/identify": _check_identify,
}


def check_raindrop_items(endpoint: str, items: list[Any]) -> str | None:
    """A ``validator`` enforcing the item shapes of docs/wire.md §2.2; returns the first problem."""
    check = _CHECKS[endpoint]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"item {index} is not a JSON object"
        try:
            check(item)
        except _InvalidItemError as problem:
            return f"item {index}: {problem}"
    return None
