"""Raindrop items → Segment events: the inverse of the Segment → Raindrop mapping (wire.md §3).

- ``events/track`` → ``track`` named by the inverse of the rename table (``ai_interaction`` →
  ``AI Chat Completed``; other names unchanged), ``userId``, ``timestamp`` and ``properties``
  holding ``trace_id`` (the event_id), ``ai_data`` and ``attachments``;
- ``signals/track`` → ``track`` named by the first feedback event name, with ``trace_id``,
  ``signal_name``, ``signal_type``, ``sentiment``, ``attachment_id`` and the signal's own
  properties (``comment`` among them). A signal names no user: ``properties.user_id`` when it
  has one, else ``anonymousId`` = the AI event's id, so the signal still lands in Segment;
- ``users/identify`` → ``identify`` with the traits.

Every event carries ``context.library.name = "segment-raindrop"``, which the Segment → Raindrop
webhook filters ("originated in Raindrop"), and a ``messageId`` derived from the item, so a
resend (the SDK's retries, our retry queue, a replay) is dropped by Segment rather than counted
twice. Events over Segment's 32 KB have their longest texts cut, with a marker.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from segment_raindrop.core import codec
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import MIRROR_LIBRARY_NAME, SEGMENT_MAX_EVENT_BYTES
from segment_raindrop.core.raindrop_api import Endpoint

TRUNCATION_MARKER = "…[truncated by segment-raindrop]"
# Texts shorter than this are not worth cutting: the marker would make them longer.
_MIN_CUTTABLE = 2 * len(TRUNCATION_MARKER)
# Texts cut per event before the last resort (its properties cut down to its ids).
_MAX_CUTS = 64
_AI_FIELDS = ("model", "input", "output", "convo_id")
_PREFERRED_FEEDBACK_NAME = "AI Feedback Submitted"


class NotMirrorable(ValueError):
    """The item lacks what a Segment event needs; the message says what, never the content."""


@dataclass(frozen=True, slots=True)
class SegmentEvent:
    payload: bytes  # compact UTF-8 JSON, at most SEGMENT_MAX_EVENT_BYTES when it could fit
    truncated: bool


def message_id(endpoint: Endpoint | str, item: dict[str, Any], *, revision: int = 1) -> str:
    """A stable id for the Segment event made from ``item``.

    A track is identified by its event_id (Raindrop de-duplicates on it, and a finished partial
    interaction is the same event as a track with its id); anything else, signals included, by
    its whole content: a resend of the same signal gets the same id (Segment drops it), two
    signals that differ in anything (a comment, a sentiment) get two. ``revision`` > 1 is a
    finished interaction sent again because a patch arrived after it finished: a new id, so
    Segment keeps the follow-up, the same for every resend of that revision.
    """
    endpoint = str(endpoint)
    if endpoint in (Endpoint.TRACK, Endpoint.TRACK_PARTIAL) and _text(item.get("event_id")):
        key: Any = [str(Endpoint.TRACK), item["event_id"]]
        if revision > 1:
            key.append(revision)
    else:
        key = [endpoint, item]
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sr-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def to_segment(
    endpoint: Endpoint,
    item: Any,
    mapping: MappingConfig,
    *,
    library_version: str = "",
    revision: int = 1,
) -> dict[str, Any]:
    """The Segment event for one Raindrop item (``revision``: see :func:`message_id`); raises
    :class:`NotMirrorable`."""
    if not isinstance(item, dict):
        raise NotMirrorable("item is not a JSON object")
    if endpoint in (Endpoint.TRACK, Endpoint.TRACK_PARTIAL):
        event = _track(item, mapping)
    elif endpoint is Endpoint.SIGNAL:
        event = _signal(item, mapping)
    elif endpoint is Endpoint.IDENTIFY:
        event = _identify(item)
    else:
        raise NotMirrorable(f"{endpoint.value} is not mirrored")
    event["messageId"] = message_id(endpoint, item, revision=revision)
    if revision > 1:
        # A follow-up of a finished interaction: the whole interaction again, latest revision.
        event.setdefault("properties", {})["mirror_revision"] = revision
    library = {"name": MIRROR_LIBRARY_NAME}
    if library_version:
        library["version"] = library_version
    event["context"] = {"library": library}
    return event


def _track(item: dict[str, Any], mapping: MappingConfig) -> dict[str, Any]:
    name = item.get("event")
    if not _text(name):
        raise NotMirrorable("track item has no event name")
    inverse = {raindrop: segment for segment, raindrop in mapping.event_renames.items()}
    properties = _properties(item)
    event_id = item.get("event_id")
    if _text(event_id):
        properties["trace_id"] = event_id
    ai_data = item.get("ai_data")
    if isinstance(ai_data, dict):
        kept = {key: ai_data[key] for key in _AI_FIELDS if ai_data.get(key) is not None}
        if kept:
            properties["ai_data"] = kept
    attachments = item.get("attachments")
    if isinstance(attachments, list) and attachments:
        properties["attachments"] = attachments
    event: dict[str, Any] = {
        "type": "track",
        "event": inverse.get(str(name), str(name)),
        "properties": properties,
    }
    _identity(event, user_id=item.get("user_id"), fallback=event_id)
    _timestamp(event, item)
    return event


def feedback_event_name(mapping: MappingConfig) -> str:
    """The Segment name signals are mirrored as: the guide's name when configured, else the
    first configured feedback name in sort order (a set has no other order)."""
    names = mapping.feedback_event_names
    if _PREFERRED_FEEDBACK_NAME in names or not names:
        return _PREFERRED_FEEDBACK_NAME
    return sorted(names)[0]


def _signal(item: dict[str, Any], mapping: MappingConfig) -> dict[str, Any]:
    event_id = item.get("event_id")
    if not _text(event_id):
        raise NotMirrorable("signal item has no event_id")
    properties = _properties(item)
    properties["trace_id"] = event_id
    for key in ("signal_name", "signal_type", "sentiment", "attachment_id"):
        value = item.get(key)
        if value is not None:
            properties[key] = value
    event: dict[str, Any] = {
        "type": "track",
        "event": feedback_event_name(mapping),
        "properties": properties,
    }
    _identity(event, user_id=properties.get("user_id"), fallback=event_id)
    _timestamp(event, item)
    return event


def _identify(item: dict[str, Any]) -> dict[str, Any]:
    user_id = item.get("user_id")
    if not _text(user_id):
        raise NotMirrorable("identify item has no user_id")
    traits = item.get("traits")
    event: dict[str, Any] = {
        "type": "identify",
        "userId": user_id,
        "traits": dict(traits) if isinstance(traits, dict) else {},
    }
    _timestamp(event, item)
    return event


def _properties(item: dict[str, Any]) -> dict[str, Any]:
    properties = item.get("properties")
    return dict(properties) if isinstance(properties, dict) else {}


def _identity(event: dict[str, Any], *, user_id: Any, fallback: Any) -> None:
    # Segment refuses an event with neither id.
    if _text(user_id):
        event["userId"] = user_id
    elif _text(fallback):
        event["anonymousId"] = fallback
    else:
        raise NotMirrorable("item names no user")


def _timestamp(event: dict[str, Any], item: dict[str, Any]) -> None:
    timestamp = item.get("timestamp")
    if _text(timestamp):
        event["timestamp"] = timestamp


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# --- Segment's 32 KB per event -----------------------------------------------------------------


def encode(event: dict[str, Any], *, max_bytes: int = SEGMENT_MAX_EVENT_BYTES) -> SegmentEvent:
    """``event`` as Segment takes it: when over ``max_bytes``, its longest texts are cut (each
    ending with :data:`TRUNCATION_MARKER`) until it fits; when what is left is still too large
    (numbers, many short texts), its properties and traits are cut down to its ids (the last
    resort, so that no copy stays undeliverable for good). ``event`` is changed in place."""
    payload = _dumps(event)
    if len(payload) <= max_bytes:
        return SegmentEvent(payload, truncated=False)
    payload = _cut_texts(event, payload, max_bytes)
    if len(payload) > max_bytes:
        _keep_ids_only(event)
        payload = _dumps(event)
    return SegmentEvent(payload, truncated=True)


# What the last resort keeps of a partial interaction's state: what names and links it.
_STATE_IDS = ("event_id", "user_id", "event", "timestamp", "is_pending")


def fit_state(state: dict[str, Any], *, max_bytes: int) -> bool:
    """Cut a partial interaction's merged ``state`` (a Raindrop item) in place to at most
    ``max_bytes`` of JSON as it is stored (:func:`codec.dumps`, where a lone surrogate is a
    6-byte escape), as :func:`encode` cuts an event: its longest texts first (Segment keeps at
    most 32 KB of the event made from it, so nothing it would keep is lost while ``max_bytes``
    is well above that), never its ids, then down to its ids. Whether anything was cut."""
    payload = _stored(state)
    if len(payload) <= max_bytes:
        return False
    payload = _cut_texts(state, payload, max_bytes, dump=_stored)
    if len(payload) > max_bytes:
        kept = {key: state[key] for key in _STATE_IDS if key in state}
        state.clear()
        state.update(kept, properties={"truncated": TRUNCATION_MARKER})
    return True


# What the last resort keeps of an event's properties: what links it to its AI event.
_LINKING_PROPERTIES = ("trace_id", "signal_name", "signal_type", "sentiment", "attachment_id")


def _keep_ids_only(event: dict[str, Any]) -> None:
    properties = event.get("properties")
    if isinstance(properties, dict):
        kept = {key: properties[key] for key in _LINKING_PROPERTIES if key in properties}
        event["properties"] = {**kept, "truncated": TRUNCATION_MARKER}
    if isinstance(event.get("traits"), dict):
        event["traits"] = {"truncated": TRUNCATION_MARKER}


def _cut_texts(
    event: dict[str, Any],
    payload: bytes,
    max_bytes: int,
    *,
    dump: Callable[[dict[str, Any]], bytes] | None = None,
) -> bytes:
    """Cut ``event``'s longest texts until its payload (``dump``, by default Segment's
    encoding) fits ``max_bytes`` or nothing long is left to cut; the payload it ends with."""
    dump = dump or _dumps
    for _ in range(_MAX_CUTS):
        excess = len(payload) - max_bytes
        if excess <= 0:
            break
        longest = max(
            _strings(event),
            key=lambda found: len(found[2].encode("utf-8", "replace")),
            default=None,
        )
        if longest is None or len(longest[2]) < _MIN_CUTTABLE:
            break
        container, key, text = longest
        # Cut by UTF-8 bytes: n bytes of text removed take at least n bytes off the JSON (its
        # escapes only ever add); the marker's bytes are made room for.
        encoded = text.encode("utf-8", errors="replace")
        keep = max(0, len(encoded) - excess - len(TRUNCATION_MARKER.encode()))
        container[key] = encoded[:keep].decode("utf-8", errors="ignore") + TRUNCATION_MARKER
        payload = dump(event)
    return payload


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


# Never cut: what names and links an event or item (Segment's and Raindrop's ids, at any depth).
_UNCUT_KEYS = frozenset(
    {"messageId", "type", "userId", "anonymousId", "event", "event_id", "user_id", "trace_id",
     "timestamp", "convo_id", "attachment_id"}
)  # fmt: skip


def _strings(value: Any) -> Iterator[tuple[Any, Any, str]]:
    """(container, key, text) of every string leaf but the ids, so it can be replaced in
    place."""
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, str):
                if key not in _UNCUT_KEYS:
                    yield value, key, child
            else:
                yield from _strings(child)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            if isinstance(child, str):
                yield value, index, child
            else:
                yield from _strings(child)


def _stored(state: dict[str, Any]) -> bytes:
    """``state`` as the partials table stores it (lone surrogates as 6-byte escapes)."""
    return codec.dumps(state).encode("utf-8")


def _dumps(event: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        # 1e400 in a Raindrop item parses as infinity, which JSON cannot write ("Infinity" is
        # not JSON, and Segment would refuse the whole batch): such a number becomes null.
        text = json.dumps(_finite(event), separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate (text cut mid-emoji) has no UTF-8 form: Segment gets U+FFFD's stand-in.
    return text.encode("utf-8", errors="replace")
