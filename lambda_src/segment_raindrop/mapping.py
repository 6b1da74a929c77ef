"""Segment events → Raindrop items (docs/wire.md §3, the product's contract).

Each Segment event ends as exactly one of: *mapped* (it produced one or more Raindrop items),
*filtered* (not an event we forward; counted, never an error) or *invalid* (it should have been
forwarded but cannot be; it goes to the dead-letter queue with the reason). Reasons are short,
fixed phrases: they end up in logs and metrics, so they never quote event content.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError

from segment_raindrop import codec
from segment_raindrop.codec import UnparsedEvent
from segment_raindrop.config import MappingConfig
from segment_raindrop.raindrop import AiData, Endpoint, Identify, Signal, TrackEvent, is_blank
from segment_raindrop.redaction import Redactor

# 2025-03-14T09:26:53.589Z: UTC with milliseconds, the form Raindrop gets.
_CANONICAL_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "receivedAt", "sentAt")
# ISO 8601's end of day ("24:00"), which datetime.fromisoformat refuses: the next day's 00:00.
_END_OF_DAY = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt ])24:00(?::00(?:[.,]0+)?)?(?=[Zz+-]|$)")
# Hashes user ids for the deletion log when no per-deployment key is given (tests, benchmarks,
# and call sites not yet given the secret's key): random per process, so the hashes cannot be
# reversed, but neither can they be compared across processes.
PROCESS_USER_HASH_KEY = secrets.token_bytes(32)
_NOT_FORWARDED_TYPES = frozenset({"page", "screen", "group", "alias"})
_M = TypeVar("_M", bound=BaseModel)
_SENTIMENTS = {"positive": "POSITIVE", "negative": "NEGATIVE"}


class InvalidEvent(Exception):
    """Raised inside the mapper to mark the current event invalid with a reason."""


class UnencodableText(Exception):
    """A string that UTF-8 cannot hold (a lone UTF-16 surrogate) reached a serialiser."""


@dataclass(frozen=True, slots=True)
class MappedItem:
    """One serialised Raindrop item and the index of the Segment event it came from."""

    endpoint: Endpoint
    payload: bytes
    source: int
    # Enrichment (a user's traits taken from a track's context): if Raindrop does not take
    # it, the event it came from is still delivered; it is never retried on its own account.
    optional: bool = False


@dataclass(slots=True)
class MapResult:
    items: list[MappedItem] = field(default_factory=list)
    filtered: dict[int, str] = field(default_factory=dict)
    invalid: dict[int, str] = field(default_factory=dict)
    # Keyed hashes of the user ids of Segment "delete" (user deletion) requests, so operators
    # notice them (see Mapper's user_hash_key).
    deletions: list[str] = field(default_factory=list)
    # Strings whose lone UTF-16 surrogates became U+FFFD (or whose split pairs were joined) so
    # that their event could be delivered.
    repaired_texts: int = 0
    # Mapped events whose timestamp field was present but unusable, so another field's time
    # was sent, by the name of each unusable field.
    timestamp_fallbacks: Counter[str] = field(default_factory=Counter)
    # Redactions made in what is sent (REDACT_PII), by kind; never the text itself.
    redactions: Counter[str] = field(default_factory=Counter)

    @property
    def mapped(self) -> set[int]:
        return {item.source for item in self.items}


def map_events(
    events: Sequence[Any], config: MappingConfig, *, user_hash_key: bytes = PROCESS_USER_HASH_KEY
) -> MapResult:
    mapper = Mapper(config, user_hash_key=user_hash_key)
    for index, event in enumerate(events):
        mapper.add(index, event)
    return mapper.result


class Mapper:
    """Maps one request's events one at a time; ``result`` accounts for all of them.

    Per request, not per process: enrichment yields one identify per user and request.
    ``user_hash_key`` keys the hash of deleted users' ids in ``result.deletions``: unkeyed,
    a short or numeric id could be found again by trying every candidate.
    """

    def __init__(self, config: MappingConfig, *, user_hash_key: bytes) -> None:
        self._config = config
        self._user_hash_key = user_hash_key
        self._result = MapResult()
        self._enriched_users: set[str] = set()
        self._redactor = Redactor(pii=config.redact_pii, drop_keys=config.redact_keys)
        # The result counts what the redactor counts, so both stay one Counter.
        self._result.redactions = self._redactor.counts

    @property
    def result(self) -> MapResult:
        return self._result

    def add(self, index: int, event: Any) -> list[MappedItem]:
        """The items event ``index`` maps to (also kept in ``result``); none if not mapped."""
        try:
            try:
                items = self._map_event(index, event)
            except UnencodableText:
                # Rare, so the event is mapped twice rather than every string checked always.
                # The original stays as it was for the queues; only what is sent is repaired.
                repaired, count = codec.repair_text(event)
                self._result.repaired_texts += count
                items = self._map_event(index, repaired)
        except InvalidEvent as exc:
            self._result.invalid[index] = str(exc)
            return []
        except UnencodableText:
            self._result.invalid[index] = "event cannot be encoded as JSON"
            return []
        except RecursionError:
            # JSON nested close to the parser's limit; no Raindrop item can hold it.
            self._result.invalid[index] = "event is nested too deeply"
            return []
        if items is None:
            return []
        self._result.items.extend(items)
        return items

    def _map_event(self, index: int, event: Any) -> list[MappedItem] | None:
        """The event's items, or None when it was filtered (recorded with its reason)."""
        # The one redaction hook: the content every item is built from, redacted before it is
        # mapped (a copy; the original stays as it was for the queues).
        event = self._redactor.event(event)
        if isinstance(event, UnparsedEvent):
            raise InvalidEvent(event.reason)
        if not isinstance(event, dict):
            raise InvalidEvent("event is not a JSON object")
        kind = event.get("type")
        if not isinstance(kind, str) or not kind:
            raise InvalidEvent("event has no type")
        if kind == "track":
            return self._map_track(index, event)
        if kind == "identify":
            if not self._config.forward_identify:
                self._filter(index, "identify forwarding is disabled")
                return None
            return [_item(Endpoint.IDENTIFY, _identify(event, event.get("traits")), index)]
        if kind == "delete":
            self._result.deletions.append(_hash_user(event, self._user_hash_key))
            self._filter(index, "user deletion requests are not forwarded")
            return None
        if kind in _NOT_FORWARDED_TYPES:
            self._filter(index, f"{kind} calls are not forwarded")
            return None
        self._filter(index, "unsupported event type")
        return None

    def _filter(self, index: int, reason: str) -> None:
        self._result.filtered[index] = reason

    def _map_track(self, index: int, event: dict[str, Any]) -> list[MappedItem] | None:
        name = event.get("event")
        if not isinstance(name, str) or not name:
            raise InvalidEvent("track event has no event name")
        if not self._config.is_forwarded_track(name):
            self._filter(index, "track event is not an AI event")
            return None
        properties = _properties(event)
        unusable: list[str] = []  # timestamp fields passed over
        if name in self._config.feedback_event_names:
            items = [_item(Endpoint.SIGNAL, _signal(event, properties, unusable), index)]
        else:
            renamed = self._config.event_renames.get(name, name)
            track = _track(event, renamed, properties, unusable)
            items = [_item(Endpoint.TRACK, track, index)]
        enrichment = self._enrichment(event, index)
        if enrichment is not None:
            items.append(enrichment)
        self._result.timestamp_fallbacks.update(unusable)
        return items

    def _enrichment(self, event: dict[str, Any], index: int) -> MappedItem | None:
        """One ``users/identify`` per user and request from a track's ``context.traits``."""
        if not self._config.enrich_from_context_traits:
            return None
        context = event.get("context")
        traits = context.get("traits") if isinstance(context, dict) else None
        if not isinstance(traits, dict) or not traits:
            return None
        try:
            user_id = _user_id(event)
        except InvalidEvent:
            return None  # a signal needs no user; without one there is nobody to enrich
        if user_id in self._enriched_users:
            return None
        try:
            flat = flatten_traits(traits)
            if not flat:
                return None
            identify = _validated(Identify, user_id=user_id, traits=flat)
            item = _item(Endpoint.IDENTIFY, identify, index, optional=True)
        except InvalidEvent:
            return None  # enrichment is a bonus: never lose the AI event over it
        self._enriched_users.add(user_id)
        return item


def _item(
    endpoint: Endpoint, model: BaseModel, source: int, *, optional: bool = False
) -> MappedItem:
    try:
        payload = model.__pydantic_serializer__.to_json(model, exclude_none=True)
    except ValueError:
        # Lone UTF-16 surrogates parse from JSON escapes but cannot be encoded as UTF-8.
        raise UnencodableText from None
    return MappedItem(endpoint=endpoint, payload=payload, source=source, optional=optional)


def _validated(model_class: type[_M], /, **values: Any) -> _M:
    try:
        return model_class(**values)
    except ValidationError as exc:
        if any(error["type"] == "string_unicode" for error in exc.errors()):
            # pydantic refuses a lone surrogate in a constrained string (an id) itself.
            raise UnencodableText from None
        raise InvalidEvent(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _properties(event: dict[str, Any]) -> dict[str, Any]:
    properties = event.get("properties")
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise InvalidEvent("properties is not an object")
    return properties


def _text(value: Any) -> str | None:
    """``value`` when it is a string with something in it; whitespace alone counts as missing,
    since Raindrop refuses it where it needs a value."""
    return value if isinstance(value, str) and not is_blank(value) else None


def _user_id(event: dict[str, Any]) -> str:
    for key in ("userId", "anonymousId"):
        value = event.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        text = _text(value)
        if text is not None:
            return text
    raise InvalidEvent("event has no userId or anonymousId")


def _event_id(event: dict[str, Any], properties: dict[str, Any]) -> str:
    event_id = _text(properties.get("trace_id")) or _text(event.get("messageId"))
    if event_id is None:
        raise InvalidEvent("event has no properties.trace_id or messageId")
    return event_id


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
    text = value[:-1] + "Z" if value.endswith("z") else value
    end_of_day = _END_OF_DAY.match(text)
    if end_of_day is not None:
        text = f"{end_of_day.group(1)}00:00{text[end_of_day.end() :]}"
    try:
        parsed = datetime.fromisoformat(text)
        if end_of_day is not None:
            parsed += timedelta(days=1)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: the UTC instant is outside years 1-9999
        return None
    return parsed.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timestamp(event: dict[str, Any], unusable: list[str]) -> str:
    """The first usable timestamp field's time; the fields passed over are added to
    ``unusable``, so a time taken from elsewhere does not go unnoticed."""
    passed_over: list[str] = []
    for key in _TIMESTAMP_FIELDS:
        value = event.get(key)
        normalised = normalise_timestamp(value)
        if normalised is not None:
            unusable.extend(passed_over)
            return normalised
        if value is not None:
            passed_over.append(key)
    raise InvalidEvent("event has no valid timestamp")


def _ai_data(properties: dict[str, Any]) -> tuple[AiData | None, dict[str, Any]]:
    """``properties.ai_data`` as Raindrop's ai_data, and the properties without it."""
    raw = properties.get("ai_data")
    remaining = {key: value for key, value in properties.items() if key != "ai_data"}
    if isinstance(raw, str):
        raw = _json_in_string(raw)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidEvent("properties.ai_data is not an object")
    content = {
        "model": _as_text(_first_present(raw.get("model"), properties.get("model"))),
        # Whitespace alone is no AI content: Raindrop refuses it.
        "input": _text(_as_text(raw.get("input"))),
        "output": _text(_as_text(raw.get("output"))),
        "convo_id": _as_text(_first_present(raw.get("convo_id"), properties.get("convo_id"))),
    }
    if content["input"] is None and content["output"] is None:
        # Raindrop requires AI content in ai_data; an event without it is still an event.
        return None, remaining
    return _validated(AiData, **content), remaining


def _json_in_string(text: str) -> Any:
    """``properties.ai_data`` sent as a JSON string, held to the limits of a whole event."""
    try:
        value = codec.loads(text)
    except codec.NestedTooDeeply:
        raise InvalidEvent(codec.TOO_DEEP) from None
    except codec.NumberTooLong:
        raise InvalidEvent(codec.NUMBER_TOO_LONG) from None
    except codec.JsonError:
        raise InvalidEvent("properties.ai_data is a string but not JSON") from None
    if codec.depth_exceeds(value, codec.MAX_EVENT_DEPTH):
        raise InvalidEvent(codec.TOO_DEEP)
    return value


def _first_present(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def _as_text(value: Any) -> str | None:
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


def _track(
    event: dict[str, Any], name: str, properties: dict[str, Any], unusable: list[str]
) -> TrackEvent:
    ai_data, remaining = _ai_data(properties)
    return _validated(
        TrackEvent,
        event_id=_event_id(event, properties),
        user_id=_user_id(event),
        event=name,
        timestamp=_timestamp(event, unusable),
        properties=remaining,
        ai_data=ai_data,
    )


def _signal(event: dict[str, Any], properties: dict[str, Any], unusable: list[str]) -> Signal:
    trace_id = _text(properties.get("trace_id"))
    if trace_id is None:
        raise InvalidEvent("feedback has no properties.trace_id to link it to")
    sentiment = properties.get("sentiment")
    return _validated(
        Signal,
        event_id=trace_id,
        signal_name=_text(properties.get("signal_name")) or "feedback",
        # Raindrop needs a comment on feedback: whitespace alone makes a default signal.
        signal_type="feedback" if _text(properties.get("comment")) else "default",
        timestamp=_timestamp(event, unusable),
        properties={key: value for key, value in properties.items() if key != "ai_data"},
        sentiment=_SENTIMENTS.get(sentiment.lower()) if isinstance(sentiment, str) else None,
    )


def _identify(event: dict[str, Any], traits: Any) -> Identify:
    user_id = _user_id(event)
    if traits is None:
        traits = {}
    if not isinstance(traits, dict):
        raise InvalidEvent("traits is not an object")
    return _validated(Identify, user_id=user_id, traits=flatten_traits(traits))


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


def _hash_user(event: dict[str, Any], key: bytes) -> str:
    """A keyed hash (HMAC-SHA256, 16 hex digits) of the deleted user's id, never the id.

    Keyed because an unkeyed hash of a short or numeric id is found again by trying them all.
    """
    try:
        user = _user_id(event)
    except InvalidEvent:
        user = ""
    # surrogatepass: a lone surrogate (legal in a JSON escape) must not crash the hash.
    message = user.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]
