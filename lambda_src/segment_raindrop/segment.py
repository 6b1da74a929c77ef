"""Parsing what Segment sends (WIRE.md §1).

Three shapes reach us: one event object (Webhooks Classic, or Actions without batching), a JSON
array (Actions with batching) and the ``{"batch": [...]}`` envelope of the HTTP Tracking API
that Segment's server libraries post. Only the body as a whole can be rejected here; judging
each event is the mapper's job, so one bad event never fails a request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import pydantic_core

BodyShape = Literal["event", "array", "batch"]

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


class BodyError(ValueError):
    """The request body as a whole is unusable; the message says why (answered with 400)."""


class NestedTooDeeply(BodyError):
    """JSON nested deeper than Python's parser goes; no Raindrop item could hold it anyway."""


@dataclass(frozen=True, slots=True)
class ParsedBody:
    events: list[Any]
    shape: BodyShape


def decode_text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("body is not valid UTF-8") from None


def parse_body(raw: bytes | str) -> ParsedBody:
    return parse_document(load_json(raw))


def load_json(raw: bytes | str) -> Any:
    """``raw`` parsed as JSON; raises :class:`BodyError` saying what is wrong with it.

    pydantic's Rust parser goes first: it is about a third faster than the stdlib's on large
    batches. It refuses a few things JSON allows and Segment can send (a lone UTF-16 surrogate
    from a string cut mid-emoji, nesting past 200 levels); those take the stdlib's path,
    which also words the errors.
    """
    try:
        return pydantic_core.from_json(raw, allow_inf_nan=False)
    except (ValueError, TypeError):  # TypeError: a str holding a lone surrogate
        return _parse_with_stdlib(raw)


def _parse_with_stdlib(raw: bytes | str) -> Any:
    text = decode_text(raw)
    if not text.strip():
        raise BodyError("body is empty")
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BodyError(
            f"body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise NestedTooDeeply("body is nested too deeply") from None
    except BodyError:
        raise
    except ValueError:
        # Python refuses to parse integers of more than 4,300 digits (int_max_str_digits).
        raise BodyError("body is not valid JSON (a number has too many digits)") from None
    return document


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and so Raindrop) does not.
    raise BodyError(f"body is not valid JSON ({name} is not a JSON value)")


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
        for key in ("context", "integrations")
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
        _, end = _DECODER.raw_decode(text, index)
    except json.JSONDecodeError:
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
