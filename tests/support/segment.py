"""Segment-side helpers only the tests need: the envelope Segment's server libraries post, and
which of the traceable events the default mapping filters."""

from __future__ import annotations

from datetime import datetime

from segment_raindrop_tools.events import ORDER_COMPLETED
from segment_raindrop_tools.samples import DEFAULT_START, Event, iso


def tracking_api_envelope(events: list[Event], *, sent_at: datetime = DEFAULT_START) -> Event:
    """``events`` in the ``{"batch": [...]}`` envelope Segment's server libraries post."""
    return {
        "batch": events,
        "sentAt": iso(sent_at),
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
    }


def is_filtered(event: Event) -> bool:
    """Whether the default mapping filters ``event`` (among the traceable events)."""
    return event.get("type") == "page" or event.get("event") == ORDER_COMPLETED
