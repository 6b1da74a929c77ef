"""The Segment copies of what Raindrop's SDK sent: one Segment event per item, and for partial
events (``events/track_partial``) one per interaction, once it is finished.

Partial events are merged by event_id in the partials table
(:mod:`segment_raindrop.adapters.partials`); without a table, only an interaction sent whole
(one finishing patch) can be mirrored. A patch that arrives after its interaction finished is
merged into the finished interaction, sent again as a follow-up (a new revision). A patch the
table cannot take now (throttled, unavailable, racing past its attempts) is *deferred*: the
mirror queues it as a :attr:`~segment_raindrop.core.jobs.JobKind.PARTIAL_PATCHES` job and the
retry worker applies it later (:func:`apply_patches`). Every item that yields no copy now is
counted on the Segment ledger with why (pending, untracked, deferred, not mirrorable) and
logged with its ids. A patch that can never be merged (no event_id, one over
:data:`MAX_EVENT_ID_BYTES`, or one the table refuses for good: a ValidationException) is not
mirrorable; so is an interaction whose finishing patch found nothing of its start (counted as
lost, ``MirrorPartialsLost``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segment_raindrop.adapters.observability import count, logger
from segment_raindrop.adapters.partials import (
    STATE_MAX_BYTES,
    Finished,
    PartialStore,
    PartialsUnavailable,
    PatchRefused,
)
from segment_raindrop.core import codec
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import Metric
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop.core.segment_copy import NotMirrorable, encode, fit_state, to_segment
from segment_raindrop.service.tally import Count, Ledger

# The longest event_id merged in the table (DynamoDB's partition key takes 2,048 bytes).
MAX_EVENT_ID_BYTES = 1_024


@dataclass(slots=True)
class Copies:
    """The Segment events to send now, and what could not be decided now."""

    events: list[dict[str, Any]] = field(default_factory=list)
    # For each event, the index of the item it was made from.
    sources: list[int] = field(default_factory=list)
    # Partial patches the table could not take now (index, patch cut like stored state, why).
    deferred: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)
    # Items that can never make a Segment event (index -> why, a fixed phrase).
    not_mirrorable: dict[int, str] = field(default_factory=dict)


def segment_copies(
    endpoint: Endpoint,
    items: list[Any],
    *,
    mapping: MappingConfig,
    partials: PartialStore | None,
    ledger: Ledger,
) -> Copies:
    """The Segment events to send for ``items``, each within Segment's 32 KB."""
    copies = Copies()
    for index, item in enumerate(items):
        if endpoint is Endpoint.TRACK_PARTIAL and partials is not None:
            source = _merged(index, item, partials, ledger, copies)
        else:
            source = _unmerged(endpoint, item, ledger)
        if source is None:
            continue
        try:
            event = to_segment(endpoint, source.item, mapping, revision=source.revision)
        except NotMirrorable as exc:
            _not_mirrorable(index, item, str(exc), ledger, copies)
            if endpoint is Endpoint.TRACK_PARTIAL and partials is not None:
                _lost(item, source, ledger)
            continue
        if encode(event).truncated or source.cut:  # cuts ``event`` in place, to fit a queue too
            ledger.counts[Count.TRUNCATED] += 1
        copies.events.append(event)
        copies.sources.append(index)
    return copies


def apply_patches(
    patches: list[Any], *, mapping: MappingConfig, partials: PartialStore, ledger: Ledger
) -> Copies:
    """Queued partial patches (a ``partial_patches`` job) applied to the table again."""
    return segment_copies(
        Endpoint.TRACK_PARTIAL, patches, mapping=mapping, partials=partials, ledger=ledger
    )


def _unmerged(endpoint: Endpoint, item: Any, ledger: Ledger) -> Finished | None:
    """The item to mirror as it is; without a table, a partial event only when it finishes
    its interaction on its own."""
    if endpoint is not Endpoint.TRACK_PARTIAL:
        return Finished(item, 1)
    if item.get("is_pending") is not False:
        ledger.counts[Count.PENDING_UNTRACKED] += 1
        return None
    return Finished({key: value for key, value in item.items() if key != "is_pending"}, 1)


def _merged(
    index: int, patch: Any, partials: PartialStore, ledger: Ledger, copies: Copies
) -> Finished | None:
    """The whole interaction once ``patch`` finishes it (or comes after it finished); None
    while it is open, or when the patch is deferred."""
    unmergeable = _unmergeable(patch)
    if unmergeable:
        _not_mirrorable(index, patch, unmergeable, ledger, copies)
        return None
    # Cut like stored state first: what is applied now is what a queued retry applies (the
    # same digest, so it is applied once).
    kept = dict(patch)
    fit_state(kept, max_bytes=STATE_MAX_BYTES)
    try:
        finished = partials.add(kept)
    except PatchRefused as exc:
        _not_mirrorable(index, patch, str(exc), ledger, copies, code=exc.code)
        return None
    except PartialsUnavailable as exc:
        copies.deferred.append((index, kept, str(exc)))
        ledger.counts[Count.PARTIALS_DEFERRED] += 1
        logger.warning(
            "partial event not merged now; queued for the retry worker",
            extra={**_ids(patch), "reason": str(exc)},
        )
        return None
    if finished is None:
        ledger.counts[Count.PENDING] += 1
    elif finished.revision > 1:
        ledger.counts[Count.REVISED] += 1
        logger.info(
            "finished interaction sent again with a patch that came after it finished",
            extra={**_ids(patch), "revision": finished.revision},
        )
    return finished


def _unmergeable(patch: Any) -> str:
    """Why ``patch`` can never be merged in the table (a fixed phrase), or ""."""
    event_id = patch.get("event_id") if isinstance(patch, dict) else None
    if not isinstance(event_id, str) or not event_id:
        return "partial event has no event_id"
    if codec.utf8_size(event_id) > MAX_EVENT_ID_BYTES:
        return f"partial event's event_id is over {MAX_EVENT_ID_BYTES} bytes"
    return ""


def _not_mirrorable(
    index: int, item: Any, why: str, ledger: Ledger, copies: Copies, *, code: str = ""
) -> None:
    ledger.counts[Count.NOT_MIRRORABLE] += 1
    copies.not_mirrorable[index] = why
    extra = {**_ids(item), "reason": why, **({"code": code} if code else {})}
    logger.warning("item not mirrored", extra=extra)


def _lost(patch: Any, source: Finished, ledger: Ledger) -> None:
    """A merged interaction Segment cannot take when it finished (revision 1): its finishing
    patch found nothing of its start (never seen, or expired) to finish."""
    if source.revision != 1:
        return
    ledger.counts[Count.PARTIALS_LOST] += 1
    count(Metric.MIRROR_PARTIALS_LOST)
    logger.warning(
        "interaction lost: its finishing patch found no start to finish", extra=_ids(patch)
    )


# The longest event_id a log line holds whole.
_LOGGED_ID_CHARS = 200


def _ids(item: Any) -> dict[str, Any]:
    """What names an item in a log line: its event_id (the start of a very long one), never
    its content."""
    event_id = item.get("event_id") if isinstance(item, dict) else None
    return {"event_id": event_id[:_LOGGED_ID_CHARS]} if isinstance(event_id, str) else {}
