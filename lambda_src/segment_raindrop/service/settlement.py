"""Settling a delivery: each failed event onto the queue its failure belongs to.

One :func:`settle` serves every entry point; a :class:`Routing` says what differs between them:

- a **first failure** (the webhook's, the mirror's) sends permanent failures (invalid,
  rejected) to the dead-letter queue and transient ones (the receiver failing, time running
  out) to the retry queue, delayed;
- the **retry worker** does the same for a queued message, keeping its history (attempts, first
  failure, request id), with a back-off delay that grows with its receives, and once its
  receives are used up sends the transient failures to the dead-letter queue too;
- **replay** puts whatever still fails back on the dead-letter queue, history kept.

Events still being isolated (refused in a group, ``isolating``) are neither: they go to the
retry queue at once, whoever delivered them, and their receive is not counted against their
retries (each call isolates some of them, so they end delivered or refused on their own);
only where there is no retry queue (a replay from an operator's machine given none) do they
go back to the dead-letter queue.

Every message written holds the job's kind, endpoint and project, so it is delivered later
exactly as the job would have been now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from segment_raindrop.adapters.queue_writer import Outgoing, QueueResult, QueueTarget, QueueWriter
from segment_raindrop.core.contract import SQS_MAX_DELAY_SECONDS
from segment_raindrop.core.jobs import Job
from segment_raindrop.core.outcomes import Failure, FailureReason, ForwardResult
from segment_raindrop.core.queue_message import QueueMessage, utc_now
from segment_raindrop.core.timing import backoff_seconds

_PERMANENT = (FailureReason.INVALID, FailureReason.REJECTED)
_TRANSIENT = (FailureReason.TRANSIENT, FailureReason.DEADLINE)
# Dead-lettered under their own reason; any other failure that is, as ``transient``.
_KEPT_REASONS = frozenset({*_PERMANENT, FailureReason.ISOLATING})


@dataclass(frozen=True, slots=True)
class Routing:
    """Where one entry point sends what failed. Build it with the class methods."""

    transient_target: QueueTarget
    # Whose request the events came in: the invocation's, or the queued message's.
    request_id: str | None
    delay_seconds: int = 0
    # The queued message being retried or replayed: its history carries over.
    history: QueueMessage | None = None
    retries: int = 0
    # The retry worker's last receive: transient failures are dead-lettered as "transient".
    exhausted: bool = False

    @classmethod
    def first_failure(cls, *, request_id: str, retry_delay_seconds: int) -> Routing:
        """Events received now: the webhook's, the mirror's."""
        return cls(QueueTarget.RETRY, request_id, min(retry_delay_seconds, SQS_MAX_DELAY_SECONDS))

    @classmethod
    def retry_worker(
        cls,
        message: QueueMessage,
        *,
        receive_count: int,
        max_receives: int,
        base_delay_seconds: int,
    ) -> Routing:
        retries = message.retries + receive_count
        if retries >= max_receives:
            dead = QueueTarget.DEAD_LETTER
            return cls(dead, message.request_id, 0, message, retries, exhausted=True)
        delay = round(
            backoff_seconds(base_delay_seconds, retries, SQS_MAX_DELAY_SECONDS, jitter="equal")
        )
        return cls(QueueTarget.RETRY, message.request_id, delay, message, retries)

    @classmethod
    def replay(cls, message: QueueMessage) -> Routing:
        dead = QueueTarget.DEAD_LETTER
        return cls(dead, message.request_id, 0, message, message.retries)


@dataclass(slots=True)
class Settlement:
    """Where each failed event went, by its index in the job's events."""

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
    def omitted(self) -> bool:
        """Some event fitted no SQS message and survives only as its summary."""
        return bool(self.retry.omitted or self.dead_letter.omitted)

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
    job: Job,
    writer: QueueWriter,
    routing: Routing,
    *,
    deadline: float | None = None,
) -> Settlement:
    """Queue every failure of ``result`` (the delivery of ``job``) as ``routing`` says.

    What cannot be queued by ``deadline`` is reported in ``unqueued``: the caller answers for
    it (the webhook with a 503, the retry worker by letting the message come back).
    """
    plan = _Plan.of(result, routing, retry_queue=writer.has_retry_queue)
    settlement = Settlement(dead_reasons=plan.dead_reasons)
    if plan.dead_letter:
        settlement.dead_letter = writer.send(
            QueueTarget.DEAD_LETTER,
            _messages(job, plan.dead_letter, routing, writer.source),
            deadline=deadline,
        )
    if plan.retry:
        settlement.retry = writer.send(
            QueueTarget.RETRY,
            _messages(job, plan.retry, routing, writer.source),
            delay_seconds=routing.delay_seconds,
            deadline=deadline,
        )
    if plan.isolating:
        # At once, and this receive not counted: nothing is wrong with the receiver.
        retries = routing.history.retries if routing.history is not None else 0
        settlement.retry.merge(
            writer.send(
                QueueTarget.RETRY,
                _messages(job, plan.isolating, routing, writer.source, retries=retries),
                deadline=deadline,
            )
        )
    return settlement


@dataclass(slots=True)
class _Plan:
    """Which failure goes where: the dead-letter queue, the retry queue after the routing's
    delay, or the retry queue at once (still isolating)."""

    dead_letter: dict[int, Failure]
    retry: dict[int, Failure]
    isolating: dict[int, Failure]
    # The reason each would be recorded with, were it dead-lettered (the by-reason metric).
    dead_reasons: dict[int, FailureReason]

    @classmethod
    def of(cls, result: ForwardResult, routing: Routing, *, retry_queue: bool) -> _Plan:
        permanent = result.failed(*_PERMANENT)
        transient = result.failed(*_TRANSIENT)
        isolating = result.failed(FailureReason.ISOLATING)
        if routing.exhausted:
            transient = {
                index: replace(failure, reason=FailureReason.TRANSIENT)
                for index, failure in transient.items()
            }
        dead_reasons = {
            index: failure.reason if failure.reason in _KEPT_REASONS else FailureReason.TRANSIENT
            for index, failure in (permanent | transient | isolating).items()
        }
        dead_letter = dict(permanent)
        if routing.transient_target is QueueTarget.DEAD_LETTER:
            dead_letter |= transient
            transient = {}
        if not retry_queue:
            dead_letter |= isolating
            isolating = {}
        return cls(dead_letter, transient, isolating, dead_reasons)


def _messages(
    job: Job,
    failures: Mapping[int, Failure],
    routing: Routing,
    source: str,
    *,
    retries: int | None = None,
) -> list[Outgoing]:
    """One message per reason and status, so each message has one reason.

    A permanent failure's error explains that refusal (Raindrop's validation message): those
    are also told apart by error. A transient one's error is whatever the chunk met last, and
    which chunk met what depends on timing (refused connections until the circuit breaker opens,
    ``circuit open`` after): one request's transient failures make one message, its error the
    distinct errors met, sorted, so the same outage gives the same queue the same shape.

    A queued message's attempts accumulate and its first failure carries over, so a message
    on the dead-letter queue tells the whole story however many times it went round.
    """
    history = routing.history
    previous_attempts = history.attempts if history is not None else 0
    groups: dict[tuple[FailureReason, int | None, str | None], _Group] = {}
    for index in sorted(failures):
        failure = failures[index]
        told_apart_by_error = failure.reason not in _TRANSIENT
        key = (failure.reason, failure.status, failure.error if told_apart_by_error else None)
        group = groups.setdefault(key, _Group(failure.reason, failure.status))
        group.attempts = max(group.attempts, previous_attempts + failure.attempts)
        if failure.error is not None:
            group.errors.add(failure.error)
        group.events.append((index, job.events[index]))
    now = utc_now()
    return [
        (
            QueueMessage(
                reason=group.reason,
                status=group.status,
                error="; ".join(sorted(group.errors)) if group.errors else None,
                attempts=group.attempts,
                retries=routing.retries if retries is None else retries,
                first_failure_at=history.first_failure_at if history is not None else now,
                last_failure_at=now,
                request_id=routing.request_id,
                source=source,
                kind=job.kind,
                endpoint=job.endpoint,
                project=job.project,
                events=[],
            ),
            group.events,
        )
        for group in groups.values()
    ]


@dataclass(slots=True)
class _Group:
    """The failed events one message will hold, and what its header says of them."""

    reason: FailureReason
    status: int | None
    attempts: int = 0
    errors: set[str] = field(default_factory=set)
    events: list[tuple[int, Any]] = field(default_factory=list)
