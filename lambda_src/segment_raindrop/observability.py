"""Powertools Logger, Metrics and Tracer, shared by every handler.

Defaults make the code usable outside Lambda (tests, CLI, local mode); the stack sets the
same values through POWERTOOLS_* variables. Nothing here may log a key, a token, prompt
text or a trait value: log counts, ids, statuses and fixed reason phrases only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "segment-raindrop")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SegmentRaindrop")

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
tracer = Tracer(service=SERVICE)

# EMF accepts at most 100 values per metric and flush.
_MAX_VALUES = 100


def record_counts(counts: Mapping[str, int]) -> None:
    """``{"received": 3, ...}`` → EventsReceived=3, ..."""
    for name, value in counts.items():
        metrics.add_metric(
            name=f"Events{name.title().replace('_', '')}", unit=MetricUnit.Count, value=value
        )


def record_dead_letters(by_reason: Mapping[str, int]) -> None:
    for reason, value in by_reason.items():
        if value:
            with single_metric(
                name="EventsDeadLetteredByReason",
                unit=MetricUnit.Count,
                value=value,
                namespace=NAMESPACE,
            ) as metric:
                metric.add_dimension(name="service", value=SERVICE)
                metric.add_dimension(name="reason", value=reason)


def record_delivery(requests: int, failures: int, latencies_ms: Iterable[float]) -> None:
    metrics.add_metric(name="RaindropRequests", unit=MetricUnit.Count, value=requests)
    metrics.add_metric(name="RaindropRequestFailures", unit=MetricUnit.Count, value=failures)
    for number, latency in enumerate(latencies_ms):
        if number >= _MAX_VALUES:
            break
        metrics.add_metric(name="RaindropLatency", unit=MetricUnit.Milliseconds, value=latency)
