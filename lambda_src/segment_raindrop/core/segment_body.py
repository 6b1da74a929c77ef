"""Parsing what Segment sends (docs/wire.md §1.2).

Three shapes reach us: one event object (Webhooks Classic, or Actions without batching), a JSON
array (Actions with batching) and the ``{"batch": [...]}`` envelope of the HTTP Tracking API
that Segment's server libraries post. Only the body as a whole can be rejected here, and only
when it is not one of those shapes at all; judging each event is the mapper's job, so one bad
event never fails a request.

An event that is well-formed JSON but beyond what the forwarder can carry (nested deeper than
``codec.MAX_EVENT_DEPTH``, or holding an integer of more than ``codec.MAX_INT_DIGITS``
digits) becomes an :class:`UnparsedEvent` holding its raw text; the mapper marks it invalid
and it goes to the dead-letter queue with the others' failures.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from segment_raindrop.core import codec
from segment_raindrop.core.codec import UnparsedEvent

__all__ = [
    "BodyError",
    "BodyShape",
    "ParsedBody",
    "UnparsedEvent",
    "decode_text",
    "first_array_element_text",
    "is_single_element_array",
    "parse_body",
    "parse_document",
]

BodyShape = Literal["event", "array", "batch"]

_DECODER = json.JSONDecoder()
# For an element's extent only: numbers stay text, so one too long for int() is no error.
_SPAN_DECODER = json.JSONDecoder(parse_int=str, parse_float=str)
_WHITESPACE = " \t\n\r"
_SKIP_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Envelope members merged into every event (see _apply_envelope).
_SHARED_KEYS = ("context", "integrations")


class BodyError(ValueError):
    """The request body as a whole is unusable; the message says why (answered with 400)."""


@dataclass(frozen=True, slots=True)
class ParsedBody:
    events: list[Any]
    shape: BodyShape


def decode_text(raw: bytes | str) -> str:
    try:
        return codec.decode_text(raw)
    except codec.JsonError as exc:
        raise BodyError(f"body is {exc}") from None


def parse_body(raw: bytes | str) -> ParsedBody:
    try:
        document, depth_checked = codec.read(raw)
    except (codec.NestedTooDeeply, codec.NumberTooLong):
        return _parse_element_by_element(decode_text(raw))
    except codec.JsonError as exc:
        raise BodyError(f"body is {exc}") from None
    parsed = parse_document(document)
    if not depth_checked and any(
        codec.depth_exceeds(event, codec.MAX_EVENT_DEPTH) for event in parsed.events
    ):
        # Only the raw text tells where that event starts and ends: read it again, by element.
        return _parse_element_by_element(decode_text(raw))
    return parsed


def parse_document(document: Any) -> ParsedBody:
    if isinstance(document, list):
        return ParsedBody(events=document, shape="array")
    if isinstance(document, dict):
        batch = document.get("batch")
        if batch is None:
            return ParsedBody(events=[document], shape="event")
        if not isinstance(batch, list):
            raise BodyError("'batch' must be a JSON array of events")
        return ParsedBody(events=_apply_envelope(document, batch), shape="batch")
    raise BodyError(f"body must be a JSON object or array, not {_json_type(document)}")


def _apply_envelope(envelope: dict[str, Any], batch: list[Any]) -> list[Any]:
    """Envelope-level ``context`` and ``integrations`` are defaults for each event.

    Segment's tracking API lets libraries send shared context once per batch; an event's own
    keys win.
    """
    shared = {
        key: envelope[key]
        for key in _SHARED_KEYS
        if isinstance(envelope.get(key), dict) and envelope[key]
    }
    if not shared:
        return batch
    events: list[Any] = []
    for event in batch:
        if isinstance(event, dict):
            merged = dict(event)
            for key, defaults in shared.items():
                own = event.get(key)
                merged[key] = {**defaults, **own} if isinstance(own, dict) else defaults
            events.append(merged)
        else:
            events.append(event)
    return events


def first_array_element_text(text: str) -> str | None:
    """The raw text of element 0 of a JSON array, exactly as it appears in ``text``.

    Segment signs only the first element of a batched request, hashing JavaScript's
    serialisation of it; re-serialising in Python would format some numbers differently, so
    the verifier needs the original characters.
    """
    span = _first_array_element_span(text)
    return None if span is None else text[span[0] : span[1]]


def is_single_element_array(text: str) -> bool:
    """True when ``text`` is a JSON array of exactly one element (so element 0 is all of it)."""
    span = _first_array_element_span(text)
    return span is not None and text[span[1] :].strip(_WHITESPACE) == "]"


def _first_array_element_span(text: str) -> tuple[int, int] | None:
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if start >= len(text) or text[start] != "[":
        return None
    index = start + 1
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    if index >= len(text) or text[index] == "]":
        return None
    try:
        _, end = _SPAN_DECODER.raw_decode(text, index)
    except json.JSONDecodeError:
        return None
    except RecursionError:
        # Too deep to parse, yet Segment signed it: only its extent is needed.
        try:
            end = codec.container_end(text, index)
        except codec.JsonError:
            return None
    return index, end


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


# -- reading a body event by event -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Element:
    """A value read out of the body (or an UnparsedEvent) and where its text lies."""

    value: Any
    start: int
    end: int


def _parse_element_by_element(text: str) -> ParsedBody:
    """The body read one value at a time, so an event beyond the limits costs only itself.

    O(len(text)) besides reading each value: the scan between values is regular expressions
    and string functions, and a value too deep to read is measured by ``codec.container_end``.
    A body that is not JSON is still refused as a whole.
    """
    reader = codec.ElementReader()
    start = _skip(text, 0)
    if text.startswith("[", start):
        elements, end = _array(text, start, reader)
        parsed = ParsedBody([_within_limits(text, element) for element in elements], "array")
    elif text.startswith("{", start):
        parsed, end = _object(text, start, reader)
    else:
        # An integer too long to read: not an event, an array or an envelope.
        raise BodyError("body must be a JSON object or array, not a number")
    if _skip(text, end) != len(text):
        raise _syntax_error("Extra data", text, _skip(text, end))
    return parsed


def _array(text: str, start: int, reader: codec.ElementReader) -> tuple[list[_Element], int]:
    elements: list[_Element] = []
    index = _skip(text, start + 1)
    if text.startswith("]", index):
        return elements, index + 1
    while True:
        element = _read(text, index, reader)
        elements.append(element)
        index = _skip(text, element.end)
        if text.startswith(",", index):
            index = _skip(text, index + 1)
        elif text.startswith("]", index):
            return elements, index + 1
        else:
            raise _syntax_error("Expecting ',' delimiter", text, index)


def _object(text: str, start: int, reader: codec.ElementReader) -> tuple[ParsedBody, int]:
    """A body that is an object: one event, or an envelope whose ``batch`` is split."""
    members, batch, end = _members(text, start, reader)
    if batch is not None:
        return _envelope(text, members, batch), end
    if "batch" in members and members["batch"].value is not None:
        raise BodyError("'batch' must be a JSON array of events")
    event: dict[str, Any] = {}
    for key, member in members.items():
        if isinstance(member.value, UnparsedEvent):
            unparsed = UnparsedEvent.of(text[start:end], member.value.reason)
            return ParsedBody([unparsed], "event"), end
        event[key] = member.value
    return ParsedBody([_within_limits(text, _Element(event, start, end))], "event"), end


def _members(
    text: str, start: int, reader: codec.ElementReader
) -> tuple[dict[str, _Element], list[_Element] | None, int]:
    """The object's members, its ``batch`` split into elements when it is an array, and the
    index after the object."""
    members: dict[str, _Element] = {}
    batch: list[_Element] | None = None
    index = _skip(text, start + 1)
    if text.startswith("}", index):
        return members, batch, index + 1
    while True:
        if not text.startswith('"', index):
            raise _syntax_error("Expecting property name enclosed in double quotes", text, index)
        try:
            key, index = _DECODER.raw_decode(text, index)  # a string: no nesting, no numbers
        except json.JSONDecodeError as exc:
            raise _syntax_error(exc.msg, text, exc.pos) from None
        index = _skip(text, index)
        if not text.startswith(":", index):
            raise _syntax_error("Expecting ':' delimiter", text, index)
        index = _skip(text, index + 1)
        # As in any JSON object, a repeated key's last value counts.
        if key == "batch" and text.startswith("[", index):
            members.pop(key, None)
            batch, index = _array(text, index, reader)
        else:
            if key == "batch":
                batch = None
            element = members[key] = _read(text, index, reader)
            index = element.end
        index = _skip(text, index)
        if text.startswith(",", index):
            index = _skip(text, index + 1)
        elif text.startswith("}", index):
            return members, batch, index + 1
        else:
            raise _syntax_error("Expecting ',' delimiter", text, index)


def _envelope(text: str, members: dict[str, _Element], batch: list[_Element]) -> ParsedBody:
    envelope: dict[str, Any] = {}
    unusable: str | None = None  # why a shared member could not be read
    for key, member in members.items():
        if not isinstance(member.value, UnparsedEvent):
            envelope[key] = member.value
        elif key in _SHARED_KEYS:
            unusable = member.value.reason
    merged = _apply_envelope(envelope, [element.value for element in batch])
    events: list[Any] = []
    for element, event in zip(batch, merged, strict=True):
        if isinstance(event, dict) and unusable is not None:
            # Its shared context could not be read, so neither can the event Segment meant.
            events.append(UnparsedEvent.of(text[element.start : element.end], unusable))
        else:
            events.append(_within_limits(text, _Element(event, element.start, element.end)))
    return ParsedBody(events, "batch")


def _read(text: str, index: int, reader: codec.ElementReader) -> _Element:
    try:
        value, end = reader.read(text, index)
    except codec.NestedTooDeeply as exc:
        return _unparsed(text, index, exc.end, codec.TOO_DEEP)
    except codec.NumberTooLong as exc:
        return _unparsed(text, index, exc.end, codec.NUMBER_TOO_LONG)
    except codec.JsonError as exc:
        raise BodyError(f"body is {exc}") from None
    return _Element(value, index, end)


def _unparsed(text: str, start: int, end: int | None, reason: str) -> _Element:
    end = len(text) if end is None else end
    return _Element(UnparsedEvent.of(text[start:end], reason), start, end)


def _within_limits(text: str, element: _Element) -> Any:
    if codec.depth_exceeds(element.value, codec.MAX_EVENT_DEPTH):
        return UnparsedEvent.of(text[element.start : element.end], codec.TOO_DEEP)
    return element.value


def _skip(text: str, index: int) -> int:
    match = _SKIP_WHITESPACE.match(text, index)
    return index if match is None else match.end()


def _syntax_error(message: str, text: str, index: int) -> BodyError:
    where = json.JSONDecodeError(message, text, index)
    return BodyError(
        f"body is not valid JSON ({message} at line {where.lineno} column {where.colno})"
    )
