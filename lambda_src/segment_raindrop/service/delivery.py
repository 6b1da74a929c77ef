"""The one way a job is sent: :func:`deliver`, with a sender per job kind.

Every entry point (the webhook, the mirror, the retry worker, replay, local mode) delivers a
:class:`~segment_raindrop.core.jobs.Job` here and gets a
:class:`~segment_raindrop.core.outcomes.ForwardResult` back, one outcome per event, which
:func:`~segment_raindrop.service.settlement.settle` then queues. A sender knows what its kind's
events are, which key it sends with and how they are chunked; the HTTP semantics (retries,
back-off, deadline, breaker, splitting) are :class:`HttpDelivery`'s, for both receivers.

:func:`preview` is the dry run of the same: what would be sent where, and what is invalid now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from segment_raindrop.adapters.http_delivery import HttpDelivery
from segment_raindrop.adapters.partials import PartialStore
from segment_raindrop.adapters.secrets import SecretStore
from segment_raindrop.adapters.targets import SEGMENT_BATCH_ENDPOINT, SEGMENT_BATCH_ENVELOPE
from segment_raindrop.core import codec
from segment_raindrop.core.chunking import Chunk, ChunkBuilder, Item
from segment_raindrop.core.codec import UnparsedEvent
from segment_raindrop.core.config import DeliveryConfig, MappingConfig
from segment_raindrop.core.contract import SEGMENT_MAX_BATCH_BYTES
from segment_raindrop.core.jobs import Job, JobKind, UndeliverableJob
from segment_raindrop.core.mapping.items import MapResult
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.outcomes import DeliveryReport, Failure, FailureReason, ForwardResult
from segment_raindrop.core.raindrop_api import SINGLE_OBJECT_ENDPOINTS
from segment_raindrop.core.segment_copy import encode
from segment_raindrop.core.stored_body import restored
from segment_raindrop.service.forwarding import Forwarder
from segment_raindrop.service.segment_copies import apply_patches
from segment_raindrop.service.tally import Ledger

# Events per Segment batch request; the bytes are bounded by Segment's 500 KB as well.
SEGMENT_BATCH_EVENTS = 100


@dataclass(frozen=True, slots=True)
class Channels:
    """What senders send with: the settings, both receivers and the keys."""

    mapping: MappingConfig
    delivery: DeliveryConfig
    raindrop: HttpDelivery
    # Built on first use: only the mirror's jobs go to Segment.
    segment: Callable[[], HttpDelivery]
    secrets: SecretStore
    # The mirror's partial events' table, for queued partial patches (None: not set).
    partials: PartialStore | None = None


@dataclass(slots=True)
class Preview:
    """What a job would send, by receiver and endpoint, and the events that would not go."""

    would_send: Counter[str] = field(default_factory=Counter)
    forwarded: int = 0
    filtered: dict[int, str] = field(default_factory=dict)
    invalid: dict[int, str] = field(default_factory=dict)


class Sender(Protocol):
    def send(self, job: Job, channels: Channels, *, deadline: float) -> ForwardResult: ...

    def preview(self, job: Job, channels: Channels) -> Preview: ...


def deliver(job: Job, channels: Channels, *, deadline: float) -> ForwardResult:
    """Send ``job`` by ``deadline`` (``time.monotonic()``).

    Raises ``SecretUnavailable`` (``RaindropKeyNotSet`` among them) when there is no key to
    send with, and :class:`UndeliverableJob` when the job cannot be sent as it stands.
    """
    return SENDERS[job.kind].send(job, channels, deadline=deadline)


def preview(job: Job, channels: Channels) -> Preview:
    return SENDERS[job.kind].preview(job, channels)


class _SegmentToRaindrop:
    """Segment events, mapped into Raindrop items (again on every retry and replay)."""

    def send(self, job: Job, channels: Channels, *, deadline: float) -> ForwardResult:
        secrets = channels.secrets
        forwarder = Forwarder(channels.mapping, channels.delivery, channels.raindrop)
        return forwarder.forward(
            job.events,
            api_key=secrets.ready_key(),
            deadline=deadline,
            refresh_key=secrets.fresh_raindrop_key,
            user_hash_key=secrets.get().deletion_hash_key,
            project=job.project,
        )

    def preview(self, job: Job, channels: Channels) -> Preview:
        mapped = map_events(job.events, channels.mapping)
        return Preview(
            would_send=Counter(item.endpoint.value for item in mapped.items),
            forwarded=len(mapped.mapped),
            filtered=mapped.filtered,
            invalid=mapped.invalid,
        )


class _RaindropPassThrough:
    """A Raindrop SDK request's items, to their endpoint as they are: the body as received on
    the first attempt; a 413 or a refusal splits it, each half built again from the items. An
    item that is not a JSON object (one too deep to read, kept as its raw text) is invalid on
    its own: the others go without it."""

    def send(self, job: Job, channels: Channels, *, deadline: float) -> ForwardResult:
        endpoint = job.raindrop_endpoint()
        secrets = channels.secrets
        invalid = _unsendable(job.events)
        items = tuple(
            Item(codec.dumps(event).encode("utf-8"), index)
            for index, event in enumerate(job.events)
            if index not in invalid
        )
        raw = None if invalid else job.raw
        session = channels.raindrop.session(
            api_key=secrets.ready_key(),
            deadline=deadline,
            refresh_key=secrets.fresh_raindrop_key,
            project=job.project,
        )
        if endpoint in SINGLE_OBJECT_ENDPOINTS:
            # One object per request: each item alone (a queued message may hold several).
            for item in items:
                session.submit(Chunk(endpoint, (item,), raw=raw if len(items) == 1 else None))
        elif items:
            session.submit(Chunk(endpoint, items, raw=raw))
        sent = [item.event_index for item in items]
        return ForwardResult.of(
            job.events, session.wait(), sent=sent, mapped=MapResult(invalid=invalid)
        )

    def preview(self, job: Job, channels: Channels) -> Preview:
        del channels
        return _as_they_are(job)


def _as_they_are(job: Job) -> Preview:
    """What sending a job's items to its endpoint as they are would do: send them all."""
    count = len(job.events)
    return Preview(Counter({f"raindrop/{job.endpoint or ''}": count}), forwarded=count)


def _unsendable(items: Sequence[Any]) -> dict[int, str]:
    """The items no Raindrop endpoint takes, with why (a fixed phrase, never content)."""
    invalid: dict[int, str] = {}
    for index, item in enumerate(items):
        if isinstance(item, UnparsedEvent):
            invalid[index] = item.reason
        elif not isinstance(item, dict):
            invalid[index] = "item is not a JSON object"
    return invalid


class _RaindropBytes:
    """Bodies Raindrop takes that are not JSON (OTLP spans as protobuf), each to the job's
    endpoint as it came, with its content type: one request per body, never split."""

    def send(self, job: Job, channels: Channels, *, deadline: float) -> ForwardResult:
        endpoint = job.raindrop_endpoint()
        secrets = channels.secrets
        invalid: dict[int, str] = {}
        chunks: list[Chunk] = []
        for index, event in enumerate(job.events):
            body = restored(event)
            if body is None:
                invalid[index] = "not a stored request body"
                continue
            content_type, data = body
            chunks.append(
                Chunk(endpoint, (Item(data, index),), raw=data, content_type=content_type)
            )
        session = channels.raindrop.session(
            api_key=secrets.ready_key(),
            deadline=deadline,
            refresh_key=secrets.fresh_raindrop_key,
            project=job.project,
        )
        for chunk in chunks:
            session.submit(chunk)
        sent = [chunk.items[0].event_index for chunk in chunks]
        return ForwardResult.of(
            job.events, session.wait(), sent=sent, mapped=MapResult(invalid=invalid)
        )

    def preview(self, job: Job, channels: Channels) -> Preview:
        del channels
        return _as_they_are(job)


class _MirrorToSegment:
    """Segment events the mirror made, to Segment's batch endpoint in batches within its
    limits (each event already cut to Segment's 32 KB by :func:`encode`)."""

    def send(self, job: Job, channels: Channels, *, deadline: float) -> ForwardResult:
        secret = channels.secrets.get()
        if not secret.segment_write_key_configured or secret.segment_write_key is None:
            raise UndeliverableJob("the Segment write key is missing or a placeholder")
        events = [_as_event(event) for event in job.events]
        builder = ChunkBuilder(
            max_items=SEGMENT_BATCH_EVENTS,
            max_bytes=SEGMENT_MAX_BATCH_BYTES - SEGMENT_BATCH_ENVELOPE,
        )
        session = channels.segment().session(api_key=secret.segment_write_key, deadline=deadline)
        for index, event in enumerate(events):
            chunk = builder.add(SEGMENT_BATCH_ENDPOINT, Item(encode(event).payload, index))
            if chunk is not None:
                session.submit(chunk)
        for chunk in builder.flush():
            session.submit(chunk)
        return ForwardResult.of(job.events, session.wait(), sent=range(len(events)))

    def preview(self, job: Job, channels: Channels) -> Preview:
        del channels
        count = len(job.events)
        return Preview(Counter({f"segment/{SEGMENT_BATCH_ENDPOINT}": count}), forwarded=count)


def _as_event(value: Any) -> dict[str, Any]:
    # Only the mirror writes these messages, always objects; anything else is sent empty and
    # refused by Segment on its own, rather than failing the whole message here.
    return value if isinstance(value, dict) else {}


class _PartialPatches:
    """Partial patches the mirror could not merge when they came: merged in the table now,
    and the interactions they finish (or follow up) sent to Segment. A patch succeeds once it
    is merged and its interaction, if any, reached Segment; one the table still cannot take,
    or whose Segment event failed, fails as transient and is applied again later (merging it
    twice changes nothing, and its event's ``messageId`` is the same)."""

    def send(self, job: Job, channels: Channels, *, deadline: float) -> ForwardResult:
        if channels.partials is None:
            raise UndeliverableJob("no partials table (PARTIALS_TABLE) to merge partial events in")
        patches = list(job.events)
        copies = apply_patches(
            patches, mapping=channels.mapping, partials=channels.partials, ledger=Ledger()
        )
        invalid = dict(copies.not_mirrorable)
        to_segment = ForwardResult.of([], DeliveryReport(), sent=[])
        if copies.events:  # patches that only keep an interaction open need no write key
            sent = Job(JobKind.MIRROR_TO_SEGMENT, copies.events)
            to_segment = _MirrorToSegment().send(sent, channels, deadline=deadline)
        failures = {
            index: Failure(FailureReason.TRANSIENT, error=why) for index, _, why in copies.deferred
        }
        for position, failure in to_segment.failures.items():
            failures.setdefault(copies.sources[position], failure)
        result = ForwardResult.of(
            patches, to_segment.delivery, sent=[], mapped=MapResult(invalid=invalid)
        )
        result.failures.update(failures)
        result.forwarded.update(
            index for index in range(len(patches)) if index not in result.failures
        )
        return result

    def preview(self, job: Job, channels: Channels) -> Preview:
        del channels
        count = len(job.events)
        return Preview(Counter({"partials/merge": count}), forwarded=count)


SENDERS: Mapping[JobKind, Sender] = {
    JobKind.SEGMENT_TO_RAINDROP: _SegmentToRaindrop(),
    JobKind.RAINDROP_PASS_THROUGH: _RaindropPassThrough(),
    JobKind.MIRROR_TO_SEGMENT: _MirrorToSegment(),
    JobKind.RAINDROP_BYTES: _RaindropBytes(),
    JobKind.PARTIAL_PATCHES: _PartialPatches(),
}
