# ruff: noqa: RUF001  (full-width punctuation in the Japanese and Chinese sample text)
"""The Segment → Raindrop mapping, rule by rule (docs/wire.md §3, the product's contract).

``RULES`` holds one row per rule; each row maps a single event and states its one expected
outcome, so removing the rule from the mapper makes that row fail. Behaviour that needs
several events (enrichment once per user, accounting, ordering) has its own tests below.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.support.raindrop_models import MODEL_FOR_ENDPOINT

from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.items import MapResult
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.mapping.values import normalise_timestamp
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop_tools import samples
from segment_raindrop_tools.events import AI_CHAT, identify_call, track_call

TRACK, SIGNAL, IDENTIFY = Endpoint.TRACK, Endpoint.SIGNAL, Endpoint.IDENTIFY
DROP = object()  # removes a key in ``with_``
ABSENT = object()  # in an expected payload: the key must not be there

TS = "2025-03-14T09:26:53.589Z"
AI_DATA = {"input": "What is 2 + 2?", "output": "4"}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(base))
    for key, value in changes.items():
        if value is DROP:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def track(name: str = AI_CHAT, /, **changes: Any) -> dict[str, Any]:
    base = track_call(
        name,
        {"trace_id": "trace-1", "ai_data": AI_DATA},
        userId="user-1",
        anonymousId="anon-1",
        messageId="msg-1",
        timestamp=TS,
    )
    return with_(base, **changes)


def props(**properties: Any) -> dict[str, Any]:
    """Properties for ``track``: a trace id and AI content unless overridden."""
    base: dict[str, Any] = {"trace_id": "trace-1", "ai_data": AI_DATA}
    return with_(base, **properties)


def feedback(**properties: Any) -> dict[str, Any]:
    base = {"trace_id": "trace-1", "comment": "Great answer", "sentiment": "positive"}
    return track("AI Feedback Submitted", properties=with_(base, **properties))


def identify(**changes: Any) -> dict[str, Any]:
    base = identify_call({"plan": "pro"}, userId="user-1", messageId="msg-id", timestamp=TS)
    return with_(base, **changes)


@dataclass(frozen=True)
class Mapped:
    """The event maps to exactly these items, each checked against a subset of its payload."""

    items: tuple[tuple[Endpoint, dict[str, Any]], ...]


@dataclass(frozen=True)
class Filtered:
    reason: str


@dataclass(frozen=True)
class Invalid:
    reason: str


Expected = Mapped | Filtered | Invalid


def mapped(endpoint: Endpoint, **payload: Any) -> Mapped:
    return Mapped(((endpoint, payload),))


@dataclass(frozen=True)
class Row:
    id: str
    event: Any
    expected: Expected
    config: dict[str, Any] = field(default_factory=dict)


def payloads(result: MapResult) -> list[tuple[Endpoint, dict[str, Any]]]:
    return [(item.endpoint, json.loads(item.payload)) for item in result.items]


def assert_payload(payload: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if value is ABSENT:
            assert key not in payload, f"{key} should be absent from {payload}"
        else:
            assert payload.get(key, ABSENT) == value, f"{key}: {payload.get(key)!r} != {value!r}"


def check(result: MapResult, expected: Expected) -> None:
    if isinstance(expected, Mapped):
        assert result.invalid == {}, result.invalid
        assert result.filtered == {}
        got = payloads(result)
        assert [endpoint for endpoint, _ in got] == [endpoint for endpoint, _ in expected.items]
        for (_, payload), (_, want) in zip(got, expected.items, strict=True):
            assert_payload(payload, want)
        for item in result.items:
            assert item.event_index == 0
            MODEL_FOR_ENDPOINT[item.endpoint].model_validate_json(item.payload)
    elif isinstance(expected, Filtered):
        assert result.items == []
        assert result.invalid == {}
        assert expected.reason in result.filtered[0]
    else:
        assert result.items == []
        assert result.filtered == {}
        assert expected.reason in result.invalid[0]


RULES = [
    # -- what is forwarded ----------------------------------------------------------------
    Row("prefix-AI-forwarded", track("AI Tool Called"), mapped(TRACK, event="AI Tool Called")),
    Row("prefix-needs-the-space", track("AIChat Completed"), Filtered("not an AI event")),
    Row("prefix-is-case-sensitive", track("ai Chat Completed"), Filtered("not an AI event")),
    Row("bare-AI-prefix-name", track("AI "), mapped(TRACK, event="AI ")),
    Row(
        "explicit-name-forwarded",
        track("Prompt Sent"),
        mapped(TRACK, event="Prompt Sent"),
        {"forward_event_names": ["Prompt Sent"]},
    ),
    Row("explicit-name-not-configured", track("Prompt Sent"), Filtered("not an AI event")),
    Row(
        "custom-prefix-forwarded",
        track("LLM Call"),
        mapped(TRACK, event="LLM Call"),
        {"forward_event_prefixes": ["LLM ", "GenAI "]},
    ),
    Row(
        "custom-prefix-replaces-default",
        track("AI Tool Called"),
        Filtered("not an AI event"),
        {"forward_event_prefixes": ["LLM "]},
    ),
    Row("other-track-filtered", track("Order Completed"), Filtered("not an AI event")),
    Row("page-filtered", identify(type="page", name="Billing"), Filtered("page calls")),
    Row("screen-filtered", identify(type="screen", name="Home"), Filtered("screen calls")),
    Row("group-filtered", identify(type="group", groupId="g1"), Filtered("group calls")),
    Row("alias-filtered", identify(type="alias", previousId="p"), Filtered("alias calls")),
    Row("delete-filtered", identify(type="delete"), Filtered("deletion requests")),
    Row("unknown-type-filtered", identify(type="experiment"), Filtered("unsupported event type")),
    Row("identify-forwarded", identify(), mapped(IDENTIFY, user_id="user-1")),
    Row(
        "identify-disabled",
        identify(),
        Filtered("identify forwarding is disabled"),
        {"forward_identify": False},
    ),
    # -- not a usable event at all --------------------------------------------------------
    Row("not-an-object", ["AI Chat Completed"], Invalid("not a JSON object")),
    Row("null-event", None, Invalid("not a JSON object")),
    Row("no-type", track(type=DROP), Invalid("no type")),
    Row("non-string-type", track(type=["track"]), Invalid("no type")),
    Row("track-without-name", track(event=DROP), Invalid("no event name")),
    Row("track-with-non-string-name", track(event=42), Invalid("no event name")),
    # -- event names ----------------------------------------------------------------------
    Row("rename-chat-completed", track(), mapped(TRACK, event="ai_interaction")),
    Row(
        "custom-rename",
        track("AI Tool Called"),
        mapped(TRACK, event="tool_call"),
        {"event_renames": {"AI Tool Called": "tool_call"}},
    ),
    Row(
        "custom-rename-table-replaces-default",
        track(),
        mapped(TRACK, event="AI Chat Completed"),
        {"event_renames": {"AI Tool Called": "tool_call"}},
    ),
    # -- event_id -------------------------------------------------------------------------
    Row("event-id-from-trace-id", track(), mapped(TRACK, event_id="trace-1")),
    Row(
        "event-id-message-id-without-trace-id",
        track(properties=props(trace_id=DROP)),
        mapped(TRACK, event_id="msg-1"),
    ),
    Row(
        "event-id-message-id-for-empty-trace-id",
        track(properties=props(trace_id="")),
        mapped(TRACK, event_id="msg-1"),
    ),
    Row(
        "event-id-message-id-for-non-string-trace-id",
        track(properties=props(trace_id=12345)),
        mapped(TRACK, event_id="msg-1", properties={"trace_id": 12345}),
    ),
    Row(
        "event-id-neither",
        track(messageId=DROP, properties=props(trace_id=DROP)),
        Invalid("no properties.trace_id or messageId"),
    ),
    Row(
        "event-id-empty-message-id",
        track(messageId="", properties=props(trace_id=None)),
        Invalid("no properties.trace_id or messageId"),
    ),
    # -- user_id --------------------------------------------------------------------------
    Row("user-id-from-user-id", track(), mapped(TRACK, user_id="user-1")),
    Row("user-id-from-anonymous-id", track(userId=DROP), mapped(TRACK, user_id="anon-1")),
    Row("user-id-null-falls-back", track(userId=None), mapped(TRACK, user_id="anon-1")),
    Row("user-id-empty-falls-back", track(userId=""), mapped(TRACK, user_id="anon-1")),
    Row("user-id-object-falls-back", track(userId={"id": 1}), mapped(TRACK, user_id="anon-1")),
    Row("user-id-number-as-text", track(userId=1234), mapped(TRACK, user_id="1234")),
    Row("user-id-bool-is-not-an-id", track(userId=True), mapped(TRACK, user_id="anon-1")),
    Row(
        "user-id-neither",
        track(userId=DROP, anonymousId=DROP),
        Invalid("no userId or anonymousId"),
    ),
    Row(
        "user-id-both-empty",
        track(userId="", anonymousId=None),
        Invalid("no userId or anonymousId"),
    ),
    Row(
        "identify-user-id-neither",
        identify(userId=DROP),
        Invalid("no userId or anonymousId"),
    ),
    Row(
        "identify-anonymous",
        identify(userId=DROP, anonymousId="a-9"),
        mapped(IDENTIFY, user_id="a-9"),
    ),
    # -- timestamp ------------------------------------------------------------------------
    Row(
        "timestamp-first",
        track(originalTimestamp="2025-01-01T00:00:00Z", receivedAt="2025-01-02T00:00:00Z"),
        mapped(TRACK, timestamp=TS),
    ),
    Row(
        "timestamp-original",
        track(
            timestamp=DROP,
            originalTimestamp="2025-01-01T00:00:00.000Z",
            receivedAt="2025-01-02T00:00:00Z",
            sentAt="2025-01-03T00:00:00Z",
        ),
        mapped(TRACK, timestamp="2025-01-01T00:00:00.000Z"),
    ),
    Row(
        "timestamp-received-at",
        track(timestamp=DROP, receivedAt="2025-01-02T00:00:00.000Z", sentAt="2025-01-03T00:00:00Z"),
        mapped(TRACK, timestamp="2025-01-02T00:00:00.000Z"),
    ),
    Row(
        "timestamp-sent-at",
        track(timestamp=DROP, sentAt="2025-01-03T00:00:00.000Z"),
        mapped(TRACK, timestamp="2025-01-03T00:00:00.000Z"),
    ),
    Row(
        "timestamp-unparsable-falls-back",
        track(
            timestamp="yesterday", originalTimestamp=1710408413, receivedAt="2025-01-02T00:00:00Z"
        ),
        mapped(TRACK, timestamp="2025-01-02T00:00:00.000Z"),
    ),
    Row("timestamp-none", track(timestamp=DROP), Invalid("no valid timestamp")),
    Row("timestamp-epoch-number", track(timestamp=1710408413589), Invalid("no valid timestamp")),
    Row(
        "timestamp-offset-to-utc",
        track(timestamp="2025-03-14T10:26:53.589+01:00"),
        mapped(TRACK, timestamp=TS),
    ),
    Row(
        "timestamp-naive-is-utc",
        track(timestamp="2025-03-14T09:26:53.589"),
        mapped(TRACK, timestamp=TS),
    ),
    Row(
        "timestamp-microseconds-to-milliseconds",
        track(timestamp="2025-03-14T09:26:53.589999+00:00"),
        mapped(TRACK, timestamp=TS),
    ),
    Row(
        "timestamp-out-of-range-in-utc",
        track(timestamp="0001-01-01T00:30:00+01:00"),
        Invalid("no valid timestamp"),
    ),
    Row(
        "signal-timestamp-fallback",
        with_(feedback(), timestamp=DROP, sentAt="2025-01-03T00:00:00Z"),
        mapped(SIGNAL, timestamp="2025-01-03T00:00:00.000Z"),
    ),
    # -- ai_data --------------------------------------------------------------------------
    Row(
        "ai-data-object",
        track(properties=props(ai_data={"input": "Hi", "output": "Hello", "model": "m"})),
        mapped(TRACK, ai_data={"input": "Hi", "output": "Hello", "model": "m"}),
    ),
    Row(
        "ai-data-json-string",
        track(properties=props(ai_data=json.dumps({"input": "Hi ü", "convo_id": "c1"}))),
        mapped(TRACK, ai_data={"input": "Hi ü", "convo_id": "c1"}),
    ),
    Row(
        "ai-data-malformed-string",
        track(properties=props(ai_data="{'input': 'Hi'")),
        Invalid("properties.ai_data is a string but not JSON"),
    ),
    Row(
        "ai-data-string-of-a-list",
        track(properties=props(ai_data="[1, 2]")),
        Invalid("properties.ai_data is not an object"),
    ),
    Row(
        "ai-data-number",
        track(properties=props(ai_data=3)),
        Invalid("properties.ai_data is not an object"),
    ),
    Row(
        "ai-data-model-from-properties",
        track(properties=props(model="gpt-4o", ai_data={"input": "Hi"})),
        mapped(
            TRACK,
            ai_data={"input": "Hi", "model": "gpt-4o"},
            properties={"trace_id": "trace-1", "model": "gpt-4o"},
        ),
    ),
    Row(
        "ai-data-model-wins-over-properties",
        track(properties=props(model="gpt-4o", ai_data={"input": "Hi", "model": "o3"})),
        mapped(TRACK, ai_data={"input": "Hi", "model": "o3"}),
    ),
    Row(
        "ai-data-null-model-falls-back",
        track(properties=props(model="gpt-4o", ai_data={"input": "Hi", "model": None})),
        mapped(TRACK, ai_data={"input": "Hi", "model": "gpt-4o"}),
    ),
    Row(
        "ai-data-convo-id-from-properties",
        track(properties=props(convo_id="c-7", ai_data={"output": "Hello"})),
        mapped(TRACK, ai_data={"output": "Hello", "convo_id": "c-7"}),
    ),
    Row(
        "ai-data-convo-id-wins-over-properties",
        track(properties=props(convo_id="c-7", ai_data={"output": "Hello", "convo_id": "c-8"})),
        mapped(TRACK, ai_data={"output": "Hello", "convo_id": "c-8"}),
    ),
    Row(
        "ai-data-message-list-input-json-encoded",
        track(
            properties=props(
                ai_data={"input": [{"role": "user", "content": "Grüß Gott 👋"}], "output": "Hallo"}
            )
        ),
        mapped(
            TRACK,
            ai_data={"input": '[{"role":"user","content":"Grüß Gott 👋"}]', "output": "Hallo"},
        ),
    ),
    Row(
        "ai-data-object-output-json-encoded",
        track(properties=props(ai_data={"input": "q", "output": {"status": "ok", "n": 3}})),
        mapped(TRACK, ai_data={"input": "q", "output": '{"status":"ok","n":3}'}),
    ),
    Row(
        "ai-data-number-model-as-text",
        track(properties=props(ai_data={"input": "q", "model": 4})),
        mapped(TRACK, ai_data={"input": "q", "model": "4"}),
    ),
    Row(
        "no-ai-content-no-ai-data",
        track(properties={"trace_id": "trace-1", "latency_ms": 12}),
        mapped(TRACK, ai_data=ABSENT, properties={"trace_id": "trace-1", "latency_ms": 12}),
    ),
    Row(
        "empty-input-output-no-ai-data",
        track(properties=props(model="m", ai_data={"input": "", "output": None, "model": "m"})),
        mapped(TRACK, ai_data=ABSENT),
    ),
    Row(
        "ai-data-null-no-ai-data",
        track(properties=props(ai_data=None)),
        mapped(TRACK, ai_data=ABSENT, properties={"trace_id": "trace-1"}),
    ),
    Row(
        "ai-data-json-null-no-ai-data",
        track(properties=props(ai_data="null")),
        mapped(TRACK, ai_data=ABSENT),
    ),
    Row("no-properties", track(properties=DROP), mapped(TRACK, event_id="msg-1", properties={})),
    Row(
        "properties-not-an-object", track(properties=["x"]), Invalid("properties is not an object")
    ),
    # -- properties -----------------------------------------------------------------------
    Row(
        "properties-without-ai-data",
        track(
            properties=props(
                model="gpt-4o",
                latency_ms=812,
                prompt_tokens=120,
                completion_tokens=40,
                total_tokens=160,
                nested={"a": [1, {"b": None}]},
            )
        ),
        mapped(
            TRACK,
            properties={
                "trace_id": "trace-1",
                "model": "gpt-4o",
                "latency_ms": 812,
                "prompt_tokens": 120,
                "completion_tokens": 40,
                "total_tokens": 160,
                "nested": {"a": [1, {"b": None}]},
            },
        ),
    ),
    # -- feedback -------------------------------------------------------------------------
    Row(
        "feedback-is-a-signal",
        feedback(),
        mapped(
            SIGNAL,
            event_id="trace-1",
            signal_name="feedback",
            signal_type="feedback",
            sentiment="POSITIVE",
            timestamp=TS,
            properties={"trace_id": "trace-1", "comment": "Great answer", "sentiment": "positive"},
        ),
    ),
    Row(
        "feedback-event-id-is-trace-not-message-id",
        feedback(trace_id="trace-xyz"),
        mapped(SIGNAL, event_id="trace-xyz"),
    ),
    Row("feedback-without-trace-id", feedback(trace_id=DROP), Invalid("trace_id to link it to")),
    Row("feedback-empty-trace-id", feedback(trace_id=""), Invalid("trace_id to link it to")),
    Row("feedback-numeric-trace-id", feedback(trace_id=7), Invalid("trace_id to link it to")),
    Row(
        "feedback-signal-name", feedback(signal_name="thumbs"), mapped(SIGNAL, signal_name="thumbs")
    ),
    Row(
        "feedback-empty-signal-name",
        feedback(signal_name=""),
        mapped(SIGNAL, signal_name="feedback"),
    ),
    Row(
        "feedback-no-comment-default", feedback(comment=DROP), mapped(SIGNAL, signal_type="default")
    ),
    Row(
        "feedback-empty-comment-default",
        feedback(comment=""),
        mapped(SIGNAL, signal_type="default"),
    ),
    Row(
        "feedback-list-comment-default",
        feedback(comment=["x"]),
        mapped(SIGNAL, signal_type="default"),
    ),
    Row("sentiment-lower", feedback(sentiment="negative"), mapped(SIGNAL, sentiment="NEGATIVE")),
    Row("sentiment-upper", feedback(sentiment="POSITIVE"), mapped(SIGNAL, sentiment="POSITIVE")),
    Row("sentiment-mixed", feedback(sentiment="NeGaTiVe"), mapped(SIGNAL, sentiment="NEGATIVE")),
    Row("sentiment-unknown-omitted", feedback(sentiment="meh"), mapped(SIGNAL, sentiment=ABSENT)),
    Row("sentiment-non-string-omitted", feedback(sentiment=1), mapped(SIGNAL, sentiment=ABSENT)),
    Row("sentiment-missing", feedback(sentiment=DROP), mapped(SIGNAL, sentiment=ABSENT)),
    Row(
        "feedback-properties-drop-ai-data",
        feedback(ai_data={"input": "x"}),
        mapped(
            SIGNAL,
            properties={"trace_id": "trace-1", "comment": "Great answer", "sentiment": "positive"},
        ),
    ),
    Row(
        "feedback-needs-no-user",
        with_(feedback(), userId=DROP, anonymousId=DROP),
        mapped(SIGNAL, event_id="trace-1"),
    ),
    Row(
        "custom-feedback-name",
        track("Thumbs Clicked", properties={"trace_id": "t-2", "sentiment": "positive"}),
        mapped(SIGNAL, event_id="t-2", sentiment="POSITIVE"),
        {"feedback_event_names": ["Thumbs Clicked"]},
    ),
    Row(
        "default-feedback-name-replaced-is-a-plain-track",
        feedback(),
        mapped(TRACK, event="AI Feedback Submitted", event_id="trace-1"),
        {"feedback_event_names": ["Thumbs Clicked"]},
    ),
    # -- identify -------------------------------------------------------------------------
    Row(
        "identify-traits-flattened",
        identify(
            traits={
                "email": "ada@example.com",
                "company": {"name": "Acme", "address": {"city": "München", "zip": None}},
                "roles": ["admin", "billing"],
                "avatar": None,
                "seats": 12,
                "score": 0.5,
                "beta": False,
            }
        ),
        mapped(
            IDENTIFY,
            user_id="user-1",
            traits={
                "email": "ada@example.com",
                "company.name": "Acme",
                "company.address.city": "München",
                "roles": '["admin","billing"]',
                "seats": 12,
                "score": 0.5,
                "beta": False,
            },
        ),
    ),
    Row("identify-without-traits", identify(traits=DROP), mapped(IDENTIFY, traits={})),
    Row(
        "identify-traits-not-an-object", identify(traits="pro"), Invalid("traits is not an object")
    ),
    Row(
        "identify-infinite-trait-dropped",
        identify(traits={"plan": "pro", "ltv": float("inf")}),
        mapped(IDENTIFY, traits={"plan": "pro"}),
    ),
    # -- enrichment from context.traits ---------------------------------------------------
    Row(
        "enrichment",
        track(context={"traits": {"email": "a@b.c", "company": {"id": 7}}}),
        Mapped(
            (
                (TRACK, {"user_id": "user-1"}),
                (IDENTIFY, {"user_id": "user-1", "traits": {"email": "a@b.c", "company.id": 7}}),
            )
        ),
    ),
    Row(
        "enrichment-disabled",
        track(context={"traits": {"email": "a@b.c"}}),
        mapped(TRACK),
        {"enrich_from_context_traits": False},
    ),
    Row("enrichment-empty-traits", track(context={"traits": {}}), mapped(TRACK)),
    Row("enrichment-only-null-traits", track(context={"traits": {"a": None}}), mapped(TRACK)),
    Row("enrichment-traits-not-object", track(context={"traits": "x"}), mapped(TRACK)),
    Row("enrichment-context-not-object", track(context="x"), mapped(TRACK)),
    Row(
        "enrichment-not-for-filtered-tracks",
        track("Order Completed", context={"traits": {"email": "a@b.c"}}),
        Filtered("not an AI event"),
    ),
    Row(
        "enrichment-for-feedback",
        with_(feedback(), context={"traits": {"plan": "pro"}}),
        Mapped(((SIGNAL, {}), (IDENTIFY, {"user_id": "user-1", "traits": {"plan": "pro"}}))),
    ),
    Row(
        "enrichment-skipped-for-userless-feedback",
        with_(feedback(), userId=DROP, anonymousId=DROP, context={"traits": {"plan": "pro"}}),
        mapped(SIGNAL),
    ),
    Row(
        "enrichment-repairs-broken-trait-text",
        track(context={"traits": {"name": "\ud800"}}),
        Mapped(((TRACK, {}), (IDENTIFY, {"traits": {"name": "\ufffd"}}))),
    ),
    Row(
        "enrichment-not-on-invalid-track",
        track(timestamp=DROP, context={"traits": {"plan": "pro"}}),
        Invalid("no valid timestamp"),
    ),
    # -- text UTF-8 cannot hold: repaired, not dropped ---------------------------------------
    Row(
        "lone-surrogate-in-prompt",
        track(properties=props(ai_data={"input": "Hi \ud83d"})),
        mapped(TRACK, ai_data={"input": "Hi \ufffd"}),
    ),
    Row(
        "lone-surrogate-user-id",
        track(userId="\udc00"),
        mapped(TRACK, user_id="\ufffd"),
    ),
]


@pytest.mark.parametrize("row", RULES, ids=[row.id for row in RULES])
def test_rule(row: Row) -> None:
    config = MappingConfig.model_validate(row.config)
    check(map_events([row.event], config), row.expected)


def test_rule_ids_are_unique() -> None:
    assert len({row.id for row in RULES}) == len(RULES)


# -- rules that need several events ---------------------------------------------------------


def test_delete_records_the_hashed_user_id() -> None:
    result = map_events(
        [
            identify(type="delete", userId="user-secret-42"),
            identify(type="delete", userId=DROP, anonymousId="anon-7"),
        ],
        MappingConfig(),
        user_hash_key=b"deployment-key",
    )
    expected = [
        hmac.new(b"deployment-key", uid.encode(), hashlib.sha256).hexdigest()[:16]
        for uid in ("user-secret-42", "anon-7")
    ]
    assert result.deletions == expected
    assert all("user-secret-42" not in reason for reason in result.filtered.values())
    assert set(result.filtered) == {0, 1}


def test_enrichment_once_per_user_per_request() -> None:
    context = {"traits": {"plan": "pro"}}
    events = [
        track(context=context),
        track("AI Tool Called", context=context),
        track(userId="user-2", context=context),
        with_(feedback(), context=context),
    ]
    config = MappingConfig()
    result = map_events(events, config)
    identifies = [
        (item.event_index, json.loads(item.payload)["user_id"])
        for item in result.items
        if item.endpoint == IDENTIFY
    ]
    assert identifies == [(0, "user-1"), (2, "user-2")]
    # "Per request": the next request enriches again.
    again = map_events(events[:1], config)
    assert [item.endpoint for item in again.items] == [TRACK, IDENTIFY]


def test_enrichment_counts_anonymous_users_by_their_id() -> None:
    context = {"traits": {"plan": "free"}}
    events = [
        track(userId=DROP, anonymousId="anon-1", context=context),
        track(userId="anon-1", context=context),  # the same id: already enriched
        track(userId=DROP, anonymousId="anon-2", context=context),
    ]
    result = map_events(events, MappingConfig())
    assert [item.event_index for item in result.items if item.endpoint == IDENTIFY] == [0, 2]


def test_identify_events_are_not_deduplicated() -> None:
    result = map_events([identify(), identify()], MappingConfig())
    assert [item.endpoint for item in result.items] == [IDENTIFY, IDENTIFY]


def test_enrichment_is_independent_of_identify_forwarding() -> None:
    config = MappingConfig(forward_identify=False)
    result = map_events([identify(), track(context={"traits": {"plan": "pro"}})], config)
    assert result.filtered == {0: "identify forwarding is disabled"}
    assert [(item.endpoint, item.event_index) for item in result.items] == [
        (TRACK, 1),
        (IDENTIFY, 1),
    ]


def test_items_keep_event_order_and_sources_identifies_last() -> None:
    # Identify items are held to the end of the request, where enrichment merges into them.
    events = [
        track("Order Completed"),
        track(properties=props(trace_id="a")),
        identify(),
        track(timestamp=DROP),
        feedback(trace_id="a"),
        track("AI Tool Called", properties=props(trace_id="b")),
    ]
    result = map_events(events, MappingConfig())
    assert [(item.endpoint, item.event_index) for item in result.items] == [
        (TRACK, 1),
        (SIGNAL, 4),
        (TRACK, 5),
        (IDENTIFY, 2),
    ]
    assert set(result.filtered) == {0}
    assert set(result.invalid) == {3}
    assert result.mapped == {1, 2, 4, 5}


def test_one_bad_event_does_not_affect_the_others() -> None:
    events: list[Any] = [None, 3, "x", [], track(), {"type": "track", "event": {}}]
    result = map_events(events, MappingConfig())
    assert set(result.invalid) == {0, 1, 2, 3, 5}
    assert result.mapped == {4}


def test_deep_nesting_is_invalid_not_a_crash() -> None:
    text = '{"input": ' + "[" * 5_000 + "]" * 5_000 + "}"
    result = map_events([track(properties=props(ai_data=text)), track()], MappingConfig())
    assert result.invalid == {0: "event is nested too deeply"}
    assert result.mapped == {1}


def test_payload_is_compact_utf8_json_without_nulls() -> None:
    event = track(properties=props(ai_data={"input": "Grüße 🌍", "model": None}))
    payload = map_events([event], MappingConfig()).items[0].payload
    assert "Grüße 🌍".encode() in payload  # not \u-escaped: smaller requests
    assert b": " not in payload
    assert b"null" not in payload


# -- invalid and filtered reasons never quote event content ---------------------------------

SECRET = "s3cr3t-Prompt-🐙"


@pytest.mark.parametrize(
    "event",
    [
        track(properties=props(ai_data="{" + SECRET)),
        track(properties=props(ai_data=[SECRET])),
        track(properties=[SECRET]),
        track(timestamp=SECRET, userId=SECRET),
        track(userId=DROP, anonymousId=DROP, properties=props(ai_data={"input": SECRET})),
        track(messageId=DROP, properties=props(trace_id=DROP, ai_data={"input": SECRET})),
        track(properties=props(ai_data={"input": SECRET}), userId=" ", anonymousId=DROP),
        track(event=[SECRET]),
        track(type=[SECRET]),
        track(type=SECRET),
        track(SECRET),
        feedback(trace_id=DROP, comment=SECRET),
        with_(feedback(signal_name=SECRET), timestamp=SECRET),
        identify(traits=SECRET),
        identify(traits={SECRET: SECRET}, userId=DROP),
        identify(type="delete", userId=SECRET),
    ],
)
def test_reasons_never_quote_event_content(event: dict[str, Any]) -> None:
    result = map_events([event], MappingConfig())
    reasons = [*result.invalid.values(), *result.filtered.values(), *result.deletions]
    assert len(reasons) >= 1
    for reason in reasons:
        assert "s3cr3t" not in reason
        assert "🐙" not in reason


def test_reasons_of_a_realistic_bad_batch_never_quote_content() -> None:
    events = samples.conversation(prompt_chars=120)
    prompts = [
        message["content"]
        for event in events
        if event["event"] == "AI Chat Completed"
        and isinstance(event["properties"].get("ai_data"), dict)
        for message in event["properties"]["ai_data"]["input"]
    ]
    trait_values = [str(value) for value in events[0]["context"]["traits"].values()]
    broken = [
        with_(event, timestamp=DROP, originalTimestamp=DROP, sentAt=DROP, receivedAt=DROP)
        for event in events
    ]
    result = map_events(broken, MappingConfig())
    assert set(result.invalid) == set(range(len(events)))
    for reason in result.invalid.values():
        for text in [*prompts, *trait_values]:
            assert text not in reason


# -- the fixtures and samples, end to end through the mapper --------------------------------


def test_single_event_fixture(fixture_json: Callable[[str], Any]) -> None:
    result = map_events([fixture_json("actions_single_ai_chat_completed.json")], MappingConfig())
    (track_endpoint, event), (identify_endpoint, person) = payloads(result)
    assert (track_endpoint, identify_endpoint) == (TRACK, IDENTIFY)
    assert event == {
        "event_id": "tr_01HS8Z4K6Q9M2T5V7X3B1N8C4D",
        "user_id": "usr_4f1c9e2a7b30",
        "event": "ai_interaction",
        "timestamp": "2025-03-14T09:26:53.794Z",
        "properties": {
            "trace_id": "tr_01HS8Z4K6Q9M2T5V7X3B1N8C4D",
            "convo_id": "convo_7f3e9a1b2c4d",
            "model": "gpt-4o-2024-08-06",
            "latency_ms": 2143,
            "prompt_tokens": 184,
            "completion_tokens": 96,
            "total_tokens": 280,
            "temperature": 0.2,
            "finish_reason": "stop",
        },
        "ai_data": {
            "model": "gpt-4o-2024-08-06",
            "convo_id": "convo_7f3e9a1b2c4d",
            "input": json.dumps(
                [
                    {
                        "role": "system",
                        "content": "You are Atlas, the support assistant of Northwind Cloud. "
                        "Answer briefly.",
                    },
                    {
                        "role": "user",
                        "content": "Können Sie mir erklären, wie die Abrechnung pro Nutzer "
                        "funktioniert? 🙏",
                    },
                ],
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            "output": "Die Abrechnung erfolgt monatlich pro aktivem Nutzer; inaktive Konten "
            "zählen nicht. Details: Einstellungen → Abrechnung.",
        },
    }
    assert person == {
        "user_id": "usr_4f1c9e2a7b30",
        "traits": {
            "email": "bjoern.soerensen@example.com",
            "name": "Björn Sørensen",
            "plan": "business",
            "company.id": "org_9a1b2c3d",
            "company.name": "Müller & Söhne",
            "company.employees": 420,
            "roles": '["admin","billing"]',
        },
    }


def test_actions_batch_fixture(fixture_json: Callable[[str], Any]) -> None:
    result = map_events(fixture_json("actions_batch.json"), MappingConfig())
    assert result.invalid == {}
    assert result.filtered == {
        3: "track event is not an AI event",
        4: "page calls are not forwarded",
    }
    got = [(item.endpoint, item.event_index) for item in result.items]
    # Hiro's context traits (event 0) merge into his own identify (event 5): one identify.
    assert got == [(TRACK, 0), (TRACK, 1), (SIGNAL, 2), (IDENTIFY, 5)]
    chat, tool, signal, person = (json.loads(item.payload) for item in result.items)
    assert chat["ai_data"] == {
        "model": "claude-3-5-sonnet-20241022",
        "convo_id": "convo_jp_42",
        "input": '[{"role":"user","content":'
        '"データのエクスポートをCSVではなくParquetでできますか？"}]',
        "output": "はい、エクスポート設定で形式を Parquet に変更できます。",
    }
    assert tool["event"] == "AI Tool Called"
    assert tool["ai_data"]["input"] == '{"query":"parquet export","top_k":5}'
    assert signal == {
        "event_id": "tr_jp_0001",
        "signal_name": "feedback",
        "signal_type": "feedback",
        "timestamp": "2025-03-14T09:31:15.500Z",
        "properties": {
            "trace_id": "tr_jp_0001",
            "sentiment": "Positive",
            "comment": "回答很清楚，謝謝！",
            "rating": 5,
        },
        "sentiment": "POSITIVE",
    }
    assert person["traits"] == {
        "email": "hiro.kim@example.com",
        "plan": "team",  # from the track's context.traits
        "name": "Hiro Kim",
        "company.id": "org_77",
        "company.name": "Initech GmbH",
        "company.address.city": "東京",
        "roles": '["member"]',
        "seats": 12,
        "onboarded": True,
    }


def test_classic_fixture_with_ai_data_string(fixture_json: Callable[[str], Any]) -> None:
    result = map_events([fixture_json("classic_webhook_track.json")], MappingConfig())
    event = json.loads(result.items[0].payload)
    assert event["ai_data"] == {
        "model": "o3-mini",
        "input": "Summarise the incident from 2025-03-12 in three bullet points 🙏",
        "output": "• Export queue stalled at 02:13 UTC\n• Quota hit\n• Reset at midnight",
        "convo_id": "convo_classic",
    }
    assert event["timestamp"] == "2025-03-14T12:00:00.636Z"
    assert "ai_data" not in event["properties"]


def test_delete_fixture(fixture_json: Callable[[str], Any]) -> None:
    key = b"deployment-key"
    result = map_events(
        [fixture_json("classic_webhook_delete.json")], MappingConfig(), user_hash_key=key
    )
    assert result.items == []
    assert result.filtered == {0: "user deletion requests are not forwarded"}
    assert result.deletions == [hmac.new(key, b"usr_deleted_42", hashlib.sha256).hexdigest()[:16]]


def test_samples_conversation_maps_completely() -> None:
    events = samples.conversation(seed=5, turns=5)
    result = map_events(events, MappingConfig())
    assert result.invalid == {}
    assert result.filtered == {}
    endpoints = [item.endpoint for item in result.items]
    # turn 1 (with an attachment), tool call, the edit signal, turns 2-5, feedback, then the
    # enrichment (identifies come last)
    assert endpoints == [TRACK, TRACK, SIGNAL, TRACK, TRACK, TRACK, TRACK, SIGNAL, IDENTIFY]
    first, edit = (json.loads(result.items[i].payload) for i in (0, 2))
    assert edit["signal_type"] == "edit"
    assert edit["event_id"] == first["event_id"]
    assert edit["attachment_id"] == first["attachments"][0]["attachment_id"]
    chats = [json.loads(item.payload) for item in result.items if item.endpoint == TRACK]
    assert {chat["event"] for chat in chats} == {"ai_interaction", "AI Tool Called"}
    assert all(chat["ai_data"]["input"] and chat["ai_data"]["output"] for chat in chats)
    signal = json.loads(result.items[-2].payload)
    assert signal["event_id"] == chats[-1]["event_id"]


# -- normalise_timestamp ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-14T09:26:53.589Z", "2025-03-14T09:26:53.589Z"),
        ("2025-03-14T09:26:53Z", "2025-03-14T09:26:53.000Z"),
        ("2025-03-14T09:26:53.5+00:00", "2025-03-14T09:26:53.500Z"),
        ("2025-03-14T04:26:53.589-05:00", "2025-03-14T09:26:53.589Z"),
        ("2025-03-14T23:30:00+14:00", "2025-03-14T09:30:00.000Z"),
        ("2025-03-14 09:26:53", "2025-03-14T09:26:53.000Z"),
        ("2025-03-14", "2025-03-14T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T23:59:59-01:00", None),
        ("", None),
        ("14/03/2025", None),
        ("2025-02-30T00:00:00Z", None),
        (None, None),
        (1710408413, None),
        (["2025-03-14"], None),
    ],
)
def test_normalise_timestamp(value: Any, expected: str | None) -> None:
    assert normalise_timestamp(value) == expected
