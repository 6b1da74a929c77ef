"""Lambda handler for the retry queue (SQS event source with ``ReportBatchItemFailures``): each
record a queued job, delivered again by :class:`~segment_raindrop.service.retry_worker.RetryWorker`,
which says how each record ends.
"""

from __future__ import annotations

import time
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
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from segment_raindrop.adapters.observability import logger, metrics, traced_handler
    from segment_raindrop.core.config import ConfigError
    from segment_raindrop.core.timing import deadline_within
    from segment_raindrop.service.retry_worker import RetryWorker
    from segment_raindrop.service.runtime import LazyRuntime

# Kept back from the Lambda's remaining time to queue what failed and answer the event source.
DEADLINE_RESERVE_SECONDS = 3.0

runtime = LazyRuntime(source="retry")


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
    worker = RetryWorker(rt, deadline, records=len(event.get("Records") or []))
    # Every record gets its own verdict, even when all fail: their visibility is already set.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=worker.process, processor=processor, context=context
    )
    worker.finish(len(response.get("batchItemFailures", [])), started)
    return response
