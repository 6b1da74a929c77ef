"""Segment events -> Raindrop items (docs/wire.md §3, the product's contract).

Each Segment event ends as exactly one of mapped, filtered or invalid (see
:mod:`~segment_raindrop.core.mapping.items`); :class:`Mapper` decides which, one event at a time,
so delivery can start while the rest of a request is still being mapped.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from segment_raindrop.core import codec
from segment_raindrop.core.codec import UnparsedEvent
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import LOOP_FILTER_REASON
from segment_raindrop.core.field_paths import FieldPaths
from segment_raindrop.core.mapping.fields import FieldReader
from segment_raindrop.core.mapping.items import (
    InvalidEvent,
    MappedItem,
    MapResult,
    UnencodableText,
    serialise,
    validated,
)
from segment_raindrop.core.mapping.values import flatten_traits, hash_user, is_mirrored, text
from segment_raindrop.core.raindrop_api import (
    SIGNAL_TYPES,
    Endpoint,
    Identify,
    Signal,
    TrackEvent,
)
from segment_raindrop.core.redaction import Redactor

# Hashes user ids for the deletion log when no per-deployment key is given (tests, benchmarks,
# and call sites not yet given the secret's key): random per process, so the hashes cannot be
# reversed, but neither can they be compared across processes.
PROCESS_USER_HASH_KEY = secrets.token_bytes(32)
_NOT_FORWARDED_TYPES = frozenset({"page", "screen", "group", "alias"})
_SENTIMENTS = {"positive": "POSITIVE", "negative": "NEGATIVE"}
# What Raindrop needs in a signal's properties when the signal is of that kind.
_REQUIRED_SIGNAL_PROPERTY = {"feedback": "comment", "edit": "after"}


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

    event_index: int
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
        self._fields = FieldReader(FieldPaths.from_overrides(config.field_paths), self._redactor)
        # user id -> (item, identify) from the first track that carried the user's traits.
        self._enrichment: dict[str, tuple[MappedItem, Identify]] = {}
        self._identifies: list[_HeldIdentify] = []
        self._finished = False

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
        if is_mirrored(event):
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
            item = serialise(Endpoint.IDENTIFY, identify, index)  # fails here, in its own add
            self._identifies.append(_HeldIdentify(index, identify, item))
            return []
        if kind == "delete":
            user_id = self._fields.optional_user_id(event) or ""
            self._result.deletions.append(hash_user(user_id, self._user_hash_key))
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
        event = self._fields.decoded(event, ai_objects=not is_signal)
        # Redacted once decoded: ai_data sent as JSON text is redacted as the values it holds.
        properties = event["properties"]
        redacted = self._redactor.value(properties)
        if redacted is not properties:
            event = {**event, "properties": redacted}
        user_id = self._fields.optional_user_id(event)  # once: the item and enrichment both need it
        unusable: list[str] = []  # timestamp fields passed over
        dropped = 0
        if is_signal:
            items = [serialise(Endpoint.SIGNAL, self._signal(event, unusable), index)]
        else:
            renamed = self._config.event_renames.get(name, name)
            track, dropped = self._track(event, renamed, user_id, unusable)
            items = [serialise(Endpoint.TRACK, track, index)]
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
            identify = validated(Identify, user_id=user_id, traits=flat)
            # Serialised now, so that unencodable text is repaired in this event's own add.
            item = serialise(Endpoint.IDENTIFY, identify, index, optional=True)
        except InvalidEvent:
            return  # enrichment is a bonus: never lose the AI event over it
        self._enrichment[user_id] = (item, identify)

    # -- the items ---------------------------------------------------------------------------

    def _track(
        self, event: dict[str, Any], name: str, user_id: str | None, unusable: list[str]
    ) -> tuple[TrackEvent, int]:
        event_id = self._fields.event_id(event)
        if user_id is None:
            raise InvalidEvent(f"event has no {self._fields.paths.names('user_id')}")
        attachments, dropped = self._fields.attachments(event)
        track = validated(
            TrackEvent,
            event_id=event_id,
            user_id=user_id,
            event=name,
            timestamp=self._fields.timestamp(event, unusable),
            properties=self._fields.remaining_properties(event),
            ai_data=self._fields.ai_data(event),
            attachments=attachments,
        )
        return track, dropped

    def _signal(self, event: dict[str, Any], unusable: list[str]) -> Signal:
        properties: dict[str, Any] = event["properties"]
        event_id = self._fields.first_text(event, "signal.event_id")
        if event_id is None:
            paths = self._fields.paths.names("signal.event_id")
            raise InvalidEvent(f"feedback has no {paths} to link it to")
        sentiment = self._fields.first(event, "signal.sentiment")
        ai_objects = self._fields.ai_objects
        return validated(
            Signal,
            event_id=event_id,
            signal_name=self._fields.first_text(event, "signal.signal_name") or "feedback",
            signal_type=self._signal_type(event, properties),
            timestamp=self._fields.timestamp(event, unusable),
            properties={key: value for key, value in properties.items() if key not in ai_objects},
            sentiment=_SENTIMENTS.get(sentiment.lower()) if isinstance(sentiment, str) else None,
            attachment_id=self._fields.first_text(event, "signal.attachment_id"),
        )

    def _signal_type(self, event: dict[str, Any], properties: dict[str, Any]) -> str:
        """The kind asked for when it is one of Raindrop's; otherwise ``feedback`` when there
        is a comment (Raindrop needs one on feedback) and ``default`` when not."""
        asked = self._fields.first(event, "signal.signal_type")
        if isinstance(asked, str) and asked in SIGNAL_TYPES:
            required = _REQUIRED_SIGNAL_PROPERTY.get(asked)
            if required is not None and text(properties.get(required)) is None:
                raise InvalidEvent(f"{asked} signal has no properties.{required}")
            return asked
        return "feedback" if text(properties.get("comment")) else "default"

    def _identify(self, event: dict[str, Any], traits: Any) -> Identify:
        user_id = self._fields.user_id(event)
        if traits is None:
            traits = {}
        if not isinstance(traits, dict):
            raise InvalidEvent("traits is not an object")
        return validated(Identify, user_id=user_id, traits=flatten_traits(traits))


def _merged(held: _HeldIdentify, enrichment: Identify) -> MappedItem:
    """The explicit identify with the track's context traits added; its own traits win."""
    try:
        merged = validated(
            Identify,
            user_id=held.model.user_id,
            traits={**enrichment.traits, **held.model.traits},
        )
        return serialise(Endpoint.IDENTIFY, merged, held.event_index)
    except (InvalidEvent, UnencodableText):
        # Each half was ready to send on its own; should their union not be, the explicit
        # identify goes as it came.
        return held.item
