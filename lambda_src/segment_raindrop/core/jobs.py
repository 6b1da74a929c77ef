"""A job: events to deliver, what they are and where they go.

Every entry point turns what it received into jobs, and every job travels the same way:
deliver -> settle -> tally -> answer. A job that cannot be delivered now waits on a queue as a
:class:`~segment_raindrop.core.queue_message.QueueMessage` holding the same four things, so the
retry worker and replay deliver it exactly as its first attempt would have.

To add a kind: a member here, and its sender in :mod:`segment_raindrop.service.senders`
(docs/architecture.md, "Adding a job kind").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from segment_raindrop.core.raindrop_api import Endpoint


class Destination(StrEnum):
    RAINDROP = "raindrop"
    SEGMENT = "segment"


class JobKind(StrEnum):
    """What a job's events are; the value is what queue messages say (``kind``)."""

    # Segment events (webhook): mapped into Raindrop items when sent, again on every retry.
    SEGMENT_TO_RAINDROP = "segment_events"
    # A Raindrop SDK request's items (the mirror's route), sent to ``endpoint`` as they are.
    RAINDROP_PASS_THROUGH = "raindrop_items"  # noqa: S105 - a kind, not a password
    # Segment events the mirror made of Raindrop items, for Segment's batch endpoint.
    MIRROR_TO_SEGMENT = "mirror_to_segment"
    # Request bodies Raindrop takes that are not JSON (the SDK's OTLP spans as protobuf), each
    # held by :mod:`segment_raindrop.core.stored_body` and sent to ``endpoint`` as it came.
    RAINDROP_BYTES = "raindrop_bytes"
    # Raindrop partial patches (``events/track_partial`` items) the mirror could not merge in
    # its table now: applied to the table again when sent, their finished interactions then
    # sent to Segment.
    PARTIAL_PATCHES = "partial_patches"

    @property
    def summarised_when_oversized(self) -> bool:
        """Whether an event too large for any queue message is recorded on the dead-letter
        queue by its identifying fields. Segment's events are (Segment caps them at 32 KB, so
        only a sender other than Segment gets there, and Segment would resend such an event for
        hours); a Raindrop SDK request's items are not: the SDK still holds them whole and is
        answered 503."""
        return self not in (JobKind.RAINDROP_PASS_THROUGH, JobKind.RAINDROP_BYTES)

    @property
    def destination(self) -> Destination:
        if self in (JobKind.MIRROR_TO_SEGMENT, JobKind.PARTIAL_PATCHES):
            return Destination.SEGMENT
        return Destination.RAINDROP


class UndeliverableJob(ValueError):
    """The job cannot be sent as it stands (no endpoint for Raindrop items, say); safe to log."""


@dataclass(frozen=True, slots=True)
class Job:
    kind: JobKind
    events: Sequence[Any]
    # For Raindrop items: the Raindrop endpoint they go to (events/track...).
    endpoint: str | None = None
    # The Raindrop project (X-Raindrop-Project-Id); None: the configured default.
    project: str | None = None
    # The body exactly as received, sent as it is on the first attempt (Raindrop items only).
    raw: bytes | None = None

    def raindrop_endpoint(self) -> Endpoint:
        """The endpoint of a pass-through job; raises :class:`UndeliverableJob`."""
        try:
            return Endpoint(self.endpoint or "")
        except ValueError:
            raise UndeliverableJob("the job names no known Raindrop endpoint") from None
