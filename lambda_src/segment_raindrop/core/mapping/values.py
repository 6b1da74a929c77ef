"""Turning Segment values into what Raindrop takes: texts, timestamps, traits, user hashes."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic_core

from segment_raindrop.core import codec
from segment_raindrop.core.contract import MIRROR_LIBRARY_NAME
from segment_raindrop.core.mapping.items import InvalidEvent, UnencodableText
from segment_raindrop.core.raindrop_api import is_blank

# 2025-03-14T09:26:53.589Z: UTC with milliseconds, the form Raindrop gets.
_CANONICAL_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# ISO 8601's end of day ("24:00"), which datetime.fromisoformat refuses: the next day's 00:00.
_END_OF_DAY = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt ])24:00(?::00(?:[.,]0+)?)?(?=[Zz+-]|$)")


def text(value: Any) -> str | None:
    """``value`` when it is a string with something in it; whitespace alone counts as missing,
    since Raindrop refuses it where it needs a value."""
    return value if isinstance(value, str) and not is_blank(value) else None


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    # Message lists and other structures travel as their JSON text.
    return json_text(value)


def json_text(value: Any) -> str:
    """Compact JSON text of ``value`` (pydantic's serialiser: several times the stdlib's speed)."""
    try:
        return pydantic_core.to_json(value).decode("utf-8")
    except ValueError:
        raise UnencodableText from None


def properties_of(event: dict[str, Any]) -> dict[str, Any]:
    properties = event.get("properties")
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise InvalidEvent("properties is not an object")
    return properties


def json_in_string(value: str, key: str) -> Any:
    """``properties.<key>`` (ai_data) sent as a JSON string, held to the limits of a whole
    event."""
    try:
        decoded = codec.loads(value)
    except codec.NestedTooDeeply:
        raise InvalidEvent(codec.TOO_DEEP) from None
    except codec.NumberTooLong:
        raise InvalidEvent(codec.NUMBER_TOO_LONG) from None
    except codec.JsonError:
        raise InvalidEvent(f"properties.{key} is a string but not JSON") from None
    if codec.depth_exceeds(decoded, codec.MAX_EVENT_DEPTH):
        raise InvalidEvent(codec.TOO_DEEP)
    return decoded


def normalise_timestamp(value: Any) -> str | None:
    """ISO 8601 in UTC with milliseconds, or None when ``value`` is not a timestamp."""
    if not isinstance(value, str) or not value:
        return None
    if _CANONICAL_TIMESTAMP.fullmatch(value):
        # What Segment's libraries send is already in the target form: only check the date
        # is real (month 13 matches the pattern too).
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return None
        return value
    # RFC 3339 allows a lower-case "z"; fromisoformat (before 3.14) does not.
    given = value[:-1] + "Z" if value.endswith("z") else value
    end_of_day = _END_OF_DAY.match(given)
    if end_of_day is not None:
        given = f"{end_of_day.group(1)}00:00{given[end_of_day.end() :]}"
    try:
        parsed = datetime.fromisoformat(given)
        if end_of_day is not None:
            parsed += timedelta(days=1)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: the UTC instant is outside years 1-9999
        return None
    return parsed.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def flatten_traits(traits: dict[str, Any], prefix: str = "") -> dict[str, str | bool | int | float]:
    """Scalars only: nested objects become dotted keys, lists JSON text, nulls are dropped."""
    flat: dict[str, str | bool | int | float] = {}
    for key, value in traits.items():
        name = f"{prefix}{key}"
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue  # JSON has no infinity (1e400 parses as one): it would be sent as null
        if isinstance(value, dict):
            flat.update(flatten_traits(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = json_text(value)
        elif isinstance(value, str | bool | int | float):
            flat[name] = value
    return flat


def is_mirrored(event: dict[str, Any]) -> bool:
    """Whether the mirror made this event (Raindrop -> Segment): forwarding it would loop."""
    context = event.get("context")
    library = context.get("library") if isinstance(context, dict) else None
    return isinstance(library, dict) and library.get("name") == MIRROR_LIBRARY_NAME


def hash_user(user: str, key: bytes) -> str:
    """A keyed hash (HMAC-SHA256, 16 hex digits) of the deleted user's id, never the id.

    Keyed because an unkeyed hash of a short or numeric id is found again by trying them all.
    """
    # surrogatepass: a lone surrogate (legal in a JSON escape) must not crash the hash.
    message = user.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]
