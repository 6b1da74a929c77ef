"""Sending what needs no mapping: a Raindrop SDK request's items to Raindrop, and the mirror's
Segment events to Segment. The mirror sends through these first; the retry worker and replay
send queued ``raindrop_items`` and Segment-bound messages through :func:`deliver_message`.

Both ride on :mod:`segment_raindrop.adapters.http_delivery` (retries, back-off, deadline, breaker,
splitting) and answer with a :class:`~segment_raindrop.service.forwarding.ForwardResult`, so
:func:`~segment_raindrop.service.settlement.settle` queues their failures like the webhook's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from segment_raindrop.adapters.http_delivery import KeyRefresher, RaindropClient, SegmentClient
from segment_raindrop.adapters.queue_writer import Destination, FailedEventsMessage, MessageKind
from segment_raindrop.core import codec
from segment_raindrop.core.chunking import Chunk, ChunkBuilder
from segment_raindrop.core.contract import SEGMENT_MAX_BATCH_BYTES
from segment_raindrop.core.mapping import MappedItem
from segment_raindrop.core.raindrop_api import SINGLE_OBJECT_ENDPOINTS, Endpoint
from segment_raindrop.core.segment_copy import encode
from segment_raindrop.service.forwarding import ForwardResult, delivered

if TYPE_CHECKING:
    from segment_raindrop.adapters.secrets import SecretStore

# Events per Segment batch request; the bytes are bounded by Segment's 500 KB as well.
SEGMENT_BATCH_EVENTS = 100
_BATCH_ENVELOPE = len(b'{"batch":[]}')


class CannotDeliver(Exception):
    """A queued message cannot be sent now (no key, an unknown endpoint); safe to log."""


def send_raindrop_items(
    client: RaindropClient,
    endpoint: Endpoint,
    items: Sequence[Any],
    *,
    api_key: str,
    deadline: float,
    refresh_key: KeyRefresher | None = None,
    project: str | None = None,
    raw: bytes | None = None,
) -> ForwardResult:
    """``items`` to ``endpoint`` in one request (``raw``: the body exactly as received).

    A 413 or a refusal splits the request as the webhook's would, each half built again from
    the items, so one bad item does not sink its neighbours.
    """
    mapped = tuple(
        MappedItem(endpoint, codec.dumps(item).encode("ascii"), index)
        for index, item in enumerate(items)
    )
    session = client.session(
        api_key=api_key, deadline=deadline, refresh_key=refresh_key, project=project
    )
    if endpoint in SINGLE_OBJECT_ENDPOINTS:
        # One object per request: each item alone (a queued message may hold several).
        for item in mapped:
            session.submit(Chunk(endpoint, (item,), raw=raw if len(mapped) == 1 else None))
    elif mapped:
        session.submit(Chunk(endpoint, mapped, raw=raw))
    return delivered(items, range(len(items)), session.wait())


def send_segment_events(
    client: SegmentClient,
    events: Sequence[dict[str, Any]],
    *,
    write_key: str,
    deadline: float,
) -> ForwardResult:
    """``events`` to Segment's batch endpoint, in batches within Segment's limits."""
    builder = ChunkBuilder(
        max_items=SEGMENT_BATCH_EVENTS, max_bytes=SEGMENT_MAX_BATCH_BYTES - _BATCH_ENVELOPE
    )
    session = client.session(api_key=write_key, deadline=deadline)
    for index, event in enumerate(events):
        # The endpoint only groups the events for chunking: Segment has the one batch endpoint.
        item = MappedItem(Endpoint.TRACK, encode(event).payload, index)
        chunk = builder.add(item)
        if chunk is not None:
            session.submit(chunk)
    for chunk in builder.flush():
        session.submit(chunk)
    return delivered(events, range(len(events)), session.wait())


def deliver_message(
    message: FailedEventsMessage,
    *,
    raindrop: RaindropClient,
    segment: SegmentClient | None,
    secrets: SecretStore,
    deadline: float,
) -> ForwardResult:
    """A queued message of the mirror's (``raindrop_items``, or anything for Segment) sent
    again; raises :class:`CannotDeliver` when it cannot be tried now."""
    if message.destination is Destination.SEGMENT:
        secret = secrets.get()
        if segment is None:
            raise CannotDeliver("no Segment client to deliver with")
        if not secret.segment_write_key_configured or secret.segment_write_key is None:
            raise CannotDeliver("the Segment write key is missing or a placeholder")
        events = [event if isinstance(event, dict) else {} for event in message.events]
        return send_segment_events(
            segment, events, write_key=secret.segment_write_key, deadline=deadline
        )
    if message.kind is not MessageKind.RAINDROP_ITEMS:
        raise CannotDeliver("not a message of the mirror's")
    try:
        endpoint = Endpoint(message.endpoint or "")
    except ValueError:
        raise CannotDeliver("the message names no known Raindrop endpoint") from None
    return send_raindrop_items(
        raindrop,
        endpoint,
        message.events,
        api_key=secrets.ready_key(),
        deadline=deadline,
        refresh_key=secrets.fresh_raindrop_key,
        project=message.project,
    )


def is_mirror_message(message: FailedEventsMessage) -> bool:
    return (
        message.destination is not Destination.RAINDROP
        or message.kind is not MessageKind.SEGMENT_EVENTS
    )
