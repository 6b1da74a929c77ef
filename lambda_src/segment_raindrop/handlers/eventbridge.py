"""Lambda handler for the EventBridge intake's queue (SQS event source with
``ReportBatchItemFailures``): each record an EventBridge envelope holding one Segment event,
the batch delivered by :mod:`segment_raindrop.service.eventbridge_intake`, which says which
records fail (only those whose events could be neither delivered nor queued).
"""

from __future__ import annotations

import time
from typing import Any

from segment_raindrop.handlers.loading import handler_loading

# In Lambda the rest loads with the garbage collector paused, and is then frozen (loading.py).
with handler_loading():
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from segment_raindrop.adapters.observability import logger, metrics, traced_handler
    from segment_raindrop.core.config import ConfigError
    from segment_raindrop.service import eventbridge_intake
    from segment_raindrop.service.runtime import LazyRuntime

runtime = LazyRuntime(source="eventbridge")


@logger.inject_lambda_context
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.monotonic()
    try:
        rt = runtime.get()
    except ConfigError as exc:
        # The whole batch comes back after the queue's visibility timeout.
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        raise
    records = [
        eventbridge_intake.Record(str(record.get("messageId", "")), str(record.get("body") or ""))
        for record in event.get("Records") or []
    ]
    times = eventbridge_intake.batch_deadlines(
        started,
        remaining=context.get_remaining_time_in_millis() / 1000,
        budget=rt.config.delivery.budget_seconds,
    )
    outcome = eventbridge_intake.receive(rt, records, times, request_id=context.aws_request_id)
    eventbridge_intake.log_batch(
        outcome, records=len(records), duration_ms=round((time.monotonic() - started) * 1000, 1)
    )
    return {"batchItemFailures": [{"itemIdentifier": failed} for failed in sorted(outcome.failed)]}
