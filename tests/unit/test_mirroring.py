"""Raindrop items -> Segment events (pure code): the inverse mapping, ids, Segment's size limit,
partial merging, and the loop filter on the way back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from segment_raindrop.adapters.partials import merge_patch
from segment_raindrop.core import codec
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import LOOP_FILTER_REASON, SEGMENT_MAX_EVENT_BYTES
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop.core.segment_copy import (
    TRUNCATION_MARKER,
    NotMirrorable,
    encode,
    feedback_event_name,
    fit_state,
    message_id,
    to_segment,
)

MAPPING = MappingConfig()

TRACK: dict[str, Any] = {
    "event_id": "ev-1",
    "user_id": "user-1",
    "event": "ai_interaction",
    "timestamp": "2026-11-29T10:00:00Z",
    "properties": {"latency_ms": 12},
    "ai_data": {"model": "m", "input": "q", "output": "a", "convo_id": None},
    "attachments": [{"type": "text", "value": "doc", "role": "context"}],
}


def test_a_track_maps_back_to_the_guides_schema() -> None:
    event = to_segment(Endpoint.TRACK, TRACK, MAPPING)
    assert event["type"] == "track"
    assert event["event"] == "AI Chat Completed"
    assert event["userId"] == "user-1"
    assert event["timestamp"] == "2026-11-29T10:00:00Z"
    assert event["properties"] == {
        "latency_ms": 12,
        "trace_id": "ev-1",
        "ai_data": {"model": "m", "input": "q", "output": "a"},
        "attachments": TRACK["attachments"],
    }
    assert event["context"] == {"library": {"name": "segment-raindrop"}}


def test_other_track_names_are_kept_and_renames_are_inverted() -> None:
    assert to_segment(Endpoint.TRACK, {**TRACK, "event": "AI Tool Used"}, MAPPING)["event"] == (
        "AI Tool Used"
    )
    custom = MappingConfig(event_renames={"AI Answer": "answer"})
    assert to_segment(Endpoint.TRACK, {**TRACK, "event": "answer"}, custom)["event"] == "AI Answer"


def test_a_signal_becomes_the_feedback_event() -> None:
    signal = {
        "event_id": "ev-1",
        "signal_name": "thumbs_down",
        "signal_type": "feedback",
        "timestamp": "2026-11-29T10:00:00Z",
        "properties": {"comment": "wrong"},
        "sentiment": "NEGATIVE",
        "attachment_id": None,
    }
    event = to_segment(Endpoint.SIGNAL, signal, MAPPING)
    assert event["event"] == "AI Feedback Submitted"
    # A signal names no user: the AI event's id stands in, so Segment takes it.
    assert event["anonymousId"] == "ev-1"
    assert event["properties"] == {
        "comment": "wrong",
        "trace_id": "ev-1",
        "signal_name": "thumbs_down",
        "signal_type": "feedback",
        "sentiment": "NEGATIVE",
    }


def test_feedback_name_is_the_guides_unless_configured_otherwise() -> None:
    assert feedback_event_name(MAPPING) == "AI Feedback Submitted"
    other = MappingConfig(feedback_event_names=frozenset({"Z Feedback", "B Feedback"}))
    assert feedback_event_name(other) == "B Feedback"


def test_an_identify_keeps_its_traits() -> None:
    event = to_segment(Endpoint.IDENTIFY, {"user_id": "u", "traits": {"plan": "pro"}}, MAPPING)
    assert (event["type"], event["userId"], event["traits"]) == ("identify", "u", {"plan": "pro"})


@pytest.mark.parametrize(
    ("endpoint", "item"),
    [
        (Endpoint.TRACK, "not an object"),
        (Endpoint.TRACK, {"event_id": "e", "user_id": "u"}),
        (Endpoint.SIGNAL, {"signal_name": "s"}),
        (Endpoint.IDENTIFY, {"traits": {}}),
        (Endpoint.TRACES, {"resourceSpans": []}),
    ],
)
def test_items_segment_could_not_take_are_not_mirrored(endpoint: Endpoint, item: Any) -> None:
    with pytest.raises(NotMirrorable):
        to_segment(endpoint, item, MAPPING)


def test_message_ids_are_stable_and_distinct() -> None:
    assert message_id(Endpoint.TRACK, TRACK) == message_id(Endpoint.TRACK, dict(TRACK))
    # A finished partial interaction is the same event as a track with its id.
    assert message_id(Endpoint.TRACK_PARTIAL, {"event_id": "ev-1"}) == message_id(
        Endpoint.TRACK, TRACK
    )
    assert message_id(Endpoint.TRACK, {**TRACK, "event_id": "ev-2"}) != message_id(
        Endpoint.TRACK, TRACK
    )
    signal = {"event_id": "ev-1", "signal_name": "a", "timestamp": "t"}
    assert message_id(Endpoint.SIGNAL, signal) != message_id(
        Endpoint.SIGNAL, {**signal, "signal_name": "b"}
    )
    assert message_id(Endpoint.SIGNAL, signal) != message_id(Endpoint.TRACK, TRACK)
    # Two feedback signals of the same name and no time that say different things are two
    # events for Segment; the same signal sent again is one.
    thumbs = {"event_id": "ev-1", "signal_name": "thumbs", "sentiment": "NEGATIVE"}
    assert message_id(Endpoint.SIGNAL, thumbs) != message_id(
        Endpoint.SIGNAL, {**thumbs, "properties": {"comment": "wrong answer"}}
    )
    assert message_id(Endpoint.SIGNAL, thumbs) == message_id(Endpoint.SIGNAL, dict(thumbs))
    assert message_id(Endpoint.IDENTIFY, {"user_id": "u", "traits": {"a": 1}}) != message_id(
        Endpoint.IDENTIFY, {"user_id": "u", "traits": {"a": 2}}
    )


def test_small_events_are_sent_as_they_are() -> None:
    event = to_segment(Endpoint.TRACK, TRACK, MAPPING)
    encoded = encode(event)
    assert not encoded.truncated
    assert json.loads(encoded.payload) == event


def test_an_event_over_32kb_has_its_longest_texts_cut_with_a_marker() -> None:
    item = {**TRACK, "ai_data": {"input": "é" * 40_000, "output": "b" * 20_000}}
    event = to_segment(Endpoint.TRACK, item, MAPPING)
    encoded = encode(event)
    assert encoded.truncated
    assert len(encoded.payload) <= SEGMENT_MAX_EVENT_BYTES
    sent = json.loads(encoded.payload)
    ai_data = sent["properties"]["ai_data"]
    assert ai_data["input"].endswith(TRUNCATION_MARKER)
    assert ai_data["input"].startswith("é" * 100)
    # Ids are never cut.
    assert sent["messageId"] == event["messageId"]
    assert sent["properties"]["trace_id"] == "ev-1"


def test_an_event_large_for_its_numbers_is_cut_down_to_its_ids() -> None:
    # No text long enough to cut: the last resort keeps what links it and says it was cut.
    item = {**TRACK, "properties": {f"n{i}": 123456789.123 for i in range(3_000)}}
    event = to_segment(Endpoint.TRACK, item, MAPPING)
    encoded = encode(event)
    assert encoded.truncated
    assert len(encoded.payload) <= SEGMENT_MAX_EVENT_BYTES
    sent = json.loads(encoded.payload)
    assert sent["properties"] == {"trace_id": "ev-1", "truncated": TRUNCATION_MARKER}
    assert (sent["userId"], sent["event"]) == ("user-1", "AI Chat Completed")


def test_numbers_json_cannot_write_become_null() -> None:
    # 1e400 parses as infinity; "Infinity" is not JSON and would sink Segment's whole batch.
    item = {**TRACK, "properties": {"big": float("inf"), "small": -float("inf"), "ok": 1.5}}
    encoded = encode(to_segment(Endpoint.TRACK, item, MAPPING))
    assert b"Infinity" not in encoded.payload
    sent = json.loads(encoded.payload)  # strict JSON
    assert (sent["properties"]["big"], sent["properties"]["small"]) == (None, None)
    assert sent["properties"]["ok"] == 1.5


def test_partial_patches_merge_like_raindrop() -> None:
    first = {"event_id": "i", "user_id": "u", "ai_data": {"input": "q"}, "properties": {"a": 1}}
    second = {
        "event_id": "i",
        "ai_data": {"output": "a"},
        "properties": {"b": 2},
        "attachments": [{"type": "text", "value": "x"}],
        "user_id": None,
    }
    third = {"event_id": "i", "attachments": [{"type": "text", "value": "y"}]}
    merged = merge_patch(merge_patch(merge_patch({}, first), second), third)
    assert merged == {
        "event_id": "i",
        "user_id": "u",
        "ai_data": {"input": "q", "output": "a"},
        "properties": {"a": 1, "b": 2},
        "attachments": [{"type": "text", "value": "x"}, {"type": "text", "value": "y"}],
    }


def test_a_follow_up_revision_is_a_new_segment_event_and_its_resend_is_not() -> None:
    first = to_segment(Endpoint.TRACK_PARTIAL, TRACK, MAPPING)
    second = to_segment(Endpoint.TRACK_PARTIAL, TRACK, MAPPING, revision=2)
    again = to_segment(Endpoint.TRACK_PARTIAL, {**TRACK, "properties": {}}, MAPPING, revision=2)
    assert "mirror_revision" not in first["properties"]
    assert second["properties"]["mirror_revision"] == 2
    assert len({first["messageId"], second["messageId"]}) == 2
    assert again["messageId"] == second["messageId"]


def test_a_partial_state_is_cut_to_fit_the_table_longest_texts_first() -> None:
    state = {
        "event_id": "i",
        "user_id": "u",
        "event": "ai_interaction",
        "ai_data": {"input": "长" * 140_000, "output": "short"},  # 420 KB of UTF-8
        "properties": {"step": 1},
    }
    assert fit_state(state, max_bytes=128 * 1024)
    assert len(json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()) <= 128 * 1024
    assert state["ai_data"]["input"].endswith(TRUNCATION_MARKER)
    assert (state["ai_data"]["output"], state["properties"]) == ("short", {"step": 1})
    assert state["event"] == "ai_interaction"
    small = {"event_id": "i", "properties": {"a": "b"}}
    assert not fit_state(small, max_bytes=1024)
    assert small == {"event_id": "i", "properties": {"a": "b"}}
    # Too many numbers to cut any text: down to its ids.
    numbers = {"event_id": "i", "event": "e", "properties": {str(n): n for n in range(50_000)}}
    assert fit_state(numbers, max_bytes=1024)
    assert numbers == {"event_id": "i", "event": "e",
                       "properties": {"truncated": TRUNCATION_MARKER}}  # fmt: skip


def test_a_partial_state_is_measured_as_stored_lone_surrogates_as_escapes() -> None:
    # Each lone surrogate is stored as a 6-byte escape (\\udc00): 120,000 of them are 720 KB in
    # the table, over DynamoDB's 400 KB item, though they are 120 KB as Segment gets them.
    state = {"event_id": "i", "event": "e", "ai_data": {"input": "\udc00" * 120_000}}
    assert fit_state(state, max_bytes=128 * 1024)
    assert codec.utf8_size(codec.dumps(state)) <= 128 * 1024
    assert state["ai_data"]["input"].endswith(TRUNCATION_MARKER)


LONG_IDS = {
    "event_id": "evt-" + "e" * 86,
    "user_id": "user-" + "u" * 85,
    "timestamp": "2026-11-29T10:00:00.000000000000000000000000000000000000000000000000000000Z",
    "attachment_id": "att-" + "a" * 86,
}


def test_cutting_a_partial_state_never_cuts_its_ids() -> None:
    convo = "convo-" + "c" * 84
    state = {**LONG_IDS, "event": "ai_interaction", "ai_data": {"convo_id": convo},
             "properties": {f"k{i}": "v" * 80 for i in range(2_000)}}  # fmt: skip
    assert fit_state(state, max_bytes=128 * 1024)
    assert {key: state[key] for key in ("event_id", "user_id", "timestamp")} == {
        key: LONG_IDS[key] for key in ("event_id", "user_id", "timestamp")
    }
    # Cut in place, texts first: those cut end with the marker, the ids are whole.
    state = {**LONG_IDS, "event": "ai_interaction", "ai_data": {"convo_id": convo},
             "properties": {f"k{i}": "v" * 80 for i in range(40)}}  # fmt: skip
    assert fit_state(state, max_bytes=3_000)
    assert state["ai_data"]["convo_id"] == convo
    assert state["attachment_id"] == LONG_IDS["attachment_id"]
    assert any(value.endswith(TRUNCATION_MARKER) for value in state["properties"].values())


def test_cutting_an_event_to_32kb_never_cuts_its_ids() -> None:
    # Just over 32 KB of 100-character texts, and ids longer than any of them.
    convo = "convo-" + "c" * 114
    item = {**LONG_IDS, "event_id": "evt-" + "e" * 116, "event": "ai_interaction",
            "ai_data": {"input": "q", "convo_id": convo},
            "properties": {f"k{i}": "v" * 100 for i in range(310)}}  # fmt: skip
    event = to_segment(Endpoint.TRACK, item, MAPPING)
    assert encode(event).truncated
    properties = event["properties"]
    assert (properties["trace_id"], properties["ai_data"]["convo_id"]) == (item["event_id"], convo)
    assert (event["userId"], event["timestamp"]) == (LONG_IDS["user_id"], LONG_IDS["timestamp"])
    assert any(value.endswith(TRUNCATION_MARKER) for value in properties.values())
    signal = {"event_id": "evt-" + "e" * 116, "signal_name": "thumbs",
              "attachment_id": "att-" + "a" * 116,
              "properties": {f"k{i}": "v" * 100 for i in range(310)}}  # fmt: skip
    event = to_segment(Endpoint.SIGNAL, signal, MAPPING)
    assert encode(event).truncated
    properties = event["properties"]
    assert (properties["trace_id"], properties["attachment_id"]) == (
        signal["event_id"],
        signal["attachment_id"],
    )
    assert event["anonymousId"] == signal["event_id"]


def test_the_webhook_filters_what_the_mirror_sent() -> None:
    mirrored = to_segment(Endpoint.TRACK, TRACK, MAPPING)
    from_segment = {**mirrored, "context": {"library": {"name": "analytics-python"}}}
    result = map_events([mirrored, from_segment], MAPPING)
    assert result.filtered == {0: LOOP_FILTER_REASON}
    assert 1 in result.mapped
