"""The last hour's event counts from the forwarder's own metrics (CloudWatch GetMetricData).

The functions (and the access log's metric filters) publish them in namespace
``METRICS_NAMESPACE`` with the dimensions service and stage (contract.metric_dimensions): the
counts are the inspected stack's own, whatever else runs in the account and region.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.core.contract import METRICS_NAMESPACE, Metric, metric_dimensions
from segment_raindrop_tools.status.report import CountsState

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

__all__ = ["WINDOW", "counts_state"]

WINDOW: Final = timedelta(hours=1)
_PERIOD_SECONDS: Final = 60  # minutes, summed: an hour-long period would snap to clock hours
# Query id -> (metric, statistic); the ids are the CountsState fields.
_QUERIES: Final = {
    "received": (Metric.EVENTS_RECEIVED, "Sum"),
    "forwarded": (Metric.EVENTS_FORWARDED, "Sum"),
    "filtered": (Metric.EVENTS_FILTERED, "Sum"),
    "queued": (Metric.EVENTS_QUEUED, "Sum"),
    "dead_lettered": (Metric.EVENTS_DEAD_LETTERED, "Sum"),
    # Counted from the APIs' access log: most were refused before any function ran.
    "too_large": (Metric.API_REQUESTS_TOO_LARGE, "Sum"),
    "throttled": (Metric.API_REQUESTS_THROTTLED, "Sum"),
    "gateway_errors": (Metric.API_GATEWAY_ERRORS, "Sum"),
    "retry_failure_age_seconds": (Metric.RETRY_FAILURE_AGE, "Maximum"),
}


def _query(query_id: str, metric: Metric, statistic: str, stage: str) -> MetricDataQueryTypeDef:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": METRICS_NAMESPACE,
                "MetricName": metric.value,
                "Dimensions": [
                    {"Name": name, "Value": value}
                    for name, value in metric_dimensions(stage).items()
                ],
            },
            "Period": _PERIOD_SECONDS,
            "Stat": statistic,
        },
    }


def counts_state(client: CloudWatchClient, now: datetime, *, stage: str | None) -> CountsState:
    window = int(WINDOW.total_seconds() // 60)
    if stage is None:
        return CountsState(
            available=True, window_minutes=window, error="the stack names no stage (output Stage)"
        )
    return _stage_counts(client, now, stage, window)


def _stage_counts(client: CloudWatchClient, now: datetime, stage: str, window: int) -> CountsState:
    values: dict[str, list[float]] = {query_id: [] for query_id in _QUERIES}
    try:
        pages = client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=[_query(i, *spec, stage) for i, spec in _QUERIES.items()],
            StartTime=now - WINDOW,
            EndTime=now,
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                values.setdefault(result.get("Id", ""), []).extend(result.get("Values", []))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        return CountsState(available=True, window_minutes=window, error=f"{code} from CloudWatch")
    except BotoCoreError as exc:
        return CountsState(available=True, window_minutes=window, error=type(exc).__name__)
    sums: dict[str, Any] = {
        query_id: round(sum(values[query_id]))
        for query_id, (_, statistic) in _QUERIES.items()
        if statistic == "Sum"
    }
    ages = values["retry_failure_age_seconds"]
    return CountsState(
        available=True,
        window_minutes=window,
        retry_failure_age_seconds=max(ages) if ages else None,
        **sums,
    )
