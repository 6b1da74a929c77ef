"""Hostile input never loses events: one bad event costs only itself, text cut mid-emoji is
repaired and delivered, and nothing Raindrop would refuse (whitespace for an id) leaves.

Each test here failed before the fix it covers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from segment_raindrop.core import codec
from segment_raindrop.core.codec import MAX_EVENT_DEPTH, MAX_INT_DIGITS, UnparsedEvent
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.mapping.values import normalise_timestamp
from segment_raindrop.core.raindrop_api import AiData, Identify, Signal, TrackEvent
from segment_raindrop.core.segment_body import (
    BodyError,
    first_array_element_text,
    is_single_element_array,
    parse_body,
)

TS = "2025-03-14T09:26:53.589Z"
KEY = b"deployment-key"


def chat(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": "AI Chat Completed",
        "userId": "user-1",
        "messageId": "msg-1",
        "timestamp": TS,
        "properties": {"trace_id": "trace-1", "ai_data": {"input": "Hi", "output": "Hello"}},
    }
    event.update(changes)
    return event


def chat_with(**properties: Any) -> dict[str, Any]:
    event = chat()
    event["properties"] = {**event["properties"], **properties}
    return event


def deep(depth: int) -> str:
    """The text of an event whose properties nest so that the event is ``depth`` deep."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return f'{{"type":"track","event":"AI Deep","properties":{{"x":{inner[1:-1] or "1"}}}}}'


def one_payload(event: dict[str, Any]) -> dict[str, Any]:
    result = map_events([event], MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {}, result.invalid
    [item] = [item for item in result.items if item.endpoint.value != "users/identify"]
    document: dict[str, Any] = json.loads(item.payload)
    return document


# -- one bad event costs only itself -----------------------------------------------------------


def test_the_depth_helper_builds_what_it_says() -> None:
    for depth in (3, 10, MAX_EVENT_DEPTH):
        value = json.loads(deep(depth))
        assert not codec.depth_exceeds(value, depth)
        assert codec.depth_exceeds(value, depth - 1)


@pytest.mark.parametrize("depth", [MAX_EVENT_DEPTH + 1, 250, 800, 975, 1_000, 20_000])
def test_an_event_nested_too_deeply_is_invalid_alone(depth: int) -> None:
    # Beyond ~975 the whole body was a 400 before; from ~800 the event was dead-lettered
    # under a wrong reason; from ~200 it was queued and never read back.
    text = deep(depth)
    body = f"[{json.dumps(chat())}, {text}, {json.dumps(chat(messageId='msg-3'))}]"
    parsed = parse_body(body)
    assert parsed.shape == "array"
    assert parsed.events[0] == chat()
    assert parsed.events[1] == UnparsedEvent.of(text, "event is nested too deeply")
    assert parsed.events[2] == chat(messageId="msg-3")
    result = map_events(parsed.events, MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {1: "event is nested too deeply"}
    assert result.mapped == {0, 2}


def test_an_event_at_the_depth_limit_is_accepted() -> None:
    parsed = parse_body(f"[{deep(MAX_EVENT_DEPTH)}]")
    assert parsed.events == [json.loads(deep(MAX_EVENT_DEPTH))]


def test_a_number_with_too_many_digits_costs_only_its_event() -> None:
    huge = "9" * (MAX_INT_DIGITS + 1)
    text = f'{{"type":"track","event":"AI x","properties":{{"n":{huge}}}}}'
    parsed = parse_body(f"[{json.dumps(chat())},{text}]")
    assert parsed.events == [chat(), UnparsedEvent(text, codec.NUMBER_TOO_LONG)]
    result = map_events(parsed.events, MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {1: "event holds a number with too many digits"}


def test_the_limit_holds_in_a_json_string_of_ai_data_too() -> None:
    too_deep = "[" * (MAX_EVENT_DEPTH + 1) + "]" * (MAX_EVENT_DEPTH + 1)
    huge = "[" + "9" * (MAX_INT_DIGITS + 1) + "]"
    events = [chat_with(ai_data=too_deep), chat_with(ai_data=huge), chat()]
    result = map_events(events, MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {
        0: "event is nested too deeply",
        1: "event holds a number with too many digits",
    }
    assert result.mapped == {2}


def test_batch_envelope_keeps_its_context_for_the_good_events() -> None:
    body = f'{{"batch":[{json.dumps(chat())},{deep(500)}],"context":{{"ip":"10.0.0.1"}}}}'
    parsed = parse_body(body)
    assert parsed.shape == "batch"
    assert parsed.events == [
        {**chat(), "context": {"ip": "10.0.0.1"}},
        UnparsedEvent(deep(500), codec.TOO_DEEP),
    ]


def test_batch_envelope_with_a_context_too_deep_makes_each_object_invalid() -> None:
    context = "[" * 300 + "]" * 300
    body = f'{{"batch":[{json.dumps(chat())}, 7],"context":{{"x":{context}}}}}'
    parsed = parse_body(body)
    assert parsed.events == [UnparsedEvent(json.dumps(chat()), codec.TOO_DEEP), 7]


def test_a_single_event_body_too_deep_is_one_invalid_event() -> None:
    parsed = parse_body(deep(2_000))
    assert parsed.shape == "event"
    assert parsed.events == [UnparsedEvent(deep(2_000), codec.TOO_DEEP)]


def test_the_raw_text_kept_is_cut_well_under_the_sqs_limit() -> None:
    text = deep(100_000)
    [event] = parse_body(f"[{text}]").events
    assert isinstance(event, UnparsedEvent)
    assert event.text.startswith(text[: codec.UNPARSED_TEXT_LIMIT])
    assert event.text.endswith(f"…[truncated {len(text) - codec.UNPARSED_TEXT_LIMIT} characters]")
    assert len(codec.dumps(event)) < 100_000


def test_thousands_of_deep_events_are_each_read_and_kept() -> None:
    # The worst Segment can send in one batch (4,000 events), each too deep. Measured at about
    # 0.35 s for this 8 MB body; the scan between events is linear in the body's size.
    element = "[" * 1_000 + "]" * 1_000
    parsed = parse_body("[" + ",".join([element] * 4_000) + "]")
    assert parsed.events == [UnparsedEvent(element, codec.TOO_DEEP)] * 4_000


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(f"[{deep(2_000)} {{}}]", "Expecting ',' delimiter", id="missing-comma"),
        pytest.param(f"[{deep(2_000)}, {{}}", "Expecting ',' delimiter", id="unclosed-array"),
        pytest.param(f"[{deep(2_000)}] x", "Extra data", id="trailing-text"),
        pytest.param(f"[{deep(2_000)}, NaN]", "NaN is not a JSON value", id="nan-element"),
        pytest.param(f"[{deep(2_000)}, {{a}}]", "Expecting property name", id="bad-element"),
        pytest.param("[" * 3_000, "not valid JSON", id="never-closed"),
        pytest.param(f'{{"batch": {deep(2_000)}}}', "'batch' must be a JSON array", id="batch-obj"),
        pytest.param(f'{{"x": 1 {deep(2_000)}}}', "Expecting ',' delimiter", id="bad-object"),
        pytest.param(f"{{x: {deep(2_000)}}}", "Expecting property name", id="bare-key"),
        pytest.param("9" * (MAX_INT_DIGITS + 1), "not a number", id="huge-number-body"),
    ],
)
def test_a_body_that_is_not_json_is_still_refused_whole(body: str, problem: str) -> None:
    with pytest.raises(BodyError, match=problem):
        parse_body(body)


def test_a_repeated_batch_key_counts_once_as_in_any_json_object() -> None:
    # Read event by event (the first value is too deep for either parser), the last one wins.
    last_wins = parse_body(f'{{"batch": [{deep(2_000)}], "batch": null, "type": "track"}}')
    assert last_wins.shape == "event"
    assert last_wins.events == [{"batch": None, "type": "track"}]
    envelope = parse_body(f'{{"batch": {deep(2_000)}, "batch": [{deep(2_000)}]}}')
    assert envelope.shape == "batch"
    assert envelope.events == [UnparsedEvent(deep(2_000), codec.TOO_DEEP)]


@pytest.mark.parametrize(
    "element",
    [deep(2_000), '{"n":' + "9" * (MAX_INT_DIGITS + 1) + "}"],
    ids=["too-deep", "too-long-number"],
)
def test_a_signed_first_element_is_found_however_hostile(element: str) -> None:
    # Segment signs element 0 of a batch; finding it used to raise (a 500, retried for hours).
    body = f"[{element}, {{}}]"
    assert first_array_element_text(body) == element
    assert is_single_element_array(f"[{element}]")


# -- text cut mid-emoji is repaired and delivered -------------------------------------------


def test_a_prompt_cut_mid_emoji_is_delivered_with_a_replacement_character() -> None:
    [event] = parse_body(
        b'[{"type":"track","event":"AI Chat Completed","userId":"user-1","timestamp":"'
        + TS.encode()
        + b'","properties":{"trace_id":"t","ai_data":{"input":"Pricing \\ud83d",'
        b'"output":[{"role":"assistant","content":"\\udc00 fine \\ud83d\\ude00"}]}}}]'
    ).events
    result = map_events([event], MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {}
    payload = json.loads(result.items[0].payload)
    assert payload["ai_data"]["input"] == "Pricing \ufffd"
    assert json.loads(payload["ai_data"]["output"]) == [
        {"role": "assistant", "content": "\ufffd fine 😀"}
    ]
    assert result.repaired_texts == 2
    # The event itself is not changed: queues keep what Segment sent.
    assert event["properties"]["ai_data"]["input"] == "Pricing \ud83d"


def test_a_surrogate_pair_kept_apart_becomes_its_character() -> None:
    payload = one_payload(chat_with(ai_data={"input": "\ud83d\ude00 and \ud83d"}))
    assert payload["ai_data"]["input"] == "😀 and \ufffd"


def test_repairs_are_counted_per_request_and_only_when_needed() -> None:
    events = [
        chat_with(ai_data={"input": "a\ud800", "output": "b\udfff"}),
        chat(),
        chat(userId="x\ud83d", context={"traits": {"name\ud800": "n"}}),
    ]
    result = map_events(events, MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {}
    assert result.repaired_texts == 4
    assert map_events([chat()], MappingConfig(), user_hash_key=KEY).repaired_texts == 0


# -- whitespace is not a value ------------------------------------------------------------------

BLANKS = [" ", "\t\n", "\u3000", "\u00a0", "\ufeff", "\u2028 "]


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_user_id_falls_back_to_the_anonymous_id(blank: str) -> None:
    assert one_payload(chat(userId=blank, anonymousId="anon-1"))["user_id"] == "anon-1"


@pytest.mark.parametrize("blank", BLANKS)
def test_an_event_whose_ids_are_all_blank_is_invalid(blank: str) -> None:
    result = map_events([chat(userId=blank, anonymousId=blank)], MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {0: "event has no userId or anonymousId"}


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_trace_id_falls_back_to_the_message_id(blank: str) -> None:
    assert one_payload(chat_with(trace_id=blank))["event_id"] == "msg-1"
    event = chat_with(trace_id=blank)
    event["messageId"] = blank
    result = map_events([event], MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {0: "event has no properties.trace_id or messageId"}


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_ai_content_counts_as_none(blank: str) -> None:
    assert one_payload(chat_with(ai_data={"input": "Hi", "output": blank}))["ai_data"] == {
        "input": "Hi"
    }
    assert "ai_data" not in one_payload(chat_with(ai_data={"input": blank, "output": blank}))


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_feedback_fields_count_as_missing(blank: str) -> None:
    event = chat(event="AI Feedback Submitted")
    event["properties"] = {"trace_id": "trace-1", "comment": blank, "signal_name": blank}
    payload = one_payload(event)
    assert payload["signal_type"] == "default"
    assert payload["signal_name"] == "feedback"
    event["properties"]["trace_id"] = blank
    result = map_events([event], MappingConfig(), user_hash_key=KEY)
    assert result.invalid == {0: "feedback has no properties.trace_id to link it to"}


@pytest.mark.parametrize("blank", BLANKS)
def test_raindrop_models_refuse_blank_ids_and_content(blank: str) -> None:
    track = {"event_id": "e", "user_id": "u", "event": "AI x", "timestamp": TS}
    for field in ("event_id", "user_id", "event"):
        with pytest.raises(ValueError, match="empty or only whitespace"):
            TrackEvent.model_validate({**track, field: blank})
    with pytest.raises(ValueError, match="empty or only whitespace"):
        Identify.model_validate({"user_id": blank})
    with pytest.raises(ValueError, match="empty or only whitespace"):
        Signal.model_validate({"event_id": blank, "signal_name": "s", "timestamp": TS})
    with pytest.raises(ValueError, match="only whitespace"):
        AiData.model_validate({"input": "Hi", "output": blank})
    with pytest.raises(ValueError, match="needs a non-empty"):
        AiData.model_validate({"input": ""})
    with pytest.raises(ValueError, match="comment"):
        Signal.model_validate(
            {
                "event_id": "e",
                "signal_name": "s",
                "signal_type": "feedback",
                "timestamp": TS,
                "properties": {"comment": blank},
            }
        )


# -- timestamps that fall back are counted -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-14T09:26:53z", "2025-03-14T09:26:53.000Z"),
        ("2025-03-14t09:26:53.5z", "2025-03-14T09:26:53.500Z"),
        ("2025-03-14T24:00:00Z", "2025-03-15T00:00:00.000Z"),
        ("2025-03-14T24:00Z", "2025-03-15T00:00:00.000Z"),
        ("2025-03-14T24:00:00.000+02:00", "2025-03-14T22:00:00.000Z"),
        ("2025-03-14 24:00", "2025-03-15T00:00:00.000Z"),
        ("2025-03-14T24:00:01Z", None),
        ("2025-03-14T24:30:00Z", None),
        ("9999-12-31T24:00:00Z", None),
        ("1710408413", None),
    ],
)
def test_rfc_3339_lower_case_and_end_of_day_timestamps(value: str, expected: str | None) -> None:
    assert normalise_timestamp(value) == expected


@pytest.mark.parametrize("unusable", ["1710408413", "1710408413000", "yesterday", "", 1710408413])
def test_a_timestamp_taken_from_another_field_is_counted(unusable: Any) -> None:
    event = chat(timestamp=unusable, originalTimestamp="2025-03-14T09:00:00Z")
    result = map_events([event, chat()], MappingConfig(), user_hash_key=KEY)
    assert json.loads(result.items[0].payload)["timestamp"] == "2025-03-14T09:00:00.000Z"
    assert result.timestamp_fallbacks == {"timestamp": 1}


def test_every_field_passed_over_is_counted_and_absent_ones_are_not() -> None:
    events = [
        chat(timestamp="x", originalTimestamp="y", receivedAt=TS),
        chat(timestamp=None, originalTimestamp=TS),
        {k: v for k, v in chat(originalTimestamp=TS).items() if k != "timestamp"},
        chat(timestamp="x"),  # no other field: invalid, not a fallback
    ]
    result = map_events(events, MappingConfig(), user_hash_key=KEY)
    assert result.timestamp_fallbacks == {"timestamp": 1, "originalTimestamp": 1}
    assert result.invalid == {3: "event has no valid timestamp"}


def test_signals_count_their_fallbacks_too() -> None:
    event = chat(event="AI Feedback Submitted", timestamp="soon", sentAt=TS)
    event["properties"] = {"trace_id": "trace-1", "comment": "wrong"}
    result = map_events([event], MappingConfig(), user_hash_key=KEY)
    assert result.timestamp_fallbacks == {"timestamp": 1}


# -- the deletion log's user hash is keyed ------------------------------------------------------


def delete(user: Any) -> dict[str, Any]:
    return {"type": "delete", "userId": user, "messageId": "m", "timestamp": TS}


def test_the_deletion_hash_is_an_hmac_of_the_user_id() -> None:
    result = map_events([delete("42"), delete(42)], MappingConfig(), user_hash_key=KEY)
    expected = hmac.new(KEY, b"42", hashlib.sha256).hexdigest()[:16]
    assert result.deletions == [expected, expected]
    # The unkeyed hash of a small numeric id is found again by trying every number.
    assert expected != hashlib.sha256(b"42").hexdigest()[:16]


def test_the_deletion_hash_depends_on_the_key() -> None:
    first = map_events([delete("user-7")], MappingConfig(), user_hash_key=b"one").deletions
    second = map_events([delete("user-7")], MappingConfig(), user_hash_key=b"two").deletions
    assert first != second
    assert len(first[0]) == 16


def test_the_deletion_hash_of_a_blank_user_id_uses_the_anonymous_id() -> None:
    event = {**delete(" "), "anonymousId": "anon-9"}
    [digest] = map_events([event], MappingConfig(), user_hash_key=KEY).deletions
    assert digest == hmac.new(KEY, b"anon-9", hashlib.sha256).hexdigest()[:16]
