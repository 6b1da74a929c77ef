"""Powertools Logger, Metrics and Tracer, shared by every handler.

Defaults make the code usable outside Lambda (tests, CLI, local mode); the stack sets the
same values through POWERTOOLS_* variables, which Powertools reads itself. Nothing here may log
a key, a token, prompt text or a trait value: log counts, ids, statuses and fixed reason
phrases only. Metric names are :class:`~segment_raindrop.core.contract.Metric` members, the same
ones the stack's alarms and dashboard read.

Tracing is a deployment option (the stack's ``tracing`` context key). Powertools' ``Tracer()``
imports and configures the X-Ray SDK even when it is disabled, so a tracer exists only where it
would trace (:func:`tracing_enabled`). That spares a function deployed without tracing ~15 ms of
cold start, and every process outside Lambda (tests, local mode, the CLI) ~0.13 s: there the
SDK's recorder also builds a botocore client for its sampler.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from segment_raindrop.core.contract import (
    METRICS_NAMESPACE,
    SERVICE_NAME,
    STAGE_DIMENSION,
    Metric,
    metric_dimensions,
)
from segment_raindrop.core.environment import read_telemetry_config

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
# The stage (variable STAGE, which the stack sets) is read once, at import, like the tracer
# below: every metric carries it, so each stage's alarms see only its own metrics.
STAGE: str = read_telemetry_config(os.environ).stage
metrics.set_default_dimensions(**{STAGE_DIMENSION: STAGE})

# Powertools' own spelling of "true" for its switches (aws_lambda_powertools.shared.functions).
_TRUTHY = frozenset({"1", "y", "yes", "t", "true", "on"})


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    """Whether Powertools' Tracer would trace in this environment: inside Lambda (not SAM's or
    Chalice's local emulation) and not switched off with ``POWERTOOLS_TRACE_DISABLED``, the
    same test ``Tracer`` applies to itself."""
    in_lambda = bool(environ.get("LAMBDA_TASK_ROOT"))
    emulated = bool(environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"))
    disabled = environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY
    return in_lambda and not emulated and not disabled


# The libraries the functions make calls with: botocore (SQS, Secrets Manager, DynamoDB) and
# httpx (Raindrop, Segment). Left to its default, the Tracer would also look for a dozen
# database drivers and patch sqlite3, ~4 ms of every traced cold start for nothing we call.
TRACED_LIBRARIES = ("botocore", "httpx")

# Read once, at import: Lambda sets the environment before it loads the handler module.
tracer: Tracer | None = (
    Tracer(service=SERVICE_NAME, patch_modules=TRACED_LIBRARIES)
    if tracing_enabled(os.environ)
    else None
)

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def traced_handler(handler: _Handler) -> _Handler:
    """A Lambda handler traced as a subsegment when tracing is on; the handler itself otherwise.

    Responses are never recorded: they hold event counts today, but a handler's response is
    the kind of thing that could one day carry user data into X-Ray.
    """
    if tracer is None:
        return handler
    return cast("_Handler", tracer.capture_lambda_handler(handler, capture_response=False))


# Every metric is a count but these.
_MEASURES = {
    Metric.RAINDROP_LATENCY: MetricUnit.Milliseconds,
    Metric.RETRY_FAILURE_AGE: MetricUnit.Seconds,
}


def count(metric: Metric, value: int = 1) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)


def measure(metric: Metric, value: float) -> None:
    """One value of a metric that is not a count (a latency, an age)."""
    metrics.add_metric(name=metric.value, unit=_MEASURES[metric], value=value)


def count_by(metric: Metric, dimension: str, counts: Mapping[str, int]) -> None:
    """``metric`` once per non-zero count, with a second dimension naming what it counts.

    Powertools' ``single_metric`` prints its document even where ``POWERTOOLS_METRICS_DISABLED``
    turns every other metric off (local mode without ``--verbose``): it is asked here."""
    if is_metrics_disabled():
        return
    for value_name, value in counts.items():
        if value:
            with single_metric(
                name=metric.value,
                unit=MetricUnit.Count,
                value=value,
                namespace=METRICS_NAMESPACE,
                default_dimensions=metric_dimensions(STAGE),
            ) as published:
                published.add_dimension(name=dimension, value=value_name)


def on_breaker_change(_old: str, new: str) -> None:
    """The circuit breaker's state-change hook: it logs the change itself; count the openings
    so an alarm can tell that Raindrop has been failing for a while."""
    if new == "open":
        count(Metric.RAINDROP_CIRCUIT_OPENED)
