"""Powertools Logger, Metrics and Tracer, shared by every handler.

Defaults make the code usable outside Lambda (tests, CLI, local mode); the stack sets the
same values through POWERTOOLS_* variables, which Powertools reads itself. Nothing here may log
a key, a token, prompt text or a trait value: log counts, ids, statuses and fixed reason
phrases only. Metric names are :class:`~segment_raindrop.contract.Metric` members, the same
ones the stack's alarms and dashboard read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from segment_raindrop.contract import METRICS_NAMESPACE, SERVICE_NAME, Metric

if TYPE_CHECKING:
    from segment_raindrop.delivery import DeliveryReport

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
tracer = Tracer(service=SERVICE_NAME)

# EMF accepts at most 100 values per metric and flush.
_MAX_VALUES = 100

# The per-event outcomes, as the webhook answers and the tally counts them.
EVENT_COUNT_METRICS = {
    "received": Metric.EVENTS_RECEIVED,
    "forwarded": Metric.EVENTS_FORWARDED,
    "filtered": Metric.EVENTS_FILTERED,
    "queued": Metric.EVENTS_QUEUED,
    "dead_lettered": Metric.EVENTS_DEAD_LETTERED,
}


def count(metric: Metric, value: int = 1) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)


def record_counts(counts: Mapping[str, int]) -> None:
    """``{"received": 3, ...}`` → EventsReceived=3, ..."""
    for name, value in counts.items():
        count(EVENT_COUNT_METRICS[name], value)


def record_dead_letters(by_reason: Mapping[str, int]) -> None:
    for reason, value in by_reason.items():
        if value:
            with single_metric(
                name=Metric.EVENTS_DEAD_LETTERED_BY_REASON.value,
                unit=MetricUnit.Count,
                value=value,
                namespace=METRICS_NAMESPACE,
            ) as metric:
                metric.add_dimension(name="service", value=SERVICE_NAME)
                metric.add_dimension(name="reason", value=reason)


def record_redactions(by_kind: Mapping[str, int]) -> None:
    """Redactions by kind (never what was redacted), like the dead letters by reason."""
    for kind, value in by_kind.items():
        if value:
            with single_metric(
                name=Metric.REDACTIONS.value,
                unit=MetricUnit.Count,
                value=value,
                namespace=METRICS_NAMESPACE,
            ) as metric:
                metric.add_dimension(name="service", value=SERVICE_NAME)
                metric.add_dimension(name="kind", value=kind)


def record_delivery(report: DeliveryReport) -> None:
    count(Metric.RAINDROP_REQUESTS, report.requests)
    count(Metric.RAINDROP_REQUEST_FAILURES, report.failed_requests)
    # Zero is worth publishing for these two only when it is not: their alarms treat missing
    # data as fine, and the dashboard stays readable.
    if report.redirects:
        count(Metric.RAINDROP_REDIRECTS, report.redirects)
    if report.short_circuited:
        count(Metric.RAINDROP_SHORT_CIRCUITED, report.short_circuited)
    for number, latency in enumerate(report.latencies_ms):
        if number >= _MAX_VALUES:
            break
        metrics.add_metric(
            name=Metric.RAINDROP_LATENCY.value, unit=MetricUnit.Milliseconds, value=latency
        )


def on_breaker_change(_old: str, new: str) -> None:
    """The circuit breaker's state-change hook: it logs the change itself; count the openings
    so an alarm can tell that Raindrop has been failing for a while."""
    if new == "open":
        count(Metric.RAINDROP_CIRCUIT_OPENED)
