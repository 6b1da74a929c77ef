"""Lambda handler for dead-letter replay: the event is
:class:`~segment_raindrop.service.replay.options.ReplayOptions` as JSON (``{}`` replays
everything); the answer is the run's summary (:mod:`segment_raindrop.service.replay.replayer`).
"""

from __future__ import annotations

from typing import Any

from segment_raindrop.handlers.loading import handler_loading

# In Lambda the rest loads with the garbage collector paused, and is then frozen (loading.py).
with handler_loading():
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import ValidationError

    from segment_raindrop.adapters.observability import count, logger, metrics, traced_handler
    from segment_raindrop.core.config import ConfigError, describe_errors
    from segment_raindrop.core.contract import Metric
    from segment_raindrop.service.replay.options import ReplayOptions
    from segment_raindrop.service.replay.replayer import Replayer, ReplayRefused
    from segment_raindrop.service.runtime import LazyRuntime
    from segment_raindrop.service.tally import Count

runtime = LazyRuntime(source="replay")


@logger.inject_lambda_context
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    """Event: :class:`ReplayOptions` as JSON (``{}`` replays everything); returns the summary."""
    result = _replay(event, context)
    # Always one data point, so failed and dry runs show on the dashboard as zero.
    count(Metric.MESSAGES_REPLAYED, result.get("messages_deleted", 0))
    return result


def _replay(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    try:
        options = ReplayOptions.model_validate(event or {})
    except ValidationError as exc:
        problems = describe_errors(exc)
        logger.error("invalid replay event", extra={"problem": problems})
        return _failure(f"invalid event: {problems}")
    try:
        rt = runtime.get()
    except ConfigError as exc:
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        return _failure(f"forwarder configuration is invalid: {exc}")
    replayer = Replayer.from_runtime(rt, options)
    try:
        summary = replayer.run(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    except ReplayRefused as exc:
        logger.error("replay refused", extra={"problem": str(exc)})
        return _failure(str(exc))
    if not summary.dry_run:
        summary.tally.publish(Count.FORWARDED, Count.FILTERED)
    return summary.as_dict()


def _failure(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
