"""The Segment copies of what Raindrop's SDK sent: one Segment event per item, and for partial
events (``events/track_partial``) one per interaction, once it is finished.

Partial events are merged by event_id in the partials table
(:mod:`segment_raindrop.adapters.partials`); without a table, only an interaction sent whole
(one finishing patch) can be mirrored. Every item that yields no copy now is counted on the
Segment ledger with why: pending, untracked, lost (the table failed), not mirrorable.
"""

from __future__ import annotations

from typing import Any

from segment_raindrop.adapters.observability import logger
from segment_raindrop.adapters.partials import PartialStore, PartialsUnavailable
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop.core.segment_copy import NotMirrorable, encode, to_segment
from segment_raindrop.service.tally import Count, Ledger


def segment_copies(
    endpoint: Endpoint,
    items: list[Any],
    *,
    mapping: MappingConfig,
    partials: PartialStore | None,
    ledger: Ledger,
) -> list[dict[str, Any]]:
    """The Segment events to send for ``items``, each within Segment's 32 KB."""
    events: list[dict[str, Any]] = []
    for item in items:
        source = _finished(endpoint, item, partials, ledger)
        if source is None:
            continue
        try:
            event = to_segment(endpoint, source, mapping)
        except NotMirrorable as exc:
            ledger.counts[Count.NOT_MIRRORABLE] += 1
            logger.warning("item not mirrored", extra={"reason": str(exc)})
            continue
        if encode(event).truncated:  # cuts ``event`` in place, so what is queued fits too
            ledger.counts[Count.TRUNCATED] += 1
        events.append(event)
    return events


def _finished(endpoint: Endpoint, item: Any, partials: PartialStore | None, ledger: Ledger) -> Any:
    """The item to mirror: itself, or for a partial event the whole interaction once it is
    finished (None while it is pending, or when its patches cannot be kept)."""
    if endpoint is not Endpoint.TRACK_PARTIAL:
        return item
    finished = item.get("is_pending") is False
    if partials is None:
        if not finished:
            ledger.counts[Count.PENDING_UNTRACKED] += 1
            return None
        return {key: value for key, value in item.items() if key != "is_pending"}
    try:
        merged = partials.add(item)
    except PartialsUnavailable as exc:
        ledger.counts[Count.PARTIALS_LOST] += 1
        logger.error("partial event not mirrored", extra={"reason": str(exc)})
        return None
    if merged is None:
        ledger.counts[Count.PENDING] += 1
    return merged
