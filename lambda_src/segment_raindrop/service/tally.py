"""What one invocation did to its events, by destination, for the answer, metrics and log.

Every entry point counts the same way: each delivered job adds its result and settlement to the
ledger of the job's destination. Raindrop's ledger publishes the event metrics the entry point
names (``EventsForwarded``...) with dead letters by reason, redactions and Raindrop's request
metrics; Segment's ledger (the mirror's copies) publishes ``MirrorEventsSent``,
``MirrorFailures`` and ``MirrorEventsTruncated``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from segment_raindrop.adapters.observability import count, count_by, measure
from segment_raindrop.core.contract import Metric
from segment_raindrop.core.jobs import Destination, Job
from segment_raindrop.core.outcomes import DeliveryReport, ForwardResult
from segment_raindrop.service.settlement import Settlement


class Count(StrEnum):
    RECEIVED = "received"
    FORWARDED = "forwarded"
    FILTERED = "filtered"
    QUEUED = "queued"
    DEAD_LETTERED = "dead_lettered"
    # Neither delivered nor queued: the entry point answers for them (503, the message back).
    UNQUEUED = "unqueued"
    TEXTS_REPAIRED = "texts_repaired"
    ATTACHMENTS_DROPPED = "attachments_dropped"
    # The mirror's Segment copies, before any delivery: items Segment could not take, copies
    # cut to 32 KB, partial patches waiting for their interaction, deferred (the table failed:
    # queued, so also counted as queued), interactions lost (finished with nothing of their
    # start), finished interactions sent again with a late patch, and items not mirrored
    # because the write key is missing.
    NOT_MIRRORABLE = "not_mirrorable"
    TRUNCATED = "truncated"
    PENDING = "pending"
    PENDING_UNTRACKED = "pending_untracked"
    PARTIALS_DEFERRED = "partials_deferred"
    PARTIALS_LOST = "partials_lost"
    REVISED = "revised"
    DISABLED = "disabled"


# The event counts as the webhook answers them, and their metrics.
EVENT_METRICS = {
    Count.RECEIVED: Metric.EVENTS_RECEIVED,
    Count.FORWARDED: Metric.EVENTS_FORWARDED,
    Count.FILTERED: Metric.EVENTS_FILTERED,
    Count.QUEUED: Metric.EVENTS_QUEUED,
    Count.DEAD_LETTERED: Metric.EVENTS_DEAD_LETTERED,
}
# What MirrorFailures counts: Segment copies that did not reach Segment now.
_MIRROR_FAILURES = (
    Count.QUEUED,
    Count.DEAD_LETTERED,
    Count.UNQUEUED,
    Count.NOT_MIRRORABLE,
)


@dataclass(slots=True)
class Ledger:
    """One destination's counts."""

    counts: Counter[Count] = field(default_factory=Counter)
    # Every failure met, by reason (including those that were then queued for a retry).
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    filtered_by_reason: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def delivered(self, result: ForwardResult) -> None:
        """Count what one delivery forwarded, filtered and failed."""
        self.counts[Count.FORWARDED] += len(result.forwarded)
        self.counts[Count.FILTERED] += len(result.filtered)
        self.filtered_by_reason.update(result.filtered.values())
        self.counts[Count.TEXTS_REPAIRED] += result.mapped.repaired_texts
        self.counts[Count.ATTACHMENTS_DROPPED] += sum(result.mapped.dropped_attachments.values())
        self.redactions.update(result.mapped.redactions)
        self.failed_by_reason.update(failure.reason.value for failure in result.failures.values())
        self.delivery.merge(result.delivery)

    def settled(self, settlement: Settlement) -> None:
        """Count where one settlement put the failed events."""
        self.counts[Count.QUEUED] += settlement.queued
        self.counts[Count.DEAD_LETTERED] += settlement.dead_lettered
        self.counts[Count.UNQUEUED] += len(settlement.unqueued)
        self.dead_by_reason.update(settlement.dead_by_reason())

    def of(self, *names: Count) -> dict[str, int]:
        return {name.value: self.counts[name] for name in names}

    def nonzero(self) -> dict[str, int]:
        return {name.value: value for name, value in self.counts.items() if value}


class Tally:
    def __init__(self) -> None:
        self.raindrop = Ledger()
        self.segment = Ledger()

    @property
    def ledgers(self) -> tuple[Ledger, Ledger]:
        return self.raindrop, self.segment

    def __getitem__(self, destination: Destination) -> Ledger:
        return self.segment if destination is Destination.SEGMENT else self.raindrop

    def add(self, job: Job, result: ForwardResult, settlement: Settlement | None) -> None:
        """One delivered job; ``settlement`` None when its failures were not queued."""
        ledger = self[job.kind.destination]
        ledger.delivered(result)
        if settlement is not None:
            ledger.settled(settlement)

    def publish(self, *event_counts: Count) -> None:
        """Emit Raindrop's ``event_counts`` with its other metrics, and the mirror's."""
        raindrop = self.raindrop
        for name in event_counts:
            count(EVENT_METRICS[name], raindrop.counts[name])
        if raindrop.counts[Count.TEXTS_REPAIRED]:
            count(Metric.TEXTS_REPAIRED, raindrop.counts[Count.TEXTS_REPAIRED])
        if raindrop.counts[Count.ATTACHMENTS_DROPPED]:
            count(Metric.ATTACHMENTS_DROPPED, raindrop.counts[Count.ATTACHMENTS_DROPPED])
        count_by(Metric.EVENTS_DEAD_LETTERED_BY_REASON, "reason", raindrop.dead_by_reason)
        # Redactions by kind, never what was redacted.
        count_by(Metric.REDACTIONS, "kind", raindrop.redactions)
        _publish_requests(raindrop.delivery)
        segment = self.segment.counts
        if segment[Count.FORWARDED]:
            count(Metric.MIRROR_EVENTS_SENT, segment[Count.FORWARDED])
        failures = sum(segment[name] for name in _MIRROR_FAILURES)
        if failures:
            count(Metric.MIRROR_FAILURES, failures)
        if segment[Count.TRUNCATED]:
            count(Metric.MIRROR_EVENTS_TRUNCATED, segment[Count.TRUNCATED])
        if segment[Count.PARTIALS_DEFERRED]:
            count(Metric.MIRROR_PARTIALS_DEFERRED, segment[Count.PARTIALS_DEFERRED])
        if segment[Count.REVISED]:
            count(Metric.MIRROR_PARTIALS_REVISED, segment[Count.REVISED])


# EMF accepts at most 100 values per metric and flush.
_MAX_VALUES = 100


def _publish_requests(report: DeliveryReport) -> None:
    count(Metric.RAINDROP_REQUESTS, report.requests)
    count(Metric.RAINDROP_REQUEST_FAILURES, report.failed_requests)
    # Zero is worth publishing for these two only when it is not: their alarms treat missing
    # data as fine, and the dashboard stays readable.
    if report.redirects:
        count(Metric.RAINDROP_REDIRECTS, report.redirects)
    if report.short_circuited:
        count(Metric.RAINDROP_SHORT_CIRCUITED, report.short_circuited)
    for latency in report.latencies_ms[:_MAX_VALUES]:
        measure(Metric.RAINDROP_LATENCY, latency)
