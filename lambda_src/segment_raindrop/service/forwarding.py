"""The pipeline every entry point shares: map → chunk → deliver, one outcome per event.

``Forwarder.forward`` decides, for every Segment event, one outcome: forwarded, filtered, or a
failure with its reason. :mod:`segment_raindrop.service.settlement` then puts the failures on the
queue each belongs to. The webhook, the retry worker, the replay Lambda, the replay CLI and
local mode all use these two steps; they differ only in where they route failures (a
``Routing``) and what they tell their caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from segment_raindrop.adapters.http_delivery import (
    ChunkResult,
    ChunkStatus,
    DeliveryReport,
    KeyRefresher,
    RaindropClient,
)
from segment_raindrop.adapters.queue_writer import FailureReason
from segment_raindrop.core.chunking import ChunkBuilder
from segment_raindrop.core.config import DeliveryConfig, MappingConfig
from segment_raindrop.core.mapping import PROCESS_USER_HASH_KEY, Mapper, MapResult

# When several of an event's items fail differently, the event takes the most severe reason:
# a rejection will not heal by retrying, so it goes to the dead-letter queue at once.
_SEVERITY = {
    FailureReason.REJECTED: 3,
    FailureReason.TRANSIENT: 2,
    FailureReason.DEADLINE: 1,
}
_REASON_FOR_STATUS = {
    ChunkStatus.REJECTED: FailureReason.REJECTED,
    ChunkStatus.TRANSIENT: FailureReason.TRANSIENT,
    ChunkStatus.DEADLINE: FailureReason.DEADLINE,
}


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


class Forwarder:
    def __init__(
        self, mapping: MappingConfig, delivery: DeliveryConfig, client: RaindropClient
    ) -> None:
        self.mapping = mapping
        self.delivery = delivery
        self.client = client

    def forward(
        self,
        events: Sequence[Any],
        *,
        api_key: str,
        deadline: float,
        refresh_key: KeyRefresher | None = None,
        user_hash_key: bytes = PROCESS_USER_HASH_KEY,
        project: str | None = None,
    ) -> ForwardResult:
        """``project``: the Raindrop project every item goes to (None: the configured one)."""
        # Chunks leave as soon as they fill up, so the first requests are in flight while
        # the rest of the batch is still being mapped.
        mapper = Mapper(self.mapping, user_hash_key=user_hash_key)
        builder = ChunkBuilder(
            max_items=self.delivery.chunk_max_items, max_bytes=self.delivery.chunk_max_bytes
        )
        session = self.client.session(
            api_key=api_key, deadline=deadline, refresh_key=refresh_key, project=project
        )
        for index, event in enumerate(events):
            for item in mapper.add(index, event):
                chunk = builder.add(item)
                if chunk is not None:
                    session.submit(chunk)
        # Identify items come last: a user's explicit traits and enrichment merge into one.
        for item in mapper.finish():
            chunk = builder.add(item)
            if chunk is not None:
                session.submit(chunk)
        for chunk in builder.flush():
            session.submit(chunk)
        report = session.wait()
        mapped = mapper.result
        result = ForwardResult(events=events, mapped=mapped, delivery=report)
        for index, reason in mapped.invalid.items():
            result.failures[index] = Failure(FailureReason.INVALID, error=reason)
        delivery_failures = _failures_by_event(report.results)
        for index in mapped.mapped:
            failure = delivery_failures.get(index)
            if failure is None:
                result.forwarded.add(index)
            else:
                result.failures[index] = failure
        return result


def delivered(events: Sequence[Any], sent: Iterable[int], report: DeliveryReport) -> ForwardResult:
    """The outcome of sending items that needed no mapping (the mirror's): item ``i`` of what
    was sent came from ``events[i]``; ``sent`` lists the indices that were submitted."""
    result = ForwardResult(events=events, mapped=MapResult(), delivery=report)
    failures = _failures_by_event(report.results)
    for index in sent:
        failure = failures.get(index)
        if failure is None:
            result.forwarded.add(index)
        else:
            result.failures[index] = failure
    return result


def _failures_by_event(results: Sequence[ChunkResult]) -> dict[int, Failure]:
    failures: dict[int, Failure] = {}
    for chunk_result in results:
        reason = _REASON_FOR_STATUS.get(chunk_result.status)
        if reason is None:
            continue
        failure = Failure(
            reason, chunk_result.http_status, chunk_result.error, chunk_result.attempts
        )
        for index in chunk_result.chunk.required_sources:
            known = failures.get(index)
            if known is None or _SEVERITY[reason] > _SEVERITY[known.reason]:
                failures[index] = failure
    return failures
