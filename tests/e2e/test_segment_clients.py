"""Segment's own code talking to local mode over HTTP.

- ``segment-analytics-python`` with ``host`` pointed at local mode: it posts the
  ``{"batch": [...]}`` envelope to ``/v1/batch`` with the webhook token as write key (Basic auth).
- Segment's Webhooks (Actions) destination (``@segment/action-destinations`` on npm, run by
  ``segment_actions_webhook.js``): single and batched requests with Segment's exact body and
  ``X-Signature``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from segment_raindrop.core.contract import MAX_SDK_BODY_BYTES, SEGMENT_MAX_BATCH_SIZE
from segment_raindrop_tools import samples
from segment_raindrop_tools.cli_local import sample_conversation
from segment_raindrop_tools.local.raindrop_items import check_raindrop_items
from tests.e2e.conftest import Local, wait_for
from tests.support.auth import bearer

StartLocal = Callable[..., Local]
REPO = Path(__file__).resolve().parents[2]
NODE_SCRIPT = Path(__file__).with_name("segment_actions_webhook.js")


# --- segment-analytics-python --------------------------------------------------------------


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_analytics_python_track_and_identify_arrive_mapped(
    start_local: StartLocal, gzip: bool
) -> None:
    # With gzip=True the library sends Content-Encoding: gzip; the body reaches the handler
    # base64-encoded and intact, as through the stack's API (binary media type */*).
    local = start_local()
    errors: list[Any] = []
    client = Client(
        write_key=local.token,
        host=local.endpoints.tracking_api_host,
        on_error=lambda error, batch: errors.append((error, batch)),
        upload_interval=0.05,
        max_retries=0,
        gzip=gzip,
    )
    client.identify(
        "user-42",
        {"email": "ada@example.com", "plan": {"tier": "pro", "seats": 12}, "beta": True},
    )
    client.track(
        "user-42",
        "AI Chat Completed",
        {
            "trace_id": "tr-42",
            "model": "gpt-4o-mini",
            "latency_ms": 812,
            "ai_data": {
                "input": [{"role": "user", "content": "Summarise my week"}],
                "output": "You shipped three features.",
                "convo_id": "convo-42",
            },
        },
        context={"traits": {"plan": "pro"}},
    )
    client.track("user-42", "Button Clicked", {"button": "upgrade"})  # not an AI event
    client.track(
        anonymous_id="anon-7",
        event="AI Feedback Submitted",
        properties={"trace_id": "tr-42", "comment": "Spot on", "sentiment": "Positive"},
    )
    client.flush()
    client.join()
    assert errors == []

    receiver = local.receiver
    [event] = receiver.accepted("events/track")
    assert event["event"] == "ai_interaction"
    assert event["user_id"] == "user-42"
    assert event["event_id"] == "tr-42"
    ai_data = event["ai_data"]
    # A message list is JSON-encoded into the string Raindrop wants.
    assert json.loads(ai_data.pop("input")) == [{"role": "user", "content": "Summarise my week"}]
    assert ai_data == {
        "model": "gpt-4o-mini",
        "output": "You shipped three features.",
        "convo_id": "convo-42",
    }
    assert event["properties"]["latency_ms"] == 812
    assert "ai_data" not in event["properties"]
    [signal] = receiver.accepted("signals/track")
    assert signal["event_id"] == "tr-42"
    assert signal["signal_type"] == "feedback"
    assert signal["sentiment"] == "POSITIVE"
    identified = receiver.accepted("users/identify")
    assert {item["user_id"] for item in identified} == {"user-42"}
    flattened = {"email": "ada@example.com", "plan.tier": "pro", "plan.seats": 12, "beta": True}
    # When the identify and the chat arrive in one request, the chat's context traits merge
    # into the identify (one users/identify per user and request); apart, each has its own.
    assert any(item["traits"].items() >= flattened.items() for item in identified)
    assert any(item["traits"].get("plan") == "pro" for item in identified)
    for endpoint in ("events/track", "signals/track", "users/identify"):
        assert check_raindrop_items(endpoint, receiver.accepted(endpoint)) is None

    # What Segment's library sent: the envelope to /v1/batch, every event accounted for.
    exchanges = local.mode.exchanges
    assert {exchange.path for exchange in exchanges} == {local.batch_path}
    assert {exchange.status for exchange in exchanges} == {200}
    assert sum(exchange.answer["received"] for exchange in exchanges if exchange.answer) == 4
    assert sum(exchange.answer["filtered"] for exchange in exchanges if exchange.answer) == 1
    # Segment's write-key convention: HTTP Basic with the webhook token as user name.
    assert {exchange.credentials for exchange in exchanges} == {("basic",)}


def test_analytics_python_with_a_wrong_write_key_is_refused(start_local: StartLocal) -> None:
    local = start_local()
    client = Client(
        write_key="not-the-token",
        host=local.endpoints.tracking_api_host,
        sync_mode=True,
        max_retries=0,
    )
    with pytest.raises(APIError) as refused:
        client.track("user-1", "AI Chat Completed", {"ai_data": {"input": "x", "output": "y"}})
    assert refused.value.status == 401
    assert local.receiver.requests == []


# --- Segment's Webhooks (Actions) destination -----------------------------------------------


def _node_available() -> bool:
    return (
        shutil.which("node") is not None
        and (REPO / "node_modules" / "@segment" / "action-destinations").is_dir()
    )


needs_node = pytest.mark.skipif(
    not _node_available(),
    reason="node and @segment/action-destinations are needed (make npm)",
)


def segment_actions_send(
    url: str,
    events: list[dict[str, Any]],
    *,
    batch: bool,
    shared_secret: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send ``events`` to ``url`` the way Segment's Webhooks (Actions) "Send" action does."""
    request = {"url": url, "events": events, "batch": batch}
    if shared_secret is not None:
        request["sharedSecret"] = shared_secret
    if headers is not None:
        request["headers"] = headers
    return run_segment_code(NODE_SCRIPT, request)


def run_segment_code(
    script: Path, request: dict[str, Any], *, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one of the node scripts that drive Segment's own destination code: ``request`` on
    its stdin, its JSON answer from stdout."""
    completed = subprocess.run(
        ["node", str(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _segment_events(user: str, seed: int) -> list[dict[str, Any]]:
    events = sample_conversation(user, seed=seed, turns=3)
    # A number JavaScript and Python print differently (5e-7 vs 5e-07), in the element Segment
    # signs: the forwarder must check the signature against the raw text, not a re-encoding.
    for event in events:
        if event.get("event") == "AI Chat Completed":
            event["properties"]["temperature"] = 5e-7
    return events


def _assert_delivered(local: Local, events: list[dict[str, Any]]) -> None:
    ai_ids = {
        e["properties"]["trace_id"]
        for e in events
        if e.get("event", "").startswith("AI ") and e["event"] != "AI Feedback Submitted"
    }
    signal_ids = {
        e["properties"]["trace_id"] for e in events if e.get("event") == "AI Feedback Submitted"
    }
    receiver = local.receiver
    assert wait_for(lambda: len(receiver.accepted("events/track")) >= len(ai_ids), timeout=5)
    tracked = [item["event_id"] for item in receiver.accepted("events/track")]
    assert sorted(tracked) == sorted(ai_ids)
    assert {item["event_id"] for item in receiver.accepted("signals/track")} == signal_ids
    assert receiver.accepted("users/identify")
    assert local.queue_depth(local.endpoints.retry_queue_url) == 0
    assert local.queue_depth(local.endpoints.dlq_url) == 0


@needs_node
@pytest.mark.slow
def test_segment_actions_single_signed_requests(start_local: StartLocal) -> None:
    local = start_local()
    events = _segment_events("usr-actions-single", seed=11)
    result = segment_actions_send(
        local.endpoints.webhook_url,
        events,
        batch=False,
        shared_secret=local.endpoints.shared_secret,
    )
    assert result["errors"] == []
    assert [response["status"] for response in result["responses"]] == [200] * len(events)
    assert sum(response["body"]["forwarded"] for response in result["responses"]) == 7
    assert sum(response["body"]["filtered"] for response in result["responses"]) == 1
    _assert_delivered(local, events)


@needs_node
@pytest.mark.slow
@pytest.mark.parametrize("with_token", [True, False], ids=["signature+token", "signature-only"])
def test_segment_actions_batched_request(start_local: StartLocal, with_token: bool) -> None:
    local = start_local()
    events = _segment_events("usr-actions-batch", seed=12)
    result = segment_actions_send(
        local.endpoints.webhook_url,
        events,
        batch=True,
        shared_secret=local.endpoints.shared_secret,
        # The custom header a batched mapping adds, since the signature covers event 1 only.
        headers=bearer(local.token) if with_token else None,
    )
    if not with_token:
        # Without it anyone holding one signed event could append their own: refused, and
        # Segment's client reports the 401 as an error (a status it does not retry).
        assert result["responses"] == []
        assert {error["status"] for error in result["errors"]} == {401}
        assert local.receiver is not None
        assert local.receiver.requests == []
        return
    assert result["errors"] == []
    [response] = result["responses"]
    assert response["status"] == 200
    assert response["body"] == {
        "received": 8,
        "forwarded": 7,
        "filtered": 1,
        "queued": 0,
        "dead_lettered": 0,
    }
    _assert_delivered(local, events)


@needs_node
@pytest.mark.slow
def test_segment_actions_with_the_wrong_shared_secret_is_refused(start_local: StartLocal) -> None:
    local = start_local()
    events = _segment_events("usr-actions-wrong", seed=13)[:2]
    result = segment_actions_send(
        local.endpoints.webhook_url, events, batch=True, shared_secret="not-the-secret"
    )
    assert result["responses"] == []
    assert {error["status"] for error in result["errors"]} == {401}
    assert local.receiver.requests == []


@needs_node
@pytest.mark.slow
def test_segment_actions_largest_batch_is_delivered_in_one_call(start_local: StartLocal) -> None:
    # Segment's maximum batch of 4,000 events through its own Webhooks (Actions) code: about
    # 5 MB of body, more than the 4.67 MB a base64-encoded body could be. Local mode's front
    # refuses what API Gateway and Lambda would (413 over the invoke payload, as text).
    local = start_local()
    events = samples.short_chats(SEGMENT_MAX_BATCH_SIZE)
    body_bytes = len(samples.body(events))
    assert 4_800_000 < body_bytes < 5_300_000
    assert body_bytes > MAX_SDK_BODY_BYTES
    result = segment_actions_send(
        local.endpoints.webhook_url,
        events,
        batch=True,
        shared_secret=local.endpoints.shared_secret,
        headers=bearer(local.token),
    )
    assert result["errors"] == []
    [response] = result["responses"]
    assert response["status"] == 200
    assert response["body"]["received"] == response["body"]["forwarded"] == len(events)
    [exchange] = local.mode.exchanges  # one request, one handler call
    assert exchange.status == 200
    delivered = {item["event_id"] for item in local.receiver.accepted("events/track")}
    assert delivered == {event["properties"]["trace_id"] for event in events}
    assert local.queue_depth(local.endpoints.retry_queue_url) == 0
    assert local.queue_depth(local.endpoints.dlq_url) == 0
