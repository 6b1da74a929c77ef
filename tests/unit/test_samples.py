"""The sample traffic generator used by tests, the benchmark and ``send-sample``."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from tests.support.segment import tracking_api_envelope

from segment_raindrop_tools import samples


def test_deterministic() -> None:
    assert samples.batch(200, seed=4) == samples.batch(200, seed=4)
    assert samples.conversation(seed=1) == samples.conversation(seed=1)
    assert samples.batch(200, seed=4) != samples.batch(200, seed=5)


def test_batch_size_and_mix() -> None:
    for n in (0, 1, 7, 1_000):
        assert len(samples.batch(n)) == n
    kinds = Counter(
        e["event"] if e["type"] == "track" else e["type"] for e in samples.batch(2_000, seed=1)
    )
    assert set(kinds) == {
        "AI Chat Completed",
        "AI Tool Called",
        "AI Feedback Submitted",
        "identify",
        "page",
        "Order Completed",
    }
    assert kinds["AI Chat Completed"] > 2_000 // 2  # mostly AI chat, like real traffic


def test_events_look_like_segment_events() -> None:
    for event in samples.batch(300, seed=2):
        assert {"type", "messageId", "userId", "anonymousId", "context", "integrations"} <= set(
            event
        )
        for key in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
            assert event[key].endswith("Z")
            datetime.fromisoformat(event[key])
        assert event["sentAt"] <= event["receivedAt"]
        context = event["context"]
        assert {"library", "ip", "locale", "traits"} <= set(context)
        if context["library"]["name"] == "analytics.js":
            assert {"userAgent", "page"} <= set(context)
    json.dumps(samples.batch(300, seed=2), allow_nan=False)


def test_conversation_shape() -> None:
    events = samples.conversation("usr_x", seed=3, turns=4)
    names = [e["event"] for e in events]
    assert names == [
        "AI Chat Completed",
        "AI Tool Called",
        "AI Feedback Submitted",  # the edit of the first answer's attachment
        "AI Chat Completed",
        "AI Chat Completed",
        "AI Chat Completed",
        "AI Feedback Submitted",
    ]
    assert {e["userId"] for e in events} == {"usr_x"}
    chats = [e for e in events if e["event"] == "AI Chat Completed"]
    # ai_data as an object and as a JSON string; input is the growing message list.
    forms = [type(e["properties"]["ai_data"]) for e in chats]
    assert dict in forms
    assert str in forms
    inputs = [
        (a if isinstance(a, dict) else json.loads(a))["input"]
        for a in (e["properties"]["ai_data"] for e in chats)
    ]
    assert [len(messages) for messages in inputs] == [2, 4, 6, 8]
    assert all(m["role"] in {"system", "user", "assistant"} for ms in inputs for m in ms)
    for chat in chats:
        props = chat["properties"]
        assert {"trace_id", "convo_id", "model", "latency_ms", "prompt_tokens"} <= set(props)
    # The feedback is about the last turn.
    assert events[-1]["properties"]["trace_id"] == chats[-1]["properties"]["trace_id"]
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps)


def test_text_is_unicode_and_sized_by_prompt_chars() -> None:
    short = samples.chat_completed(prompt_chars=50)
    long = samples.chat_completed(prompt_chars=5_000)
    prompt = short["properties"]["ai_data"]["input"][-1]["content"]
    assert len(prompt) <= 50
    assert len(long["properties"]["ai_data"]["input"][-1]["content"]) > 4_000
    text = json.dumps(samples.batch(200, seed=6), ensure_ascii=False)
    assert not text.isascii()


def test_single_event_builders() -> None:
    assert samples.chat_completed(ai_data_as_string=True)["properties"]["ai_data"].startswith("{")
    assert samples.tool_called()["event"] == "AI Tool Called"
    fb = samples.feedback()
    assert fb["properties"]["comment"]
    assert fb["properties"]["sentiment"].lower() in {"positive", "negative"}
    person = samples.identify("usr_q")
    assert person["type"] == "identify"
    assert person["userId"] == "usr_q"
    assert isinstance(person["traits"]["company"], dict)
    assert isinstance(person["traits"]["roles"], list)
    assert samples.page()["type"] == "page"
    assert samples.order_completed()["event"] == "Order Completed"


def test_envelope_and_body_helpers() -> None:
    events = samples.batch(3)
    envelope = tracking_api_envelope(events, sent_at=datetime(2025, 1, 2, tzinfo=UTC))
    assert envelope["batch"] == events
    assert envelope["sentAt"] == "2025-01-02T00:00:00.000Z"
    assert json.loads(samples.body(events)) == events


def test_iso_is_javascript_to_iso_string() -> None:
    assert samples.iso(datetime(2025, 3, 14, 9, 26, 53, 589_999, tzinfo=UTC)) == (
        "2025-03-14T09:26:53.589Z"
    )
