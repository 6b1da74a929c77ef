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

import time
import traceback
from collections import Counter
from typing import Any

from segment_raindrop.handlers.loading import handler_loading

# In Lambda the rest loads with the garbage collector paused, and is then frozen (loading.py).
with handler_loading():
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from botocore.exceptions import BotoCoreError, ClientError

    from segment_raindrop.adapters.observability import logger, metrics, traced_handler
    from segment_raindrop.adapters.queue_writer import (
        FailedEventsMessage,
        FailureReason,
        parse_message,
    )
    from segment_raindrop.adapters.secrets import SecretUnavailable
    from segment_raindrop.core.config import ConfigError
    from segment_raindrop.core.contract import SQS_MAX_VISIBILITY_SECONDS
    from segment_raindrop.core.timing import backoff_seconds, deadline_within
    from segment_raindrop.service.failure_age import publish_failure_age
    from segment_raindrop.service.relay import CannotDeliver, deliver_message, is_mirror_message
    from segment_raindrop.service.runtime import LazyRuntime, Runtime
    from segment_raindrop.service.settlement import Routing, Tally, settle

# Kept back from the Lambda's remaining time to queue what failed and answer the event source.
DEADLINE_RESERVE_SECONDS = 3.0

runtime = LazyRuntime(source="retry")


class RetryLater(Exception):
    """The record fails (a batch item failure) and comes back. The message is safe to log."""


class _Worker:
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
        self.messages["settled"] += 1

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
            api_key = rt.secrets.ready_key()
            if is_mirror_message(message):
                # Raindrop SDK items, or events for Segment: sent as they are, not mapped.
                result = deliver_message(
                    message,
                    raindrop=rt.forwarder.client,
                    segment=rt.segment,
                    secrets=rt.secrets,
                    deadline=deadline,
                )
            else:
                result = rt.forwarder.forward(
                    message.events,
                    api_key=api_key,
                    deadline=deadline,
                    refresh_key=rt.secrets.fresh_raindrop_key,
                    project=message.project,
                )
        except SecretUnavailable as exc:
            logger.error("secret not ready", extra={"problem": str(exc)})
            raise RetryLater(str(exc)) from None
        except CannotDeliver as exc:
            logger.error("message cannot be delivered now", extra={"problem": str(exc)})
            raise RetryLater(str(exc)) from None
        self.tally.forwarded(result)
        transient = result.failed(FailureReason.TRANSIENT, FailureReason.DEADLINE)
        if transient and len(transient) == len(message.events):
            raise RetryLater("no event of the message was delivered")
        routing = Routing.retry_worker(
            message,
            receive_count=receive_count,
            max_receives=rt.config.retry_max_attempts,
            base_delay_seconds=rt.config.retry_base_delay_seconds,
        )
        settlement = settle(result, rt.writer, routing, request_id=message.request_id)
        self.tally.settled(settlement)
        if settlement.retry.omitted or settlement.dead_letter.omitted:
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
    names = ("forwarded", "filtered", "queued", "dead_lettered")
    tally.publish(*names)
    logger.info(
        "retry batch processed",
        extra={
            **tally.counts(*names),
            "messages_settled": worker.messages["settled"],
            "messages_failed": len(response.get("batchItemFailures", [])),
            "raindrop_requests": tally.delivery.requests,
            "raindrop_statuses": dict(tally.delivery.statuses),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


@logger.inject_lambda_context
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    started = time.monotonic()
    try:
        rt = runtime.get()
    except ConfigError as exc:
        # The whole batch comes back after the queue's visibility timeout.
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        raise
    deadline = deadline_within(
        started,
        budget=rt.config.delivery.budget_seconds,
        remaining=context.get_remaining_time_in_millis() / 1000,
        reserve=DEADLINE_RESERVE_SECONDS,
    )
    worker = _Worker(rt, deadline, records=len(event.get("Records") or []))
    # Every record gets its own verdict, even when all fail: their visibility is already set.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=worker.process, processor=processor, context=context
    )
    _observe(worker, response, started)
    return response
