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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError

from segment_raindrop.core import codec
from segment_raindrop.core.codec import UnparsedEvent
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import LOOP_FILTER_REASON, MIRROR_LIBRARY_NAME
from segment_raindrop.core.field_paths import FieldPaths, Getter
from segment_raindrop.core.raindrop_api import (
    SIGNAL_TYPES,
    AiData,
    Attachment,
    Endpoint,
    Identify,
    Signal,
    TrackEvent,
    is_blank,
)
from segment_raindrop.core.redaction import Redactor

# 2025-03-14T09:26:53.589Z: UTC with milliseconds, the form Raindrop gets.
_CANONICAL_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# ISO 8601's end of day ("24:00"), which datetime.fromisoformat refuses: the next day's 00:00.
_END_OF_DAY = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt ])24:00(?::00(?:[.,]0+)?)?(?=[Zz+-]|$)")
# Hashes user ids for the deletion log when no per-deployment key is given (tests, benchmarks,
# and call sites not yet given the secret's key): random per process, so the hashes cannot be
# reversed, but neither can they be compared across processes.
PROCESS_USER_HASH_KEY = secrets.token_bytes(32)
_NOT_FORWARDED_TYPES = frozenset({"page", "screen", "group", "alias"})
_M = TypeVar("_M", bound=BaseModel)
_SENTIMENTS = {"positive": "POSITIVE", "negative": "NEGATIVE"}
# What Raindrop needs in a signal's properties when the signal is of that kind.
_REQUIRED_SIGNAL_PROPERTY = {"feedback": "comment", "edit": "after"}
_AI_FIELDS = ("ai_data.input", "ai_data.output", "ai_data.model", "ai_data.convo_id")
# What an end user wrote or an app produced: redacted wherever FIELD_PATHS reads it from. Ids,
# names and timestamps are sent as they are.
_CONTENT_FIELDS = ("ai_data.input", "ai_data.output", "attachments")


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
    # The same, by the index of the mapped event they were made in (events with any only).
    event_redactions: dict[int, Counter[str]] = field(default_factory=dict)
    # Entries of mapped events' attachments that were not in Raindrop's attachment shape and
    # were left out (their event still went), by the index of the event.
    dropped_attachments: Counter[int] = field(default_factory=Counter)

    @property
    def mapped(self) -> set[int]:
        return {item.source for item in self.items}


def map_events(
    events: Sequence[Any], config: MappingConfig, *, user_hash_key: bytes = PROCESS_USER_HASH_KEY
) -> MapResult:
    mapper = Mapper(config, user_hash_key=user_hash_key)
    for index, event in enumerate(events):
        mapper.add(index, event)
    mapper.finish()
    return mapper.result


@dataclass(slots=True)
class _HeldIdentify:
    """An explicit identify, held until the end of the request in case a track's
    ``context.traits`` for the same user are to be merged into it."""

    source: int
    model: Identify
    item: MappedItem


class Mapper:
    """Maps one request's events one at a time; ``result`` accounts for all of them once
    :meth:`finish` has been called.

    Per request, not per process: a user gets one ``users/identify`` per request from
    enrichment, merged into the user's explicit identify when the request has one. Identify
    items are therefore held until :meth:`finish` (they are few); every other item is returned
    by :meth:`add` at once, so delivery can start while the rest is being mapped.
    ``user_hash_key`` keys the hash of deleted users' ids in ``result.deletions``: unkeyed,
    a short or numeric id could be found again by trying every candidate.
    """

    def __init__(self, config: MappingConfig, *, user_hash_key: bytes) -> None:
        self._config = config
        self._user_hash_key = user_hash_key
        self._result = MapResult()
        # Its counts are the current event's: added to the result once the event is mapped.
        self._redactor = Redactor(pii=config.redact_pii, drop_keys=config.redact_keys)
        self._paths = FieldPaths.from_overrides(config.field_paths)
        self._get = self._getters()
        # Properties that ai_data paths read into: they may arrive as JSON text (the Classic
        # destination's string ai_data) and must be objects.
        self._ai_objects = frozenset(
            path[1]
            for name in _AI_FIELDS
            for path in self._paths[name]
            if len(path) > 2 and path[0] == "properties"
        )
        # What is sent as ai_data content or attachments is not repeated in properties.
        self._consumed = self._ai_objects | self._paths.property_keys(
            "ai_data.input", "ai_data.output", "attachments"
        )
        # user id -> (item, identify) from the first track that carried the user's traits.
        self._enrichment: dict[str, tuple[MappedItem, Identify]] = {}
        self._identifies: list[_HeldIdentify] = []
        self._finished = False

    def _getters(self) -> Mapping[str, tuple[Getter, ...]]:
        """Each field's getters. Properties are redacted whole before they are read; content
        that FIELD_PATHS reads from elsewhere in the event (a top-level ``prompt``) is redacted
        as it is read, so that no path configured for it can carry it past redaction."""
        getters = self._paths.getters
        if not self._redactor.active:
            return getters
        redacting = dict(getters)
        for name in _CONTENT_FIELDS:
            redacting[name] = tuple(
                get if path[0] == "properties" else _redacted(get, self._redactor)
                for path, get in zip(self._paths[name], getters[name], strict=True)
            )
        return redacting

    @property
    def result(self) -> MapResult:
        return self._result

    def add(self, index: int, event: Any) -> list[MappedItem]:
        """The items event ``index`` maps to now (also kept in ``result``); identify items
        come from :meth:`finish`."""
        redactions = self._redactor.counts
        try:
            try:
                items = self._map_event(index, event)
            except UnencodableText:
                # Rare, so the event is mapped twice rather than every string checked always.
                # The original stays as it was for the queues; only what is sent is repaired.
                repaired, count = codec.repair_text(event)
                self._result.repaired_texts += count
                redactions.clear()  # counted again, in what is sent
                items = self._map_event(index, repaired)
        except InvalidEvent as exc:
            self._result.invalid[index] = str(exc)
            redactions.clear()  # nothing of it is sent
            return []
        except UnencodableText:
            self._result.invalid[index] = "event cannot be encoded as JSON"
            redactions.clear()
            return []
        except RecursionError:
            # JSON nested close to the parser's limit; no Raindrop item can hold it.
            self._result.invalid[index] = "event is nested too deeply"
            redactions.clear()
            return []
        if redactions:
            self._result.redactions.update(redactions)
            self._result.event_redactions[index] = Counter(redactions)
            redactions.clear()
        if items is None:
            return []
        self._result.items.extend(items)
        return items

    def finish(self) -> list[MappedItem]:
        """The request's identify items: one per explicit identify (the first of a user's
        absorbs that user's enrichment, its own traits winning), then one per user enriched
        without one. Call once, after the last :meth:`add`; later calls return nothing."""
        if self._finished:
            return []
        self._finished = True
        items: list[MappedItem] = []
        for held in self._identifies:
            enrichment = self._enrichment.pop(held.model.user_id, None)
            items.append(held.item if enrichment is None else _merged(held, enrichment[1]))
        items.extend(item for item, _ in self._enrichment.values())
        self._result.items.extend(items)
        return items

    def _map_event(self, index: int, event: Any) -> list[MappedItem] | None:
        """The event's items, or None when it was filtered (recorded with its reason).

        Redaction applies to what is sent, once it is known to be sent: a forwarded track's
        properties, an identify's traits and the context traits an enrichment identify takes
        (copies; the original stays as it was for the queues). Filtered events cost nothing.
        """
        if isinstance(event, UnparsedEvent):
            raise InvalidEvent(event.reason)
        if not isinstance(event, dict):
            raise InvalidEvent("event is not a JSON object")
        if _mirrored(event):
            # The mirror sent it to Segment from Raindrop: forwarding it would be a loop.
            self._filter(index, LOOP_FILTER_REASON)
            return None
        kind = event.get("type")
        if not isinstance(kind, str) or not kind:
            raise InvalidEvent("event has no type")
        if kind == "track":
            return self._map_track(index, event)
        if kind == "identify":
            if not self._config.forward_identify:
                self._filter(index, "identify forwarding is disabled")
                return None
            identify = self._identify(event, self._redactor.value(event.get("traits")))
            item = _item(Endpoint.IDENTIFY, identify, index)  # fails here, in its own add
            self._identifies.append(_HeldIdentify(index, identify, item))
            return []
        if kind == "delete":
            user_id = self._optional_user_id(event) or ""
            self._result.deletions.append(_hash_user(user_id, self._user_hash_key))
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
        is_signal = name in self._config.feedback_event_names
        # A signal has no ai_data to send: what its properties.ai_data holds is not checked.
        event = self._decoded(event, ai_objects=not is_signal)
        # Redacted once decoded: ai_data sent as JSON text is redacted as the values it holds.
        properties = event["properties"]
        redacted = self._redactor.value(properties)
        if redacted is not properties:
            event = {**event, "properties": redacted}
        user_id = self._optional_user_id(event)  # once: the item and enrichment both need it
        unusable: list[str] = []  # timestamp fields passed over
        dropped = 0
        if is_signal:
            items = [_item(Endpoint.SIGNAL, self._signal(event, unusable), index)]
        else:
            renamed = self._config.event_renames.get(name, name)
            track, dropped = self._track(event, renamed, user_id, unusable)
            items = [_item(Endpoint.TRACK, track, index)]
        if user_id is not None:
            self._note_enrichment(event, user_id, index)
        self._result.timestamp_fallbacks.update(unusable)
        if dropped:
            self._result.dropped_attachments[index] += dropped
        return items

    def _note_enrichment(self, event: dict[str, Any], user_id: str, index: int) -> None:
        """Keep each user's first ``context.traits`` for :meth:`finish`."""
        if not self._config.enrich_from_context_traits:
            return
        context = event.get("context")
        traits = context.get("traits") if isinstance(context, dict) else None
        if not isinstance(traits, dict) or not traits:
            return
        if user_id in self._enrichment:
            return  # only a user's first traits are sent: later ones need no redaction
        try:
            flat = flatten_traits(self._redactor.value(traits))
            if not flat:
                return
            identify = _validated(Identify, user_id=user_id, traits=flat)
            # Serialised now, so that unencodable text is repaired in this event's own add.
            item = _item(Endpoint.IDENTIFY, identify, index, optional=True)
        except InvalidEvent:
            return  # enrichment is a bonus: never lose the AI event over it
        self._enrichment[user_id] = (item, identify)

    # -- reading fields through their paths ------------------------------------------------

    def _decoded(self, event: dict[str, Any], *, ai_objects: bool) -> dict[str, Any]:
        """``event`` with its properties an object and, with ``ai_objects``, the objects that
        ai_data paths read into decoded when sent as JSON text (and checked to be objects)."""
        properties = _properties(event)
        decoded: dict[str, Any] | None = None
        for key in self._ai_objects if ai_objects else ():
            value = properties.get(key)
            if isinstance(value, str):
                value = _json_in_string(value, key)
                decoded = decoded if decoded is not None else dict(properties)
                decoded[key] = value
            if value is not None and not isinstance(value, dict):
                raise InvalidEvent(f"properties.{key} is not an object")
        if decoded is not None:
            return {**event, "properties": decoded}
        if event.get("properties") is None:
            return {**event, "properties": properties}
        return event

    def _first(self, event: dict[str, Any], name: str) -> Any:
        """The first value present (not null) along the field's paths."""
        for get in self._get[name]:
            value = get(event)
            if value is not None:
                return value
        return None

    def _first_text(self, event: dict[str, Any], name: str) -> str | None:
        for get in self._get[name]:
            text = _text(get(event))
            if text is not None:
                return text
        return None

    def _optional_user_id(self, event: dict[str, Any]) -> str | None:
        for get in self._get["user_id"]:
            value = get(event)
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
            text = _text(value)
            if text is not None:
                return text
        return None

    def _user_id(self, event: dict[str, Any]) -> str:
        user_id = self._optional_user_id(event)
        if user_id is None:
            raise InvalidEvent(f"event has no {self._paths.names('user_id')}")
        return user_id

    def _event_id(self, event: dict[str, Any]) -> str:
        event_id = self._first_text(event, "event_id")
        if event_id is None:
            raise InvalidEvent(f"event has no {self._paths.names('event_id')}")
        return event_id

    def _timestamp(self, event: dict[str, Any], unusable: list[str]) -> str:
        """The first usable timestamp's time; the paths passed over are added to ``unusable``,
        so a time taken from elsewhere does not go unnoticed."""
        passed_over: list[str] = []
        for path, get in zip(self._paths["timestamp"], self._get["timestamp"], strict=True):
            value = get(event)
            normalised = normalise_timestamp(value)
            if normalised is not None:
                unusable.extend(passed_over)
                return normalised
            if value is not None:
                passed_over.append(".".join(path))
        raise InvalidEvent("event has no valid timestamp")

    def _ai_data(self, event: dict[str, Any]) -> AiData | None:
        content = {
            "model": _as_text(self._first(event, "ai_data.model")),
            "input": self._ai_text(event, "ai_data.input"),
            "output": self._ai_text(event, "ai_data.output"),
            "convo_id": _as_text(self._first(event, "ai_data.convo_id")),
        }
        if content["input"] is None and content["output"] is None:
            # Raindrop requires AI content in ai_data; an event without it is still an event.
            return None
        return _validated(AiData, **content)

    def _ai_text(self, event: dict[str, Any], name: str) -> str | None:
        # Whitespace alone is no AI content: Raindrop refuses it, so the next path is tried.
        for get in self._get[name]:
            text = _text(_as_text(get(event)))
            if text is not None:
                return text
        return None

    def _attachments(self, event: dict[str, Any]) -> tuple[list[Attachment] | None, int]:
        """The entries in Raindrop's attachment shape, and how many did not fit it."""
        raw = self._first(event, "attachments")
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

    def _remaining(self, event: dict[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = event["properties"]
        consumed = self._consumed
        return {key: value for key, value in properties.items() if key not in consumed}

    # -- the items ---------------------------------------------------------------------------

    def _track(
        self, event: dict[str, Any], name: str, user_id: str | None, unusable: list[str]
    ) -> tuple[TrackEvent, int]:
        event_id = self._event_id(event)
        if user_id is None:
            raise InvalidEvent(f"event has no {self._paths.names('user_id')}")
        attachments, dropped = self._attachments(event)
        track = _validated(
            TrackEvent,
            event_id=event_id,
            user_id=user_id,
            event=name,
            timestamp=self._timestamp(event, unusable),
            properties=self._remaining(event),
            ai_data=self._ai_data(event),
            attachments=attachments,
        )
        return track, dropped

    def _signal(self, event: dict[str, Any], unusable: list[str]) -> Signal:
        properties: dict[str, Any] = event["properties"]
        event_id = self._first_text(event, "signal.event_id")
        if event_id is None:
            paths = self._paths.names("signal.event_id")
            raise InvalidEvent(f"feedback has no {paths} to link it to")
        sentiment = self._first(event, "signal.sentiment")
        ai_objects = self._ai_objects
        return _validated(
            Signal,
            event_id=event_id,
            signal_name=self._first_text(event, "signal.signal_name") or "feedback",
            signal_type=self._signal_type(event, properties),
            timestamp=self._timestamp(event, unusable),
            properties={key: value for key, value in properties.items() if key not in ai_objects},
            sentiment=_SENTIMENTS.get(sentiment.lower()) if isinstance(sentiment, str) else None,
            attachment_id=self._first_text(event, "signal.attachment_id"),
        )

    def _signal_type(self, event: dict[str, Any], properties: dict[str, Any]) -> str:
        """The kind asked for when it is one of Raindrop's; otherwise ``feedback`` when there
        is a comment (Raindrop needs one on feedback) and ``default`` when not."""
        asked = self._first(event, "signal.signal_type")
        if isinstance(asked, str) and asked in SIGNAL_TYPES:
            required = _REQUIRED_SIGNAL_PROPERTY.get(asked)
            if required is not None and _text(properties.get(required)) is None:
                raise InvalidEvent(f"{asked} signal has no properties.{required}")
            return asked
        return "feedback" if _text(properties.get("comment")) else "default"

    def _identify(self, event: dict[str, Any], traits: Any) -> Identify:
        user_id = self._user_id(event)
        if traits is None:
            traits = {}
        if not isinstance(traits, dict):
            raise InvalidEvent("traits is not an object")
        return _validated(Identify, user_id=user_id, traits=flatten_traits(traits))


def _merged(held: _HeldIdentify, enrichment: Identify) -> MappedItem:
    """The explicit identify with the track's context traits added; its own traits win."""
    try:
        merged = _validated(
            Identify,
            user_id=held.model.user_id,
            traits={**enrichment.traits, **held.model.traits},
        )
        return _item(Endpoint.IDENTIFY, merged, held.source)
    except (InvalidEvent, UnencodableText):
        # Each half was ready to send on its own; should their union not be, the explicit
        # identify goes as it came.
        return held.item


def _redacted(get: Getter, redactor: Redactor) -> Getter:
    return lambda event: redactor.value(get(event))


def _mirrored(event: dict[str, Any]) -> bool:
    context = event.get("context")
    library = context.get("library") if isinstance(context, dict) else None
    return isinstance(library, dict) and library.get("name") == MIRROR_LIBRARY_NAME


def _item(
    endpoint: Endpoint, model: BaseModel, source: int, *, optional: bool = False
) -> MappedItem:
    """The one place every item is serialised: a redactor would apply here, to the model's
    values, before anything becomes the bytes that leave the account."""
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


def _json_in_string(text: str, key: str) -> Any:
    """``properties.<key>`` (ai_data) sent as a JSON string, held to the limits of a whole
    event."""
    try:
        value = codec.loads(text)
    except codec.NestedTooDeeply:
        raise InvalidEvent(codec.TOO_DEEP) from None
    except codec.NumberTooLong:
        raise InvalidEvent(codec.NUMBER_TOO_LONG) from None
    except codec.JsonError:
        raise InvalidEvent(f"properties.{key} is a string but not JSON") from None
    if codec.depth_exceeds(value, codec.MAX_EVENT_DEPTH):
        raise InvalidEvent(codec.TOO_DEEP)
    return value


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


def _hash_user(user: str, key: bytes) -> str:
    """A keyed hash (HMAC-SHA256, 16 hex digits) of the deleted user's id, never the id.

    Keyed because an unkeyed hash of a short or numeric id is found again by trying them all.
    """
    # surrogatepass: a lone surrogate (legal in a JSON escape) must not crash the hash.
    message = user.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]
