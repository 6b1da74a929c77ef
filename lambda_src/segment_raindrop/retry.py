"""Lambda handler for the retry queue: the pipeline again, on the events the webhook queued.

Triggered by the retry queue (SQS event source with ``ReportBatchItemFailures``). Each record is
one queue message (``FailedEventsMessage``) and ends in one of these ways:

- **Not one of ours** (unparseable): it fails, untouched. After ``RETRY_MAX_ATTEMPTS`` receives
  SQS's redrive policy moves it to the dead-letter queue as it is.
- **Secret unreadable, or the Raindrop key not configured**: it fails and comes back later.
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

import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.config import ConfigError
from segment_raindrop.credentials import SecretUnavailable
from segment_raindrop.delivery import DeliveryReport
from segment_raindrop.observability import (
    logger,
    metrics,
    record_counts,
    record_dead_letters,
    record_delivery,
    tracer,
)
from segment_raindrop.pipeline import requeue
from segment_raindrop.queueing import (
    FailedEventsMessage,
    FailureReason,
    QueueResult,
    QueueTarget,
    parse_message,
)
from segment_raindrop.runtime import LazyRuntime, Runtime

# Kept back from the Lambda's remaining time to queue what failed and answer the event source.
DEADLINE_RESERVE_SECONDS = 3.0
# SQS refuses a visibility timeout reaching past 12 hours after the receive; stay clear of it.
MAX_VISIBILITY_SECONDS = 43_000
# SendMessage's largest DelaySeconds.
MAX_DELAY_SECONDS = 900
_MAX_EXPONENT = 40

runtime = LazyRuntime(source="retry")
_random = random.SystemRandom()


class RetryLater(Exception):
    """The record fails (a batch item failure) and comes back. The message is safe to log."""


def backoff_seconds(base: float, exponent: int, cap: int) -> int:
    """``base * 2**(exponent - 1)`` capped at ``cap``, with equal jitter (half to all of it)."""
    ceiling = min(float(cap), base * 2 ** min(max(exponent - 1, 0), _MAX_EXPONENT))
    return min(cap, round(_random.uniform(ceiling / 2, ceiling)))


@dataclass(slots=True)
class _Tally:
    """What one invocation did, for the metrics and the summary log line."""

    events: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    messages: Counter[str] = field(default_factory=Counter)


class _Worker:
    def __init__(self, rt: Runtime, deadline: float, records: int) -> None:
        self._rt = rt
        self._deadline = deadline
        self._records_left = max(records, 1)
        self.tally = _Tally()

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
            retries = message.retries
            self._retry(record, message, receive_count, deadline)
        except Exception as exc:
            # Every failed record comes back after a back-off that grows with its receives.
            self.tally.messages["failed"] += 1
            delay = self._back_off(record, retries + receive_count)
            details = {
                "message_id": record.message_id,
                "receive_count": receive_count,
                "visible_in_seconds": delay,
            }
            if isinstance(exc, RetryLater):
                logger.info("message will be retried", extra={**details, "reason": str(exc)})
            else:
                # Where it failed, not what it said: an exception's message can quote event
                # content (a prompt, a trait), which never goes to the logs.
                logger.error(
                    "retrying the message failed unexpectedly",
                    extra={
                        **details,
                        "error": type(exc).__name__,
                        "where": traceback.format_tb(exc.__traceback__, limit=-5),
                    },
                )
            raise
        self.tally.messages["settled"] += 1

    def _retry(
        self,
        record: SQSRecord,
        message: FailedEventsMessage,
        receive_count: int,
        deadline: float,
    ) -> None:
        rt = self._rt
        if message.omitted:
            # Only dead-letter messages hold omitted summaries: nothing here can deliver them.
            raise RetryLater("the message holds omitted events; it belongs on the DLQ")
        try:
            secret = rt.secrets.get()
        except SecretUnavailable as exc:
            logger.error("secret unavailable", extra={"problem": str(exc)})
            raise RetryLater("the secret is unavailable") from None
        if not secret.raindrop_key_configured:
            logger.error("the Raindrop API key in the secret is missing or a placeholder")
            raise RetryLater("the Raindrop API key is not configured")

        events = message.events
        result = rt.forwarder.forward(
            events,
            api_key=secret.raindrop_api_key,
            deadline=deadline,
            refresh_key=rt.secrets.fresh_raindrop_key,
        )
        tally = self.tally
        tally.delivery.merge(result.delivery)
        tally.events["forwarded"] += len(result.forwarded)
        tally.events["filtered"] += len(result.filtered)
        permanent = result.failed(FailureReason.INVALID, FailureReason.REJECTED)
        transient = result.failed(FailureReason.TRANSIENT, FailureReason.DEADLINE)
        if transient and len(transient) == len(events):
            raise RetryLater("no event of the message was delivered")

        retries = message.retries + receive_count
        writer = rt.writer
        dead_letter = QueueResult()
        retry = QueueResult()
        if permanent:
            dead_letter = requeue(
                writer, QueueTarget.DEAD_LETTER, message, permanent, retries=retries
            )
        if transient:
            if retries >= rt.config.retry_max_attempts:
                exhausted = {
                    index: replace(failure, reason=FailureReason.TRANSIENT)
                    for index, failure in transient.items()
                }
                extra = requeue(
                    writer, QueueTarget.DEAD_LETTER, message, exhausted, retries=retries
                )
                dead_letter.queued |= extra.queued
                dead_letter.omitted |= extra.omitted
                dead_letter.unqueued |= extra.unqueued
            else:
                delay = backoff_seconds(
                    rt.config.retry_base_delay_seconds, retries, MAX_DELAY_SECONDS
                )
                retry = requeue(
                    writer,
                    QueueTarget.RETRY,
                    message,
                    transient,
                    retries=retries,
                    delay_seconds=delay,
                )
        tally.events["queued"] += len(retry.queued)
        dead = dead_letter.queued | dead_letter.omitted | retry.omitted
        tally.events["dead_lettered"] += len(dead)
        for index in dead:
            failure = permanent.get(index) or transient[index]
            reason = failure.reason if failure.reason.permanent else FailureReason.TRANSIENT
            tally.dead_by_reason[reason.value] += 1
        unqueued = dead_letter.unqueued | retry.unqueued
        if unqueued:
            logger.error(
                "events could be neither delivered nor queued; the message comes back",
                extra={"message_id": record.message_id, "unqueued": len(unqueued)},
            )
            raise RetryLater(f"{len(unqueued)} events could not be queued")

    def _back_off(self, record: SQSRecord, exponent: int) -> int:
        rt = self._rt
        delay = backoff_seconds(
            rt.config.retry_base_delay_seconds, exponent, MAX_VISIBILITY_SECONDS
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


def _parse(record: SQSRecord, receive_count: int) -> FailedEventsMessage:
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


def _observe(worker: _Worker, response: PartialItemFailureResponse, started: float) -> None:
    tally = worker.tally
    counts = {
        name: tally.events[name] for name in ("forwarded", "filtered", "queued", "dead_lettered")
    }
    record_counts(counts)
    record_dead_letters(tally.dead_by_reason)
    record_delivery(
        tally.delivery.requests, tally.delivery.failed_requests, tally.delivery.latencies_ms
    )
    logger.info(
        "retry batch processed",
        extra={
            **counts,
            "messages_settled": tally.messages["settled"],
            "messages_failed": len(response.get("batchItemFailures", [])),
            "raindrop_requests": tally.delivery.requests,
            "raindrop_statuses": dict(tally.delivery.statuses),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    started = time.monotonic()
    try:
        rt = runtime.get()
    except ConfigError as exc:
        # The whole batch comes back after the queue's visibility timeout.
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        raise
    remaining = context.get_remaining_time_in_millis() / 1000
    budget = min(rt.config.delivery.budget_seconds, remaining - DEADLINE_RESERVE_SECONDS)
    worker = _Worker(rt, started + max(budget, 0.0), records=len(event.get("Records") or []))
    # Every record gets its own verdict, even when all fail: their visibility is already set.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=worker.process, processor=processor, context=context
    )
    _observe(worker, response, started)
    return response
