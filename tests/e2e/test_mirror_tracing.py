"""Raindrop's real SDK with ``tracing_enabled=True`` pointed at local mode: its OTLP exporter
posts spans to ``<scheme>://<host>/v1/traces`` (the endpoint's path dropped), which lands on
the SDK API's stage ``v1`` and its ``/traces`` route, as on a deployed stack, and reaches the
Raindrop stand-in byte for byte."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.conftest import Local, wait_for

StartLocal = Callable[..., Local]
SCRIPT = Path(__file__).with_name("raindrop_sdk_tracing.py")


def _span_names(local: Local) -> set[str]:
    names: set[str] = set()
    for request in local.receiver.requests_to("traces"):
        if request.status != 200:
            continue
        export = ExportTraceServiceRequest()
        export.ParseFromString(request.body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                names.update(span.name for span in scope.spans)
    return names


@pytest.mark.slow
def test_spans_from_the_sdk_with_tracing_on_reach_raindrop(start_local: StartLocal) -> None:
    local = start_local()
    endpoint = local.endpoints.raindrop_sdk_endpoint
    key = local.endpoints.raindrop_api_key
    assert endpoint is not None
    assert key is not None
    # The SDK's endpoint is the SDK API's stage URL + raindrop/v1/; its exporter keeps only
    # scheme://host and appends /v1/traces: the stage's /traces route.
    assert urlsplit(endpoint).path == "/v1/raindrop/v1/"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), endpoint, key],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Failed to export" not in done.stderr
    assert wait_for(
        lambda: {"look_up_docs.task", "search_kb.tool"} <= _span_names(local), timeout=10
    )
    traces = [r for r in local.receiver.requests_to("traces") if r.status == 200]
    assert {r.headers["Content-Type"] for r in traces} == {"application/x-protobuf"}
    # Forwarded with the stored Raindrop key, never passed to Segment.
    assert {r.headers["Authorization"] for r in traces} == {f"Bearer {key}"}
    exchanges = [e for e in local.mode.exchanges if e.path == "/v1/traces"]
    assert exchanges
    assert {e.status for e in exchanges} == {200}
    segment = local.mode.segment
    assert segment is not None
    assert {e["properties"]["trace_id"] for e in segment.accepted_events()} == {
        "traced-interaction-1"
    }
