"""The retry worker publishes how long each message's events have been failing.

The RetriesFailing alarm reads it (SQS's own age metric leaves out messages received three
times, which the worker's back-off makes every failing message within minutes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.contract import METRICS_NAMESPACE, Metric
from segment_raindrop_tools.events import chat
from tests.support.queues import (
    fast,
    fresh_runtimes,
    put_message,
    run_retry_worker,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["fast", "fresh_runtimes"]  # fixtures, imported for use by name


def _published(output: str, metric: Metric) -> list[float]:
    """The values of `metric` in the EMF documents Powertools printed."""
    values: list[float] = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        directives = document.get("_aws", {}).get("CloudWatchMetrics", [])
        names = {m["Name"] for d in directives for m in d["Metrics"]}
        if metric.value in names:
            assert all(d["Namespace"] == METRICS_NAMESPACE for d in directives)
            assert document["service"] == "segment-raindrop"
            value = document[metric.value]
            values.extend(value if isinstance(value, list) else [value])
    return values


def _ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_each_handled_message_publishes_its_failure_age(
    aws: Any, receiver: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put_message(aws, QueueTarget.RETRY, [chat(1)], first_failure_at=_ago(3600))
    put_message(aws, QueueTarget.RETRY, [chat(2)], first_failure_at=_ago(60))
    receiver.outage()  # failing or not, the age is what it is
    capsys.readouterr()

    assert run_retry_worker(aws).received == 2

    ages = sorted(_published(capsys.readouterr().out, Metric.RETRY_FAILURE_AGE))
    assert len(ages) == 2
    assert 60 <= ages[0] < 120
    assert 3600 <= ages[1] < 3660
