"""The retry worker: each message of the retry queue delivered again as the job it holds.

Each record is one queue message and ends in one of these ways:

- **Not one of ours** (unparseable): it fails, untouched. After ``RETRY_MAX_ATTEMPTS`` receives
  SQS's redrive policy moves it to the dead-letter queue as it is.
- **No key to send with** (the secret unreadable, the Raindrop key or the Segment write key not
  configured): it fails and comes back later.
- **Every event failed transiently** (nothing delivered, nothing permanent): it fails, with its
  visibility set from its receive count, so it comes back after a growing delay; after the
  last receive SQS's redrive policy moves it to the dead-letter queue.
- **Otherwise** it succeeds (and the event source deletes it) once what is still failing is
  durably queued: permanent failures (invalid, rejected) on the dead-letter queue with their
  reason; transient ones as a *new* retry message holding only them, or, when the message's
  retries are used up, on the dead-letter queue.
- **Queueing fails** (SQS unreachable): it fails, so the original comes back; nothing is lost
  (events already delivered may then be delivered again: delivery is at least once).
"""

from __future__ import annotations

import time
import traceback
from collections import Counter

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.adapters.observability import logger
from segment_raindrop.adapters.secrets import SecretUnavailable
from segment_raindrop.core.contract import SQS_MAX_VISIBILITY_SECONDS
from segment_raindrop.core.jobs import UndeliverableJob
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.core.queue_message import QueueMessage, parse_message
from segment_raindrop.core.timing import backoff_seconds
from segment_raindrop.service.delivery import deliver
from segment_raindrop.service.failure_age import publish_failure_age
from segment_raindrop.service.runtime import Runtime
from segment_raindrop.service.settlement import Routing, settle
from segment_raindrop.service.tally import Count, Tally

# What the worker's metrics count, in this order.
PUBLISHED = (Count.FORWARDED, Count.FILTERED, Count.QUEUED, Count.DEAD_LETTERED)


class RetryLater(Exception):
    """The record fails (a batch item failure) and comes back. The message is safe to log."""


class RetryWorker:
    """One batch of records, each given an equal share of the time left when it starts."""

    def __init__(self, rt: Runtime, deadline: float, records: int) -> None:
        self._rt = rt
        self._deadline = deadline
        self._records_left = max(records, 1)
        self.tally = Tally()
        self.messages: Counter[str] = Counter()

    def _record_deadline(self) -> float:
        # An equal share of the time left for each record still to come: otherwise a slow
        # first message would leave the others untried, each losing a receive towards the
        # redrive to the dead-letter queue without one delivery attempt.
        now = time.monotonic()
        share = max(self._deadline - now, 0.0) / self._records_left
        self._records_left = max(self._records_left - 1, 1)
        return now + share

    def process(self, record: SQSRecord) -> None:
        deadline = self._record_deadline()
        receive_count = _receive_count(record)
        retries = 0
        try:
            message = _parse(record, receive_count)
            publish_failure_age(message.first_failure_at)
            retries = message.retries
            self._retry(record, message, receive_count, deadline)
        except Exception as exc:
            # Every failed record comes back after a back-off that grows with its receives.
            self.messages["failed"] += 1
            self._log_failure(
                record, exc, receive_count, self._back_off(record, retries + receive_count)
            )
            raise
        self.messages["settled"] += 1

    def _retry(
        self, record: SQSRecord, message: QueueMessage, receive_count: int, deadline: float
    ) -> None:
        rt = self._rt
        if message.omitted:
            # Only dead-letter messages hold omitted summaries: nothing here can deliver them.
            raise RetryLater("the message holds omitted events; it belongs on the DLQ")
        job = message.job
        try:
            result = deliver(job, rt.channels, deadline=deadline)
        except (SecretUnavailable, UndeliverableJob) as exc:
            logger.error("message cannot be delivered now", extra={"problem": str(exc)})
            raise RetryLater(str(exc)) from None
        transient = result.failed(FailureReason.TRANSIENT, FailureReason.DEADLINE)
        if transient and len(transient) == len(message.events):
            self.tally.add(job, result, None)
            raise RetryLater("no event of the message was delivered")
        routing = Routing.retry_worker(
            message,
            receive_count=receive_count,
            max_receives=rt.config.retry_max_attempts,
            base_delay_seconds=rt.config.retry_base_delay_seconds,
        )
        settlement = settle(result, job, rt.writer, routing)
        self.tally.add(job, result, settlement)
        if settlement.omitted:
            # An event that no longer fits a message would survive only as its summary: keep
            # the original (it comes back, then goes to the dead-letter queue whole by redrive).
            raise RetryLater("an event no longer fits an SQS message; the original is kept")
        if settlement.unqueued:
            logger.error(
                "events could be neither delivered nor queued; the message comes back",
                extra={"message_id": record.message_id, "unqueued": len(settlement.unqueued)},
            )
            raise RetryLater(f"{len(settlement.unqueued)} events could not be queued")

    def _back_off(self, record: SQSRecord, exponent: int) -> int:
        rt = self._rt
        delay = round(
            backoff_seconds(
                rt.config.retry_base_delay_seconds,
                exponent,
                SQS_MAX_VISIBILITY_SECONDS,
                jitter="equal",
            )
        )
        try:
            rt.sqs.change_message_visibility(
                QueueUrl=rt.config.retry_queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=delay,
            )
        except (BotoCoreError, ClientError) as exc:
            # It comes back after the queue's visibility timeout instead.
            logger.warning(
                "could not set the message's visibility",
                extra={"message_id": record.message_id, "error": type(exc).__name__},
            )
        return delay

    @staticmethod
    def _log_failure(record: SQSRecord, exc: Exception, receive_count: int, delay: int) -> None:
        details = {
            "message_id": record.message_id,
            "receive_count": receive_count,
            "visible_in_seconds": delay,
        }
        if isinstance(exc, RetryLater):
            logger.info("message will be retried", extra={**details, "reason": str(exc)})
            return
        # Where it failed, not what it said: an exception's message can quote event content
        # (a prompt, a trait), which never goes to the logs.
        logger.error(
            "retrying the message failed unexpectedly",
            extra={
                **details,
                "error": type(exc).__name__,
                "where": traceback.format_tb(exc.__traceback__, limit=-5),
            },
        )

    def finish(self, failed: int, started: float) -> None:
        """Publish the batch's metrics and log what it did."""
        tally = self.tally
        tally.publish(*PUBLISHED)
        ledger = tally.raindrop
        logger.info(
            "retry batch processed",
            extra={
                **ledger.of(*PUBLISHED),
                "mirror": tally.segment.nonzero(),
                "messages_settled": self.messages["settled"],
                "messages_failed": failed,
                "raindrop_requests": ledger.delivery.requests,
                "raindrop_statuses": dict(ledger.delivery.statuses),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )


def _parse(record: SQSRecord, receive_count: int) -> QueueMessage:
    try:
        return parse_message(record.body)
    except ValueError:
        logger.error(
            "not a forwarder message; SQS moves it to the dead-letter queue after its last receive",
            extra={"message_id": record.message_id, "receive_count": receive_count},
        )
        raise RetryLater("not a forwarder message") from None


def _receive_count(record: SQSRecord) -> int:
    try:
        return max(1, int(record.attributes.approximate_receive_count))
    except (TypeError, ValueError):
        return 1
