"""Segment's own Amazon EventBridge (Actions) destination code through the EventBridge intake.

``segment_actions_eventbridge.js`` runs the destination's "Send" action
(``@segment/action-destinations`` on npm) with its default mapping, so the ``PutPartnerEvents``
entries are exactly what Segment's code builds. They go to moto's EventBridge, which applies the
stack's rule pattern and puts the envelopes on the intake queue; the consumer
(``handlers.eventbridge``) delivers them to the Raindrop stand-in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from segment_raindrop_tools.cli_local import sample_conversation
from segment_raindrop_tools.local.eventbridge import LOCAL_ACCOUNT
from tests.e2e.test_segment_clients import needs_node, run_segment_code
from tests.support.eventbridge import SOURCE, Intake, intake
from tests.support.queues import fast, fresh_runtimes

pytestmark = [needs_node, pytest.mark.usefixtures("fast", "fresh_runtimes")]
__all__ = ["fast", "fresh_runtimes", "intake"]  # fixtures, used by name

REPO = Path(__file__).resolve().parents[2]
NODE_SCRIPT = Path(__file__).with_name("segment_actions_eventbridge.js")
FIXTURES = REPO / "tests" / "fixtures"


def segment_eventbridge_send(
    endpoint_url: str, events: list[dict[str, Any]], *, batch: bool
) -> dict[str, Any]:
    """Put ``events`` on the partner source the way Segment's destination does."""
    request = {
        "sourceId": SOURCE.rsplit("/", 1)[-1],
        "accountId": LOCAL_ACCOUNT,
        "region": "us-east-1",
        "events": events,
        "batch": batch,
    }
    moto = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = run_segment_code(NODE_SCRIPT, request, env={**os.environ, **moto})
    assert result["errors"] == []
    assert all(entry["status"] == 200 for entry in result["results"]), result
    return result


def _drain(intake: Intake) -> None:
    while intake.depth():
        assert intake.run().failed == 0


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batched"])
def test_segments_own_entries_reach_raindrop(intake: Intake, receiver: Any, batch: bool) -> None:
    recorded = json.loads((FIXTURES / "actions_batch.json").read_text())
    conversation = sample_conversation("user-eb", seed=7, turns=3)
    events = recorded + conversation

    segment_eventbridge_send(intake.aws.endpoint_url, events, batch=batch)
    _drain(intake)

    ai_ids = {
        e.get("properties", {}).get("trace_id") or e["messageId"]
        for e in events
        if e.get("type") == "track"
        and e.get("event", "").startswith("AI ")
        and e["event"] != "AI Feedback Submitted"
    }
    signals = [e for e in events if e.get("event") == "AI Feedback Submitted"]
    assert {item["event_id"] for item in receiver.accepted("events/track")} == ai_ids
    assert len(receiver.accepted("signals/track")) == len(signals)
    assert receiver.accepted("users/identify")
    aws = intake.aws
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
    assert aws.queue_depth(aws.resources.dlq_url) == 0
    assert aws.queue_depth(intake.resources.dlq_url) == 0
