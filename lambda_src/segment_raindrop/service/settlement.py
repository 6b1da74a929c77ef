"""Settling a forward: each failed event onto the queue its failure belongs to, and the tally.

One :func:`settle` serves every entry point; a :class:`Routing` says what differs between them:

- the **webhook** sends permanent failures (invalid, rejected) to the dead-letter queue and
  transient ones (Raindrop failing, time running out) to the retry queue, delayed;
- the **retry worker** does the same for a queued message, keeping its history (attempts, first
  failure, request id), with a back-off delay that grows with its receives, and once its
  receives are used up sends the transient failures to the dead-letter queue too;
- **replay** puts whatever still fails back on the dead-letter queue, history kept.

:class:`Tally` counts what became of every event across one invocation and publishes the
metrics, so all entry points report the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from segment_raindrop.adapters.http_delivery import DeliveryReport
from segment_raindrop.adapters.observability import (
    count,
    record_counts,
    record_dead_letters,
    record_delivery,
    record_redactions,
)
from segment_raindrop.adapters.queue_writer import (
    FailedEventsMessage,
    FailureGroup,
    FailureReason,
    Payload,
    QueueResult,
    QueueTarget,
    QueueWriter,
)
from segment_raindrop.core.contract import SQS_MAX_DELAY_SECONDS, Metric
from segment_raindrop.core.timing import backoff_seconds
from segment_raindrop.service.forwarding import Failure, ForwardResult

_PERMANENT = (FailureReason.INVALID, FailureReason.REJECTED)
_TRANSIENT = (FailureReason.TRANSIENT, FailureReason.DEADLINE)


@dataclass(frozen=True, slots=True)
class Routing:
    """Where one entry point sends what failed. Build it with the class methods."""

    transient_target: QueueTarget
    delay_seconds: int = 0
    # The queued message being retried or replayed: its history carries over.
    history: FailedEventsMessage | None = None
    retries: int = 0
    # The retry worker's last receive: transient failures are dead-lettered as "transient".
    exhausted: bool = False
    # The Raindrop project the events went to, written into every message (None: default).
    project: str | None = None
    # The destination and kind of the events, written into every message.
    payload: Payload = field(default_factory=Payload)

    @classmethod
    def webhook(
        cls,
        *,
        retry_delay_seconds: int,
        project: str | None = None,
        payload: Payload | None = None,
    ) -> Routing:
        """The first failure of events received now (the webhook's, or the mirror's with the
        ``payload`` saying what its events are)."""
        return cls(
            QueueTarget.RETRY,
            min(retry_delay_seconds, SQS_MAX_DELAY_SECONDS),
            project=project,
            payload=payload or Payload(),
        )

    @classmethod
    def retry_worker(
        cls,
        message: FailedEventsMessage,
        *,
        receive_count: int,
        max_receives: int,
        base_delay_seconds: int,
    ) -> Routing:
        retries = message.retries + receive_count
        if retries >= max_receives:
            dead = QueueTarget.DEAD_LETTER
            return cls(
                dead,
                0,
                message,
                retries,
                exhausted=True,
                project=message.project,
                payload=message.payload,
            )
        delay = round(
            backoff_seconds(base_delay_seconds, retries, SQS_MAX_DELAY_SECONDS, jitter="equal")
        )
        return cls(
            QueueTarget.RETRY,
            delay,
            message,
            retries,
            project=message.project,
            payload=message.payload,
        )

    @classmethod
    def replay(cls, message: FailedEventsMessage) -> Routing:
        return cls(
            QueueTarget.DEAD_LETTER,
            0,
            message,
            message.retries,
            project=message.project,
            payload=message.payload,
        )


@dataclass(slots=True)
class Settlement:
    """Where each failed event went, by its index in the forwarded events."""

    retry: QueueResult = field(default_factory=QueueResult)
    dead_letter: QueueResult = field(default_factory=QueueResult)
    # The reason each dead-lettered event was recorded with (for the by-reason metric).
    dead_reasons: dict[int, FailureReason] = field(default_factory=dict)

    @property
    def queued(self) -> int:
        return len(self.retry.queued)

    @property
    def dead_lettered_indices(self) -> set[int]:
        # An event too large for SQS is recorded on the dead-letter queue whatever its target.
        return self.dead_letter.queued | self.dead_letter.omitted | self.retry.omitted

    @property
    def dead_lettered(self) -> int:
        return len(self.dead_lettered_indices)

    @property
    def unqueued(self) -> set[int]:
        return self.retry.unqueued | self.dead_letter.unqueued

    @property
    def message_ids(self) -> list[str]:
        return self.retry.message_ids + self.dead_letter.message_ids

    def dead_by_reason(self) -> Counter[str]:
        return Counter(self.dead_reasons[index].value for index in self.dead_lettered_indices)


def settle(
    result: ForwardResult,
    writer: QueueWriter,
    routing: Routing,
    *,
    request_id: str | None,
    deadline: float | None = None,
) -> Settlement:
    """Queue every failure of ``result`` as ``routing`` says.

    What cannot be queued by ``deadline`` is reported in ``unqueued``: the caller answers for
    it (the webhook with a 503, the retry worker by letting the message come back).
    """
    settlement = Settlement()
    permanent = result.failed(*_PERMANENT)
    transient = result.failed(*_TRANSIENT)
    if routing.exhausted:
        transient = {
            index: replace(failure, reason=FailureReason.TRANSIENT)
            for index, failure in transient.items()
        }
    for index, failure in (permanent | transient).items():
        reason = failure.reason
        settlement.dead_reasons[index] = reason if reason.permanent else FailureReason.TRANSIENT
    if routing.history is not None:
        request_id = routing.history.request_id
    dead_letter = dict(permanent)
    if routing.transient_target is QueueTarget.DEAD_LETTER:
        dead_letter |= transient
        transient = {}
    if dead_letter:
        settlement.dead_letter = writer.send(
            QueueTarget.DEAD_LETTER,
            _groups(result.events, dead_letter, routing),
            request_id=request_id,
            deadline=deadline,
        )
    if transient:
        settlement.retry = writer.send(
            QueueTarget.RETRY,
            _groups(result.events, transient, routing),
            request_id=request_id,
            delay_seconds=routing.delay_seconds,
            deadline=deadline,
        )
    return settlement


def _groups(
    events: Sequence[Any], failures: Mapping[int, Failure], routing: Routing
) -> list[FailureGroup]:
    """One group per distinct (reason, status, error), so each message has one reason.

    A queued message's attempts accumulate and its first failure carries over, so a message
    on the dead-letter queue tells the whole story however many times it went round.
    """
    history = routing.history
    previous_attempts = history.attempts if history is not None else 0
    groups: dict[tuple[FailureReason, int | None, str | None], FailureGroup] = {}
    for index in sorted(failures):
        failure = failures[index]
        attempts = previous_attempts + failure.attempts
        key = (failure.reason, failure.status, failure.error)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(
                reason=failure.reason,
                events=[],
                status=failure.status,
                error=failure.error,
                attempts=attempts,
                first_failure_at=history.first_failure_at if history is not None else None,
                retries=routing.retries,
                project=routing.project,
                payload=routing.payload,
            )
        else:
            group.attempts = max(group.attempts, attempts)
        group.events.append((index, events[index]))
    return list(groups.values())


@dataclass(slots=True)
class Tally:
    """What one invocation did to its events, for the answer, the metrics and the log line."""

    events: Counter[str] = field(default_factory=Counter)
    # Every failure met, by reason (including those that were then queued for a retry).
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    filtered_by_reason: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def forwarded(self, result: ForwardResult) -> None:
        """Count what one forward delivered, filtered and failed."""
        self.events["forwarded"] += len(result.forwarded)
        self.events["filtered"] += len(result.filtered)
        self.filtered_by_reason.update(result.filtered.values())
        self.events["texts_repaired"] += result.mapped.repaired_texts
        self.events["attachments_dropped"] += sum(result.mapped.dropped_attachments.values())
        self.redactions.update(result.mapped.redactions)
        self.failed_by_reason.update(failure.reason.value for failure in result.failures.values())
        self.delivery.merge(result.delivery)

    def settled(self, settlement: Settlement) -> None:
        """Count where one settlement put the failed events."""
        self.events["queued"] += settlement.queued
        self.events["dead_lettered"] += settlement.dead_lettered
        self.dead_by_reason.update(settlement.dead_by_reason())

    def counts(self, *names: str) -> dict[str, int]:
        return {name: self.events[name] for name in names}

    def publish(self, *names: str) -> None:
        """Emit the event counts ``names``, dead letters by reason and delivery metrics."""
        record_counts(self.counts(*names))
        if self.events["texts_repaired"]:
            count(Metric.TEXTS_REPAIRED, self.events["texts_repaired"])
        if self.events["attachments_dropped"]:
            count(Metric.ATTACHMENTS_DROPPED, self.events["attachments_dropped"])
        record_dead_letters(self.dead_by_reason)
        record_redactions(self.redactions)
        record_delivery(self.delivery)
