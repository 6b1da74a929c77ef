"""Every metric a function publishes carries its stage (variable STAGE, set by the stack), so
the alarms of one stage never count another stage's events in the same account and region.

Run in a fresh interpreter: the stage is read once, when the observability module loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PUBLISH = """
from segment_raindrop.adapters.observability import count, count_by, metrics
from segment_raindrop.core.contract import Metric
count(Metric.EVENTS_RECEIVED, 3)
metrics.flush_metrics()
count_by(Metric.EVENTS_DEAD_LETTERED_BY_REASON, "reason", {"invalid": 2})
count(Metric.EVENTS_FORWARDED, 1)
metrics.flush_metrics()
"""


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "STAGE"}
    environment.pop("POWERTOOLS_METRICS_DISABLED", None)
    return subprocess.run(
        [sys.executable, "-c", _PUBLISH],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _dimensions(stdout: str) -> dict[str, dict[str, str]]:
    """Each published metric's dimension values, from the EMF documents printed."""
    found: dict[str, dict[str, str]] = {}
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            (names,) = directive["Dimensions"]
            for metric in directive["Metrics"]:
                found[metric["Name"]] = {name: document[name] for name in names}
    return found


def test_every_metric_carries_the_functions_stage() -> None:
    result = _run(STAGE="blue")
    assert result.returncode == 0, result.stderr
    assert _dimensions(result.stdout) == {
        "EventsReceived": {"service": "segment-raindrop", "stage": "blue"},
        "EventsDeadLetteredByReason": {
            "service": "segment-raindrop",
            "stage": "blue",
            "reason": "invalid",
        },
        # After a flush too: the stage is a default dimension.
        "EventsForwarded": {"service": "segment-raindrop", "stage": "blue"},
    }


def test_outside_a_deployment_the_stage_is_local() -> None:
    result = _run()
    assert result.returncode == 0, result.stderr
    assert _dimensions(result.stdout)["EventsReceived"]["stage"] == "local"


def test_a_malformed_stage_fails_naming_the_variable() -> None:
    result = _run(STAGE="has space")
    assert result.returncode != 0
    assert "STAGE" in result.stderr
