"""The last hour's event counts from the forwarder's own metrics (CloudWatch GetMetricData).

The functions publish them in namespace ``METRICS_NAMESPACE`` with the one dimension
``service=segment-raindrop``, whatever the stage: in an account and region running several
stages, the counts are theirs together.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.core.contract import METRICS_NAMESPACE, SERVICE_NAME, Metric
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
    # Counted from the API's access log: most were refused before any function ran.
    "too_large": (Metric.API_REQUESTS_TOO_LARGE, "Sum"),
    "retry_failure_age_seconds": (Metric.RETRY_FAILURE_AGE, "Maximum"),
}


def _query(query_id: str, metric: Metric, statistic: str) -> MetricDataQueryTypeDef:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": METRICS_NAMESPACE,
                "MetricName": metric.value,
                "Dimensions": [{"Name": "service", "Value": SERVICE_NAME}],
            },
            "Period": _PERIOD_SECONDS,
            "Stat": statistic,
        },
    }


def counts_state(client: CloudWatchClient, now: datetime) -> CountsState:
    window = int(WINDOW.total_seconds() // 60)
    values: dict[str, list[float]] = {query_id: [] for query_id in _QUERIES}
    try:
        pages = client.get_paginator("get_metric_data").paginate(
            MetricDataQueries=[_query(i, *spec) for i, spec in _QUERIES.items()],
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
