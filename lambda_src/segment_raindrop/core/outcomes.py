"""What became of a delivery: per request, per chunk and per event.

A delivery (:mod:`segment_raindrop.service.deliver`) answers with a :class:`ForwardResult`: one
outcome for every event of its job, forwarded, filtered or failed with a
:class:`FailureReason`. Settlement then puts each failure on the queue its reason belongs to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.mapping.items import MapResult


class FailureReason(StrEnum):
    INVALID = "invalid"  # the event cannot be mapped to anything the receiver accepts
    REJECTED = "rejected"  # the receiver refused it for good (a 4xx)
    TRANSIENT = "transient"  # the receiver kept failing (5xx, 429, timeouts) through all attempts
    DEADLINE = "deadline"  # the time budget ran out before it could be delivered
    # Refused in a group of several (400/422), or part of a request too large (413), when the
    # splitting allowed in one call was spent: which of the group the receiver refuses is not
    # known yet. Queued to go on splitting, never dead-lettered for a neighbour's fault.
    ISOLATING = "isolating"

    @property
    def permanent(self) -> bool:
        return self in (FailureReason.INVALID, FailureReason.REJECTED)


class ChunkStatus(StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    DEADLINE = "deadline"
    ISOLATING = "isolating"


@dataclass(frozen=True, slots=True)
class ChunkResult:
    chunk: Chunk
    status: ChunkStatus
    attempts: int
    http_status: int | None = None
    # For the dead-letter message: the receiver's status line and the start of its answer.
    # Never logged (it may echo content back); logs get ``http_status`` only.
    error: str | None = None


@dataclass(slots=True)
class DeliveryReport:
    results: list[ChunkResult] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    # Answers that were redirects: the receiver's URL setting needs fixing (an alarm's metric).
    redirects: int = 0
    # Chunks answered "circuit open" without a request.
    short_circuited: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed_requests(self) -> int:
        return sum(count for status, count in self.statuses.items() if not status.startswith("2"))

    def merge(self, other: DeliveryReport) -> None:
        self.results.extend(other.results)
        self.latencies_ms.extend(other.latencies_ms)
        self.statuses.update(other.statuses)
        self.redirects += other.redirects
        self.short_circuited += other.short_circuited


@dataclass(frozen=True, slots=True)
class Failure:
    reason: FailureReason
    status: int | None = None
    error: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class ForwardResult:
    events: Sequence[Any]
    mapped: MapResult
    delivery: DeliveryReport
    forwarded: set[int] = field(default_factory=set)
    failures: dict[int, Failure] = field(default_factory=dict)

    @property
    def filtered(self) -> dict[int, str]:
        return self.mapped.filtered

    def failed(self, *reasons: FailureReason) -> dict[int, Failure]:
        return {i: f for i, f in self.failures.items() if not reasons or f.reason in reasons}

    @classmethod
    def of(
        cls,
        events: Sequence[Any],
        report: DeliveryReport,
        *,
        sent: Iterable[int],
        mapped: MapResult | None = None,
    ) -> ForwardResult:
        """The outcome of delivering ``events``: ``sent`` lists the indices whose items went
        out (their chunks' results in ``report`` decide them); ``mapped``'s invalid events fail
        as such, its filtered ones are neither forwarded nor failed."""
        result = cls(events=events, mapped=mapped or MapResult(), delivery=report)
        for index, reason in result.mapped.invalid.items():
            result.failures[index] = Failure(FailureReason.INVALID, error=reason)
        failures = _failures_by_event(report.results)
        for index in sent:
            failure = failures.get(index)
            if failure is None:
                result.forwarded.add(index)
            else:
                result.failures[index] = failure
        return result

    @classmethod
    def unsent(cls, events: Sequence[Any], error: str) -> ForwardResult:
        """Nothing could be sent now (no key to send with, say): every event failed
        transiently, to be queued for a later attempt."""
        failure = Failure(FailureReason.TRANSIENT, error=error)
        return cls(
            events=events,
            mapped=MapResult(),
            delivery=DeliveryReport(),
            failures=dict.fromkeys(range(len(events)), failure),
        )


# When several of an event's items fail differently, the event takes the most severe reason:
# a rejection will not heal by retrying, so it goes to the dead-letter queue at once.
_SEVERITY = {
    FailureReason.REJECTED: 4,
    FailureReason.ISOLATING: 3,
    FailureReason.TRANSIENT: 2,
    FailureReason.DEADLINE: 1,
}
_REASON_FOR_STATUS = {
    ChunkStatus.REJECTED: FailureReason.REJECTED,
    ChunkStatus.ISOLATING: FailureReason.ISOLATING,
    ChunkStatus.TRANSIENT: FailureReason.TRANSIENT,
    ChunkStatus.DEADLINE: FailureReason.DEADLINE,
}


def _failures_by_event(results: Sequence[ChunkResult]) -> dict[int, Failure]:
    failures: dict[int, Failure] = {}
    for chunk_result in results:
        reason = _REASON_FOR_STATUS.get(chunk_result.status)
        if reason is None:
            continue
        failure = Failure(
            reason, chunk_result.http_status, chunk_result.error, chunk_result.attempts
        )
        for index in chunk_result.chunk.required_events:
            known = failures.get(index)
            if known is None or _SEVERITY[reason] > _SEVERITY[known.reason]:
                failures[index] = failure
    return failures
