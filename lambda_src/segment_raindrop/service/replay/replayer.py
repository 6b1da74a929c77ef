"""Dead-letter replay: push what waits in the dead-letter queue back through delivery.

Shared by the replay Lambda (:mod:`segment_raindrop.handlers.replay`) and the CLI
(``segment-raindrop replay``).

A :class:`Replayer` receives messages from the dead-letter queue and, for each one it selects
(``reason``, ``since``/``until`` on the message's first failure), delivers the job it holds with
the configuration in force now:

- every event forwarded or filtered -> the message is deleted;
- no event delivered (every one failed) -> the message is left as it is;
- some delivered -> a new dead-letter message holds only the still-failing events (their new
  reason, status and error, attempts accumulated, first failure kept), and only once it is
  queued is the original deleted.

Messages are held while the run lasts (:mod:`~segment_raindrop.service.replay.leases`), so a
run stopped with :meth:`Replayer.stop` finishes the message in hand and releases the rest, and
running it again delivers every event and deletes every message once.

A dry run previews each selected message with the current configuration, counts what would be
sent per receiver and endpoint and what is invalid now, and changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.adapters.observability import logger
from segment_raindrop.adapters.queue_writer import QueueWriter
from segment_raindrop.adapters.secrets import RaindropKeyNotSet, SecretUnavailable
from segment_raindrop.core.jobs import UndeliverableJob
from segment_raindrop.core.outcomes import FailureReason, ForwardResult
from segment_raindrop.core.queue_message import QueueMessage, parse_message
from segment_raindrop.core.timing import deadline_within
from segment_raindrop.service.delivery import Channels, deliver, preview
from segment_raindrop.service.replay import kept
from segment_raindrop.service.replay.leases import Leases, error_name
from segment_raindrop.service.replay.options import ReplayOptions
from segment_raindrop.service.replay.pacing import Pacer
from segment_raindrop.service.replay.summary import (
    Outcome,
    ProgressCallback,
    ReplayProgress,
    ReplaySummary,
)
from segment_raindrop.service.settlement import Routing, settle
from segment_raindrop.service.tally import Count

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from segment_raindrop.service.runtime import Runtime

# A message's delivery budget when neither the options nor a smaller DELIVERY_BUDGET_SECONDS
# set one: a Raindrop outage is recognised in seconds, and a hung one must not hold a run.
DEFAULT_MESSAGE_BUDGET_SECONDS = 60.0
# Kept back from the Lambda's remaining time to release the leases and return the summary.
LAMBDA_RESERVE_SECONDS = 20.0
# A message is not started with less time than this left (Lambda).
_MIN_MESSAGE_SECONDS = 5.0
# Time a message may need beyond its delivery budget (thread hand-off, queueing, delete).
_MESSAGE_GRACE_SECONDS = 10.0
_RECEIVE_MAX = 10

TimeLeft = Callable[[], float]


class ReplayRefused(Exception):
    """The replay cannot start. The message is safe to show and log."""


class Replayer:
    """One replay run over one dead-letter queue. ``run`` once; ``stop`` from any thread."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        channels: Channels,
        options: ReplayOptions | None = None,
        on_progress: ProgressCallback | None = None,
        retry_queue_url: str | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._channels = channels
        self.options = options or ReplayOptions()
        self._on_progress = on_progress
        # Replacement messages go back to the queue being replayed; events still being isolated
        # go to the retry queue, when there is one, for the retry worker to finish.
        self._writer = QueueWriter(
            sqs, retry_queue_url=retry_queue_url, dlq_url=queue_url, source="replay"
        )
        self._stop = threading.Event()
        self._leases = Leases(sqs, queue_url, visibility_timeout=self.options.visibility_timeout)
        self._pacer = Pacer(self.options.rate, self._stop)
        self._started = False
        # Replacement messages this run wrote: received again, they are left for the next run.
        self._written: set[str] = set()

    @classmethod
    def from_runtime(
        cls,
        rt: Runtime,
        options: ReplayOptions | None = None,
        *,
        queue_url: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Replayer:
        return cls(
            sqs=rt.sqs,
            queue_url=queue_url or rt.config.dlq_url,
            channels=rt.channels,
            options=options,
            on_progress=on_progress,
            retry_queue_url=rt.config.retry_queue_url,
        )

    @property
    def message_budget_seconds(self) -> float:
        if self.options.message_budget_seconds is not None:
            return self.options.message_budget_seconds
        return min(self._channels.delivery.budget_seconds, DEFAULT_MESSAGE_BUDGET_SECONDS)

    def set_progress(self, on_progress: ProgressCallback | None) -> None:
        """Called after each message is examined, on the thread running :meth:`run`."""
        self._on_progress = on_progress

    def stop(self) -> None:
        """Finish the message in hand, release the rest and return the summary."""
        self._stop.set()

    def queue_depth(self) -> int:
        """Messages visible on the queue now (approximate); raises :class:`ReplayRefused`."""
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            raise ReplayRefused(
                f"cannot read the queue {self._queue_url}: {error_name(exc)}"
            ) from None
        return int(attributes.get("ApproximateNumberOfMessages", "0"))

    def preflight(self) -> int:
        """Check that the run can start; returns the queue's depth.

        Raises :class:`ReplayRefused` when the visibility timeout cannot cover the delivery
        budget, the queue cannot be read, or (real runs) the Raindrop key is missing or a
        placeholder. Touches no message.
        """
        budget = self.message_budget_seconds
        if budget + _MESSAGE_GRACE_SECONDS > self.options.visibility_timeout * 2 / 3:
            raise ReplayRefused(
                f"the visibility timeout ({self.options.visibility_timeout} s) is too short for "
                f"a delivery budget of {budget:g} s per message: make it at least "
                f"{int((budget + _MESSAGE_GRACE_SECONDS) * 3 / 2) + 1} s"
            )
        if not self.options.dry_run:
            self._check_key()
        return self.queue_depth()

    def run(self, *, time_left: TimeLeft | None = None) -> ReplaySummary:
        """Replay until the queue is drained, ``max_messages`` is reached or a stop is asked.

        ``time_left`` (seconds) bounds the run, as in a Lambda. Raises :class:`ReplayRefused`
        (see :meth:`preflight`) before touching any message when the run cannot start.
        """
        if self._started:
            raise RuntimeError("a Replayer runs once; make a new one")
        self._started = True
        self.preflight()
        summary = ReplaySummary(queue_url=self._queue_url, dry_run=self.options.dry_run)
        try:
            self._loop(summary, time_left)
        finally:
            self._leases.release_all()
        logger.info("replay finished", extra=summary.loggable())
        return summary

    # The loop

    def _loop(self, summary: ReplaySummary, time_left: TimeLeft | None) -> None:
        while not self._stopping(summary, time_left) and (wanted := self._wanted(summary)):
            batch = self._receive(wanted, summary)
            fresh = [message for message in batch if self._leases.take(message)]
            if not fresh:
                # Empty, or only messages this run already handled: the queue has been drained.
                return
            for message in fresh:
                if self._stopping(summary, time_left) or not self._wanted(summary):
                    return
                self._leases.renew()
                self._examine(message, summary, time_left)

    def _wanted(self, summary: ReplaySummary) -> int:
        """How many messages to receive next: none once ``max_messages`` are selected."""
        limit = self.options.max_messages
        if limit is None:
            return _RECEIVE_MAX
        return max(0, min(_RECEIVE_MAX, limit - summary.messages_selected))

    def _stopping(self, summary: ReplaySummary, time_left: TimeLeft | None) -> bool:
        if self._stop.is_set():
            summary.stopped = True
            summary.stop_reason = summary.stop_reason or "stop requested"
            return True
        if _out_of_time(time_left):
            summary.stopped = True
            summary.stop_reason = "time limit"
            return True
        return False

    def _receive(self, wanted: int, summary: ReplaySummary) -> list[MessageTypeDef]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=self.options.wait_seconds,
                VisibilityTimeout=self.options.visibility_timeout,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except (BotoCoreError, ClientError) as exc:
            summary.errors.append(f"receiving from the queue failed: {error_name(exc)}")
            logger.error("receive failed", extra={"error": error_name(exc)})
            return []
        return response.get("Messages", [])

    def _examine(
        self, message: MessageTypeDef, summary: ReplaySummary, time_left: TimeLeft | None
    ) -> None:
        message_id = message["MessageId"]
        try:
            parsed = parse_message(message.get("Body", ""))
        except ValueError:
            summary.messages_received += 1
            summary.messages_unparseable += 1
            summary.unparseable_message_ids.append(message_id)
            logger.warning("not a forwarder message; left on the queue", extra={"id": message_id})
            self._progress(message_id, Outcome.UNPARSEABLE, 0, summary)
            return
        if message_id in self._written:
            return  # a replacement this run wrote: the next run takes it (released at the end)
        events = len(parsed.events)
        if not self.options.selects(parsed.reason, parsed.first_failure_at):
            summary.messages_received += 1
            summary.messages_skipped += 1
            self._progress(message_id, Outcome.SKIPPED, events, summary)
            return
        dry_run = self.options.dry_run
        if not dry_run and not self._pacer.wait_for(
            events, out_of_time=lambda: _out_of_time(time_left), meanwhile=self._leases.renew
        ):
            return  # stopped while waiting for the rate limit: released untouched
        summary.messages_received += 1
        summary.messages_selected += 1
        why = kept.KeptMessage(message_id, kept.dead_lettered_for(parsed))
        if dry_run:
            outcome = self._dry_run(parsed, summary, why)
        else:
            outcome = self._replay(message_id, parsed, summary, time_left, why)
        summary.record(outcome, why)
        logger.info(
            "message checked" if dry_run else "message replayed",
            extra={"id": message_id, "outcome": outcome.value, "events": events},
        )
        self._progress(message_id, outcome, events, summary)

    def _dry_run(
        self, message: QueueMessage, summary: ReplaySummary, why: kept.KeptMessage
    ) -> Outcome:
        seen = preview(message.job, self._channels)
        summary.would_send.update(seen.would_send)
        ledger = summary.tally[message.kind.destination]
        ledger.counts[Count.FORWARDED] += seen.forwarded
        ledger.counts[Count.FILTERED] += len(seen.filtered)
        if seen.invalid:
            ledger.failed_by_reason[FailureReason.INVALID.value] += len(seen.invalid)
        summary.events_omitted += len(message.omitted)
        kept_filtered = self._guards_filtered and seen.filtered
        if kept_filtered:
            summary.errors.append(kept.filtered_now(message, len(seen.filtered)))
            why.add([kept.FILTERED] * len(seen.filtered))
        why.add(seen.invalid.values())
        why.add([kept.OMITTED] * len(message.omitted))
        keep = seen.invalid or message.omitted or kept_filtered
        return Outcome.WOULD_KEEP if keep else Outcome.WOULD_REPLAY

    @property
    def _guards_filtered(self) -> bool:
        """Whether events filtered now keep their message (see ReplayOptions.drop_filtered):
        whatever its reason, no message is deleted while its events reached neither their
        destination nor a queue, unless the operator asked."""
        return not self.options.drop_filtered

    def _replay(
        self,
        message_id: str,
        message: QueueMessage,
        summary: ReplaySummary,
        time_left: TimeLeft | None,
        why: kept.KeptMessage,
    ) -> Outcome:
        if message.omitted:
            # Only summaries of events too large for SQS: nothing to send, nothing to delete.
            summary.events_omitted += len(message.omitted)
            why.add([kept.OMITTED] * len(message.omitted))
            return Outcome.KEPT
        job = message.job
        if self._guards_filtered:
            filtered = preview(job, self._channels).filtered
            if filtered:
                summary.errors.append(kept.filtered_now(message, len(filtered), message_id))
                why.add([kept.FILTERED] * len(filtered))
                return Outcome.KEPT
        deadline = deadline_within(
            time.monotonic(),
            budget=self.message_budget_seconds,
            remaining=float("inf") if time_left is None else time_left(),
            reserve=LAMBDA_RESERVE_SECONDS,
        )
        try:
            result = deliver(job, self._channels, deadline=deadline)
        except (SecretUnavailable, UndeliverableJob) as exc:
            summary.errors.append(f"message {message_id}: {exc}; kept")
            why.add([str(exc)] * len(message.events))
            return Outcome.KEPT
        summary.tally.add(job, result, None)
        failures = result.failures
        if not failures:
            if self._delete(message_id, summary):
                return Outcome.REPLAYED
            why.add(["delivered, but the delete failed"])
            return Outcome.KEPT
        if len(failures) == len(message.events):
            destination = message.kind.destination
            why.add(kept.failure_phrase(failure, destination) for failure in failures.values())
            return Outcome.KEPT
        return self._requeue_the_rest(message_id, message, result, summary, why)

    def _requeue_the_rest(
        self,
        message_id: str,
        message: QueueMessage,
        result: ForwardResult,
        summary: ReplaySummary,
        why: kept.KeptMessage,
    ) -> Outcome:
        """Some events delivered: the rest goes back in a new message, then the original goes."""
        settlement = settle(result, message.job, self._writer, Routing.replay(message))
        self._written.update(settlement.message_ids)
        if settlement.unqueued or settlement.dead_letter.omitted:
            summary.errors.append(
                f"message {message_id}: the events still failing could not be re-queued; "
                "the original is kept (its delivered events will be sent again next time)"
            )
            why.add(["the events still failing could not be re-queued"])
            return Outcome.KEPT
        if not self._delete(message_id, summary):
            why.add(["partly delivered, but the delete failed"])
            return Outcome.KEPT
        return Outcome.PARTLY_REPLAYED

    def _delete(self, message_id: str, summary: ReplaySummary) -> bool:
        error = self._leases.delete(message_id)
        if error is not None:
            summary.errors.append(
                f"message {message_id}: delivered but could not be deleted ({error}); "
                "a later replay will send its events again"
            )
        return error is None

    def _check_key(self) -> None:
        try:
            self._channels.secrets.ready_key()
        except RaindropKeyNotSet:
            raise ReplayRefused(
                "cannot replay: the Raindrop API key in the forwarder's secret is missing or "
                "still a placeholder; set raindrop_api_key in the secret first"
            ) from None
        except SecretUnavailable as exc:
            raise ReplayRefused(f"cannot replay: {exc}") from None

    def _progress(
        self, message_id: str, outcome: Outcome, events: int, summary: ReplaySummary
    ) -> None:
        if self._on_progress is not None:
            self._on_progress(ReplayProgress(message_id, outcome, events, summary))


def _out_of_time(time_left: TimeLeft | None) -> bool:
    return time_left is not None and time_left() < LAMBDA_RESERVE_SECONDS + _MIN_MESSAGE_SECONDS
