"""Raindrop's real Python SDK (raindrop-ai 0.0.75) pointed at local mode's ``/raindrop/v1/``.

Everything it sends reaches the Raindrop stand-in once, the Segment stand-in gets the mirrored
events once, and feeding those Segment events to the Segment -> Raindrop webhook (both
directions on) brings nothing back to Raindrop: the loop test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import raindrop.analytics as raindrop

from segment_raindrop.core.contract import LOOP_FILTER_REASON, MIRROR_LIBRARY_NAME
from segment_raindrop_tools.local.segment_tracking import SegmentTrackingApi
from tests.e2e.conftest import Local, wait_for
from tests.support.auth import bearer

StartLocal = Callable[..., Local]


@pytest.fixture
def sdk(start_local: StartLocal) -> Iterator[Local]:
    local = start_local()
    endpoint = local.endpoints.raindrop_sdk_endpoint
    assert endpoint is not None
    raindrop.init(
        api_key=local.endpoints.raindrop_api_key,
        endpoint=endpoint,
        local_workshop_url=None,
        tracing_enabled=False,
    )
    try:
        yield local
    finally:
        raindrop.shutdown()


def segment_of(local: Local) -> SegmentTrackingApi:
    segment = local.mode.segment
    assert segment is not None
    return segment


def send_one_of_each() -> str:
    """An AI event, a begin/finish interaction, a signal and an identify; the AI event's id."""
    event_id = raindrop.track_ai(
        user_id="user-sdk",
        event="ai_interaction",
        event_id="sdk-event-1",
        model="gpt-test",
        input="what is 2 + 2?",
        output="4",
        convo_id="convo-1",
        properties={"latency_ms": 12},
    )
    interaction = raindrop.begin(
        user_id="user-sdk",
        event="ai_interaction",
        event_id="sdk-interaction-1",
        input="write a haiku",
        model="gpt-test",
    )
    interaction.finish(output="an old silent pond")
    raindrop.track_signal(
        event_id=event_id,
        name="thumbs_down",
        signal_type="feedback",
        sentiment="NEGATIVE",
        comment="wrong tone",
    )
    raindrop.identify("user-sdk", {"plan": "pro", "seats": 3})
    raindrop.flush()
    return event_id


def test_sdk_events_reach_raindrop_and_segment_once_each(sdk: Local) -> None:
    event_id = send_one_of_each()
    receiver = sdk.receiver
    segment = segment_of(sdk)
    assert wait_for(lambda: len(segment.accepted_events()) >= 4, timeout=15)
    assert wait_for(lambda: len(receiver.accepted()) >= 4, timeout=15)

    # Raindrop: each item once, as the SDK sent it.
    accepted = Counter(
        (request.endpoint, len(request.items or []))
        for request in receiver.requests
        if request.accepted
    )
    raindrop_items = {
        endpoint: receiver.accepted(endpoint)
        for endpoint in ("events/track", "events/track_partial", "signals/track", "users/identify")
    }
    assert {endpoint: len(items) for endpoint, items in raindrop_items.items()} == {
        "events/track": 1,
        "events/track_partial": 1,
        "signals/track": 1,
        "users/identify": 1,
    }, accepted
    assert raindrop_items["events/track"][0]["event_id"] == event_id
    assert raindrop_items["events/track_partial"][0]["is_pending"] is False

    # Segment: the mirrored events once each, in the guide's schema, with the loop marker.
    events = segment.accepted_events()
    assert len(events) == 4
    assert len({event["messageId"] for event in events}) == 4
    assert all(event["context"]["library"]["name"] == MIRROR_LIBRARY_NAME for event in events)
    by_trace = {
        (event["type"], event.get("event"), event.get("properties", {}).get("trace_id")): event
        for event in events
    }
    chat = by_trace[("track", "AI Chat Completed", event_id)]
    assert chat["userId"] == "user-sdk"
    assert chat["properties"]["ai_data"]["input"] == "what is 2 + 2?"
    assert chat["properties"]["ai_data"]["output"] == "4"
    assert chat["properties"]["latency_ms"] == 12
    finished = by_trace[("track", "AI Chat Completed", "sdk-interaction-1")]
    assert finished["properties"]["ai_data"]["output"] == "an old silent pond"
    assert finished["properties"]["ai_data"]["input"] == "write a haiku"
    signal = by_trace[("track", "AI Feedback Submitted", event_id)]
    assert signal["properties"]["signal_name"] == "thumbs_down"
    assert signal["properties"]["signal_type"] == "feedback"
    assert signal["properties"]["sentiment"] == "NEGATIVE"
    assert signal["properties"]["comment"] == "wrong tone"
    identify = by_trace[("identify", None, None)]
    assert identify["traits"] == {"plan": "pro", "seats": 3}
    # Nothing was queued or dead-lettered on the way.
    endpoints = sdk.endpoints
    assert sdk.queue_depth(endpoints.retry_queue_url) == 0
    assert sdk.queue_depth(endpoints.dlq_url) == 0


def test_loop_mirrored_events_fed_back_to_the_webhook_are_filtered(sdk: Local) -> None:
    send_one_of_each()
    receiver = sdk.receiver
    segment = segment_of(sdk)
    assert wait_for(lambda: len(segment.accepted_events()) >= 4, timeout=15)
    assert wait_for(lambda: len(receiver.accepted()) >= 4, timeout=15)
    before = len(receiver.accepted())

    # Segment's Webhooks destination delivering the mirrored events back (batched).
    mirrored: list[dict[str, Any]] = segment.accepted_events()
    response = sdk.post(mirrored, headers=bearer(sdk.token))
    assert response.status_code == 200
    assert response.json() == {
        "received": 4,
        "forwarded": 0,
        "filtered": 4,
        "queued": 0,
        "dead_lettered": 0,
    }
    assert len(receiver.accepted()) == before
    assert len(segment.accepted_events()) == 4
    assert LOOP_FILTER_REASON == "originated in Raindrop"
