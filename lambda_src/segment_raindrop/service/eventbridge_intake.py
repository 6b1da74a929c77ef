"""The EventBridge intake: a batch of SQS records, each an EventBridge envelope holding one
Segment event, delivered to Raindrop as the webhook delivers a request.

Segment's Amazon EventBridge (Actions) destination puts events on a partner event source; the
stack's rule sends what the mapping would forward to an SQS queue, and the consumer gets them
in batches (:mod:`segment_raindrop.handlers.eventbridge`). From there every step is the
webhook's: the Segment events of the batch become one ``segment_events`` job per Raindrop
project (:mod:`segment_raindrop.core.jobs`), delivered, settled and tallied by
:func:`segment_raindrop.service.intake.take`, so mapping, field paths, redaction, chunking,
retries, the retry queue, the dead-letter queue and its message format, replay and metrics are
the same code.

How each record ends:

- its event delivered, filtered, or queued (the retry queue for transient failures, the
  dead-letter queue for invalid or rejected ones): the record succeeds and SQS deletes it;
- not an envelope holding a Segment event, or from a partner source not configured in
  ``SEGMENT_EVENT_SOURCES``: dead-lettered as invalid with the reason, its body kept as text;
- no key to send with (the secret unreadable, the Raindrop key not set yet): queued for the
  retry worker, like a transient failure;
- neither delivered nor queued (SQS unreachable): the record fails (a batch item failure), so
  SQS hands it over again; after the queue's redrive count it waits on the intake's own
  dead-letter queue.

Delivery is at least once: a record handed over twice (EventBridge's and SQS's own duplicates,
a batch retried after a failure) sends its event again with the same ``event_id``
(docs/deploy.md, "At least once").
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from segment_raindrop.adapters.observability import logger
from segment_raindrop.core.eventbridge import Envelope, EnvelopeError, read_envelope
from segment_raindrop.core.jobs import Job, JobKind
from segment_raindrop.core.projects import resolved
from segment_raindrop.core.timing import deadline_within
from segment_raindrop.service.intake import refuse, take
from segment_raindrop.service.requests import (
    ANSWER_RESERVE_SECONDS,
    QUEUEING_RESERVE_SECONDS,
    Deadlines,
)
from segment_raindrop.service.runtime import Runtime
from segment_raindrop.service.settlement import Settlement
from segment_raindrop.service.tally import Count, Tally

# What the metrics and the log line count, in this order; they add up to ``received``.
COUNTED = (Count.RECEIVED, Count.FORWARDED, Count.FILTERED, Count.QUEUED, Count.DEAD_LETTERED)


@dataclass(frozen=True, slots=True)
class Record:
    """One SQS record: its message id (what a batch item failure names) and its body."""

    message_id: str
    body: str


@dataclass(slots=True)
class BatchOutcome:
    """The message ids of the records that failed, and what the batch did."""

    failed: set[str] = field(default_factory=set)
    tally: Tally = field(default_factory=Tally)
    invalid_by_reason: Counter[str] = field(default_factory=Counter)
    projects: Counter[str] = field(default_factory=Counter)


def batch_deadlines(started: float, *, remaining: float, budget: float) -> Deadlines:
    """When delivery stops (``budget`` from ``started``, within the time the invocation has
    left less what queueing needs), and past which SQS is not asked again."""
    return Deadlines(
        delivery=deadline_within(
            started, budget=budget, remaining=remaining, reserve=QUEUEING_RESERVE_SECONDS
        ),
        queueing=time.monotonic() + remaining - ANSWER_RESERVE_SECONDS,
    )


@dataclass(slots=True)
class _Sorted:
    """A batch's records: the Segment events by project, and what is not one."""

    by_project: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    invalid: list[tuple[str, str, str]] = field(default_factory=list)


def _project(rt: Runtime, envelope: Envelope) -> str:
    sources = rt.config.segment_event_sources
    if sources and envelope.source not in sources:
        raise EnvelopeError("event source is not configured (SEGMENT_EVENT_SOURCES)")
    return resolved(sources.get(envelope.source), rt.config.delivery.project_id)


def _sort(rt: Runtime, records: Sequence[Record]) -> _Sorted:
    batch = _Sorted()
    for record in records:
        try:
            envelope = read_envelope(record.body)
            project = _project(rt, envelope)
        except EnvelopeError as exc:
            batch.invalid.append((record.message_id, record.body, str(exc)))
            continue
        batch.by_project.setdefault(project, []).append((record.message_id, envelope.detail))
    return batch


def receive(
    rt: Runtime, records: Sequence[Record], times: Deadlines, *, request_id: str
) -> BatchOutcome:
    """Deliver the batch's events, queue what failed, and say which records failed."""
    outcome = BatchOutcome()
    tally = outcome.tally
    tally.raindrop.counts[Count.RECEIVED] = len(records)
    batch = _sort(rt, records)
    for project, entries in batch.by_project.items():
        job = Job(JobKind.SEGMENT_TO_RAINDROP, [event for _, event in entries], project=project)
        _, settlement = take(
            rt, job, times, request_id=request_id, tally=tally, queue_when_unsent=True
        )
        outcome.failed |= _unqueued(settlement, [message_id for message_id, _ in entries])
        outcome.projects[project] += len(entries)
    if batch.invalid:
        # Kept as the text that arrived: an event that is no Segment event maps as invalid
        # again when replayed, never as filtered.
        job = Job(
            JobKind.SEGMENT_TO_RAINDROP,
            [body for _, body, _ in batch.invalid],
            project=resolved(None, rt.config.delivery.project_id),
        )
        reasons = {index: reason for index, (_, _, reason) in enumerate(batch.invalid)}
        _, settlement = refuse(rt, job, reasons, times, request_id=request_id, tally=tally)
        outcome.failed |= _unqueued(settlement, [message_id for message_id, _, _ in batch.invalid])
        outcome.invalid_by_reason.update(reasons.values())
    tally.publish(*COUNTED)
    return outcome


def _unqueued(settlement: Settlement, message_ids: list[str]) -> set[str]:
    return {message_ids[index] for index in settlement.unqueued}


def log_batch(outcome: BatchOutcome, *, records: int, duration_ms: float) -> None:
    """One line per batch: counts, reasons and Raindrop's answers, never event content."""
    ledger = outcome.tally.raindrop
    if outcome.failed:
        logger.error(
            "events could be neither delivered nor queued; their records come back",
            extra={"records_failed": len(outcome.failed)},
        )
    logger.info(
        "eventbridge batch processed",
        extra={
            **ledger.of(*COUNTED),
            "records": records,
            "records_failed": len(outcome.failed),
            "projects": dict(outcome.projects),
            "invalid_envelopes": dict(outcome.invalid_by_reason),
            "failures_by_reason": dict(ledger.failed_by_reason),
            "filtered_by_reason": dict(ledger.filtered_by_reason),
            "texts_repaired": ledger.counts[Count.TEXTS_REPAIRED],
            "attachments_dropped": ledger.counts[Count.ATTACHMENTS_DROPPED],
            "redactions": dict(ledger.redactions),
            "raindrop_requests": ledger.delivery.requests,
            "raindrop_statuses": dict(ledger.delivery.statuses),
            "duration_ms": duration_ms,
        },
    )
