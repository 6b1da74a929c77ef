"""The CloudWatch dashboard: the forwarder's own metrics, queues, API and functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.queues import ForwarderQueues
from segment_raindrop.core.contract import (
    EVENT_METRICS,
    METRICS_NAMESPACE,
    Metric,
    metric_dimensions,
)

if TYPE_CHECKING:
    from infra.eventbridge import SegmentEventIntake

WIDTH: Final = 12  # two widgets per row on the 24-column grid


def forwarder_metric(
    metric: Metric,
    *,
    stage: str,
    statistic: str = "Sum",
    period: cdk.Duration | None = None,
) -> cloudwatch.Metric:
    """One of the forwarder's own metrics of one stage: the functions publish each with the
    dimensions service and stage (core.contract.metric_dimensions), as do the access log's
    metric filters."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric.value,
        dimensions_map=metric_dimensions(stage),
        statistic=statistic,
        period=period or cdk.Duration.minutes(5),
    )


def across_apis(
    apis: tuple[apigateway.RestApi, ...], metric: str, *, label: str, period: cdk.Duration
) -> cloudwatch.MathExpression:
    """The sum of one API Gateway metric (``Count``, ``4XXError``, ``5XXError``) over ``apis``;
    an API without requests in a period counts 0 rather than hiding the others' figures.

    Each API's metric is its stage's (dimensions ApiName and Stage): API names alone could
    coincide across stages (stage ``prod-sdks``'s webhook API and stage ``prod``'s SDK API)."""
    # Ids unique per metric: one graph may show several of these sums.
    name = "".join(char for char in metric.lower() if char.isalnum())
    using: dict[str, cloudwatch.IMetric] = {
        f"api{n}_{name}": api.deployment_stage.metric(metric, statistic="Sum", period=period)
        for n, api in enumerate(apis)
    }
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({name}, 0)" for name in using),
        using_metrics=using,
        label=label,
        period=period,
    )


def rule_metric(
    rule: events.Rule, bus: events.EventBus, metric: str, *, period: cdk.Duration
) -> cloudwatch.Metric:
    """One of EventBridge's per-rule metrics (``MatchedEvents``, ``FailedInvocations``...)
    for a rule on a custom bus."""
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name=metric,
        dimensions_map={"EventBusName": bus.event_bus_name, "RuleName": rule.rule_name},
        statistic="Sum",
        period=period,
    )


def _graph(title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=WIDTH)


def build_dashboard(
    scope: Construct,
    construct_id: str,
    *,
    name_prefix: str,
    stage: str,
    apis: tuple[apigateway.RestApi, ...],
    queues: ForwarderQueues,
    functions: dict[str, lambda_.IFunction],
    intake: SegmentEventIntake | None = None,
) -> cloudwatch.Dashboard:
    dlq, retry = queues.dead_letter_queue, queues.retry_queue

    def own(metric: Metric, statistic: str = "Sum") -> cloudwatch.Metric:
        return forwarder_metric(metric, stage=stage, statistic=statistic)

    dashboard = cloudwatch.Dashboard(
        scope,
        construct_id,
        # Dashboards are global to the account: the region keeps two deployments apart.
        dashboard_name=cdk.Fn.join("-", [name_prefix, cdk.Aws.REGION]),
        default_interval=cdk.Duration.hours(24),
    )
    dashboard.add_widgets(
        _graph("Events", [own(name) for name in EVENT_METRICS]),
        _graph(
            "Raindrop requests",
            [
                own(Metric.RAINDROP_REQUESTS),
                own(Metric.RAINDROP_REQUEST_FAILURES),
                own(Metric.RAINDROP_SHORT_CIRCUITED),
                own(Metric.RAINDROP_CIRCUIT_OPENED),
                own(Metric.RAINDROP_REDIRECTS),
            ],
        ),
    )
    dashboard.add_widgets(
        _graph(
            "Raindrop latency (ms)",
            [own(Metric.RAINDROP_LATENCY, s) for s in ("p50", "p90", "p99")],
        ),
        _graph(
            "API requests (both APIs)",
            [
                *(
                    across_apis(apis, metric, label=label, period=cdk.Duration.minutes(5))
                    for metric, label in (
                        ("Count", "requests"),
                        ("4XXError", "4xx answers"),
                        ("5XXError", "5xx answers"),
                    )
                    if apis  # none with webhook=false
                ),
                own(Metric.UNAUTHORIZED_REQUESTS),
                own(Metric.UNVERIFIABLE_BATCHES),
                # Counted from the access log: refused by API Gateway, unseen by the functions.
                own(Metric.API_REQUESTS_TOO_LARGE),
                own(Metric.API_REQUESTS_THROTTLED),
                own(Metric.API_GATEWAY_ERRORS),
            ],
        ),
    )
    dashboard.add_widgets(
        _graph(
            "Queue depth",
            [
                retry.metric_approximate_number_of_messages_visible(label="retry visible"),
                retry.metric_approximate_number_of_messages_not_visible(label="retry in flight"),
                dlq.metric_approximate_number_of_messages_visible(label="dead-letter visible"),
                dlq.metric_approximate_number_of_messages_not_visible(
                    label="dead-letter in flight (being replayed)"
                ),
            ],
        ),
        _graph(
            "How long retried events have been failing (s)",
            [own(Metric.RETRY_FAILURE_AGE, "Maximum")],
        ),
    )
    if intake is not None:
        dashboard.add_widgets(*_intake_widgets(intake))
    dashboard.add_widgets(
        _graph(
            "Raindrop SDK -> Segment",
            [
                own(Metric.RAINDROP_SDK_REQUESTS),
                own(Metric.MIRROR_EVENTS_SENT),
                own(Metric.MIRROR_FAILURES),
                own(Metric.MIRROR_DISABLED),
                own(Metric.MIRROR_EVENTS_TRUNCATED),
                own(Metric.MIRROR_PARTIALS_DEFERRED),
                own(Metric.MIRROR_PARTIALS_REVISED),
                own(Metric.MIRROR_PARTIALS_LOST),
            ],
        ),
    )
    dashboard.add_widgets(
        _graph(
            "Function duration p50 / p99 (ms)",
            [
                function.metric_duration(statistic=s, label=f"{name} {s}")
                for name, function in functions.items()
                for s in ("p50", "p99")
            ],
        ),
        _graph(
            "Function errors and throttles",
            [
                metric
                for name, function in functions.items()
                for metric in (
                    function.metric_errors(statistic="Sum", label=f"{name} errors"),
                    function.metric_throttles(statistic="Sum", label=f"{name} throttles"),
                )
            ],
        ),
    )
    return dashboard


def _intake_widgets(intake: SegmentEventIntake) -> tuple[cloudwatch.GraphWidget, ...]:
    """The EventBridge intake: what the rules matched and delivered, and its queues."""
    period = cdk.Duration.minutes(5)
    queue, dlq = intake.queue, intake.dead_letter_queue
    return (
        _graph(
            "Segment events via EventBridge (rules)",
            [
                rule_metric(rule, bus, metric, period=period).with_(label=f"{label} {n}")
                for n, (rule, bus) in enumerate(zip(intake.rules, intake.buses, strict=True))
                for metric, label in (
                    ("MatchedEvents", "matched"),
                    ("FailedInvocations", "failed to queue"),
                )
            ],
        ),
        _graph(
            "EventBridge intake queue",
            [
                queue.metric_approximate_number_of_messages_visible(label="intake visible"),
                queue.metric_approximate_number_of_messages_not_visible(label="intake in flight"),
                queue.metric_approximate_age_of_oldest_message(
                    statistic="Maximum", label="oldest record (s)"
                ),
                dlq.metric_approximate_number_of_messages_visible(label="intake dead letters"),
            ],
        ),
    )
