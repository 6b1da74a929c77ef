"""The one JSON reader and the one queue writer for Segment events.

Whatever the webhook accepts has to come back out of a queue message unchanged, or a retry or
replay would lose it. So requests and queue messages are read by the same :func:`loads`, queue
message bodies are written by :func:`dumps` alone, and an event is accepted only within limits
both of the parsers behind :func:`loads` can read again (:data:`MAX_EVENT_DEPTH`, and integers
of at most :data:`MAX_INT_DIGITS` digits).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

import pydantic_core

# How deep one event may nest, counting the event object itself as level 1: exactly what
# pydantic's parser reads (201 levels), so a body it parsed needs no depth check at all. A queue
# message wraps each event two levels deeper ({"events": [event]}), which pydantic then refuses
# and the stdlib's parser reads (it stops at the interpreter's recursion limit less the caller's
# stack, about 990 from a Lambda handler); pydantic's serialiser stops at 255 when the mapper
# writes the Raindrop item, one level above the event's properties. Real events nest under 10.
MAX_EVENT_DEPTH: Final = 201
# The longest integer either parser reads: pydantic's stops at 4,300 digits, and Python's
# int() refuses more by default (sys.int_info.default_max_str_digits).
MAX_INT_DIGITS: Final = 4_300
# Characters of raw text kept of an event that could not be read. Such text is brackets and
# digits, 64 KiB in a message; even all lone surrogates (6 bytes each, as escapes) would be
# 384 KiB, inside an SQS message's 1 MiB.
UNPARSED_TEXT_LIMIT: Final = 65_536

TOO_DEEP: Final = "event is nested too deeply"
NUMBER_TOO_LONG: Final = "event holds a number with too many digits"

_SEPARATORS: Final = (",", ":")


class JsonError(ValueError):
    """Text that is not acceptable JSON. The message completes "the body is …"."""


class NestedTooDeeply(JsonError):
    """JSON nested deeper than the parser goes. ``end`` is where the value ends, when known."""

    def __init__(self, end: int | None = None) -> None:
        super().__init__("nested too deeply")
        self.end = end


class NumberTooLong(JsonError):
    """An integer with more than MAX_INT_DIGITS digits. ``end``: where the value ends."""

    def __init__(self, end: int | None = None) -> None:
        super().__init__("not valid JSON (a number has too many digits)")
        self.end = end


@dataclass(frozen=True, slots=True)
class UnparsedEvent:
    """An element of a batch that is well-formed but cannot be read as a value.

    It is kept as its raw text (cut to UNPARSED_TEXT_LIMIT) so that the dead-letter queue
    holds what was sent; ``reason`` is a fixed phrase, never content.
    """

    text: str
    reason: str

    @classmethod
    def of(cls, text: str, reason: str) -> UnparsedEvent:
        if len(text) > UNPARSED_TEXT_LIMIT:
            cut = len(text) - UNPARSED_TEXT_LIMIT
            text = f"{text[:UNPARSED_TEXT_LIMIT]}…[truncated {cut} characters]"
        return cls(text, reason)


# -- reading ---------------------------------------------------------------------------------


def loads(raw: bytes | str) -> Any:
    """``raw`` as a JSON value; raises :class:`JsonError` saying what is wrong with it."""
    return read(raw)[0]


def read(raw: bytes | str) -> tuple[Any, bool]:
    """``raw`` as a JSON value, and whether its nesting is known to be within
    :data:`MAX_EVENT_DEPTH` (so the caller need not walk it to check).

    pydantic's Rust parser goes first: it is about a third faster than the stdlib's on large
    batches, and it stops at MAX_EVENT_DEPTH levels itself. It refuses a few things JSON allows
    and Segment can send (a lone UTF-16 surrogate from a string cut mid-emoji, deeper nesting,
    a float with 4,300 digits before the point); those take the stdlib's path, which also words
    the errors, and whose values the caller checks (see :func:`depth_exceeds`).
    """
    try:
        return pydantic_core.from_json(raw, allow_inf_nan=False), True
    except (ValueError, TypeError):  # TypeError: a str holding a lone surrogate
        pass
    text = decode_text(raw)
    if not text.strip():
        raise JsonError("empty")
    integers = _IntegerGuard()
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=integers)
    except json.JSONDecodeError as exc:
        raise _syntax_error(exc) from None
    except RecursionError:
        raise NestedTooDeeply() from None
    if integers.too_long:
        raise NumberTooLong()
    return value, False


def decode_text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonError("not valid UTF-8") from None


class ElementReader:
    """Reads one JSON value at a time out of a larger text: the events of a batch, one by one.

    Used when a batch as a whole cannot be read, so that one event nested too deeply or
    holding a huge number costs only that event. A value that is not JSON at all raises
    :class:`JsonError`; one too deep or with a too-long integer raises
    :class:`NestedTooDeeply` or :class:`NumberTooLong` with ``end`` set, so the caller can
    keep its raw text and go on with the next.
    """

    def __init__(self) -> None:
        self._integers = _IntegerGuard()
        self._decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_int=self._integers)

    def read(self, text: str, index: int) -> tuple[Any, int]:
        """The value starting at ``text[index]`` and the index just after it."""
        self._integers.too_long = 0
        try:
            value, end = self._decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise _syntax_error(exc) from None
        except RecursionError:
            raise NestedTooDeeply(container_end(text, index)) from None
        if self._integers.too_long:
            raise NumberTooLong(end)
        return value, end


class _IntegerGuard:
    """The stdlib parser's ``parse_int``: counts integers too long to convert instead of
    stopping at the first, so the rest of the text is still checked for syntax."""

    def __init__(self) -> None:
        self.too_long = 0

    def __call__(self, digits: str) -> int:
        if len(digits) - digits.startswith("-") <= MAX_INT_DIGITS:
            try:
                return int(digits)
            except ValueError:  # a lower sys.set_int_max_str_digits
                pass
        self.too_long += 1
        return 0


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and so Raindrop) does not.
    raise JsonError(f"not valid JSON ({name} is not a JSON value)")


def _syntax_error(exc: json.JSONDecodeError) -> JsonError:
    return JsonError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")


# Strings whole (so brackets inside them do not count), and runs of brackets as one token: a
# value nested 1,000 deep is then a handful of tokens, not thousands.
_STRUCTURE = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[{]++|[\]}]++|"', re.DOTALL)


def container_end(text: str, index: int) -> int:
    """Where the array or object starting at ``text[index]`` ends, without recursion.

    Only the nesting is checked (brackets balance, strings end); it serves values too deep for
    either parser, which are refused anyway. O(len) with a small constant per token.
    """
    depth = 0
    for match in _STRUCTURE.finditer(text, index):
        token = match.group()
        first = token[0]
        if first == '"':
            if len(token) == 1:
                break  # a string that never ends
            continue
        if first in "[{":
            depth += len(token)
        elif len(token) >= depth:
            return match.start() + depth
        else:
            depth -= len(token)
    raise JsonError("not valid JSON (an array or object is not closed)")


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (a scalar is 0 deep, ``[]`` 1)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


# -- writing ---------------------------------------------------------------------------------

# Outside strings, the only non-JSON tokens json.dumps writes are for non-finite floats.
_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN', re.DOTALL)
_FINITE_FORMS = {"Infinity": "1e999", "-Infinity": "-1e999", "NaN": "null"}
# What a queue message body may not hold as itself: SQS takes #x9, #xA, #xD, #x20-#xD7FF,
# #xE000-#xFFFD and #x10000-#x10FFFF (json.dumps already escapes everything below #x20), and a
# lone surrogate has no UTF-8 form. Each is written as its JSON escape instead.
_NOT_FOR_SQS = re.compile("[\ud800-\udfff\ufffe\uffff]")


def dumps(value: Any) -> str:
    """Compact JSON of ``value`` for queue message bodies and requests: UTF-8 text, every
    character as itself except those SQS refuses or UTF-8 cannot hold (a lone surrogate, cut
    mid-emoji), which stay JSON escapes. Sizes are ``utf8_size`` of the result: a character
    outside ASCII costs its UTF-8 bytes (3 for CJK, 4 for an emoji), not a 6- or 12-byte escape.
    An :class:`UnparsedEvent` is written as its raw text, a JSON string.
    """
    if isinstance(value, UnparsedEvent):
        value = value.text
    try:
        text = json.dumps(
            value, separators=_SEPARATORS, allow_nan=False, ensure_ascii=False, default=_default
        )
    except ValueError:
        # 1e400 parses as infinity; written back as 1e999 it reads as infinity again, where
        # "Infinity" would not be JSON at all. (NaN cannot come from JSON; null is its closest.)
        text = json.dumps(value, separators=_SEPARATORS, ensure_ascii=False, default=_default)
        text = _NON_FINITE.sub(lambda m: _FINITE_FORMS.get(m.group(), m.group()), text)
    if text.isascii():
        return text
    return _NOT_FOR_SQS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def utf8_size(text: str) -> int:
    """Bytes of ``text`` (a :func:`dumps` result) on the wire."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _default(value: Any) -> Any:
    if isinstance(value, UnparsedEvent):
        return value.text
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- text repair -----------------------------------------------------------------------------


def repair_text(value: Any) -> tuple[Any, int]:
    """``value`` with every string made encodable as UTF-8, and how many strings changed.

    JavaScript strings are UTF-16: one cut mid-emoji leaves a lone surrogate, which JSON
    carries as an escape but UTF-8 cannot hold. A lone surrogate becomes U+FFFD; a pair that
    arrived as two escapes (the stdlib parser keeps them apart) becomes its character.
    """
    if isinstance(value, str):
        fixed = _repair_string(value)
        return fixed, int(fixed is not value)
    if isinstance(value, list):
        items = [repair_text(item) for item in value]
        return [item for item, _ in items], sum(count for _, count in items)
    if isinstance(value, dict):
        repaired: dict[str, Any] = {}
        total = 0
        for key, item in value.items():
            fixed_key, key_count = repair_text(key)
            fixed_item, item_count = repair_text(item)
            repaired[fixed_key] = fixed_item
            total += key_count + item_count
        return repaired, total
    return value, 0


def _repair_string(text: str) -> str:
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
