"""How long the events of a queued message have been failing, published for the alarms.

Every queue message carries `first_failure_at` (when its events first failed, kept through
retries and re-queueing). The retry worker publishes its age for each message it handles, so an
alarm can tell "Raindrop has been failing these events for a quarter of an hour" from the
forwarder's own data (Metric.RETRY_FAILURE_AGE).
"""

from __future__ import annotations

from datetime import UTC, datetime

from segment_raindrop.adapters.observability import measure
from segment_raindrop.core.contract import Metric


def failure_age_seconds(first_failure_at: str, *, now: datetime | None = None) -> float | None:
    """Seconds from `first_failure_at` (ISO 8601; UTC when it names no zone) to `now`; never
    negative (another machine's clock may run ahead); None when it is not a timestamp."""
    try:
        first = datetime.fromisoformat(first_failure_at)
    except (TypeError, ValueError):
        return None
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max((current - first).total_seconds(), 0.0)


def publish_failure_age(first_failure_at: str) -> None:
    """Add the message's failure age to this invocation's metrics (nothing if unreadable)."""
    age = failure_age_seconds(first_failure_at)
    if age is not None:
        measure(Metric.RETRY_FAILURE_AGE, round(age, 1))
