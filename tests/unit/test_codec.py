"""The JSON codec: whatever the webhook accepts reads back from a queue message unchanged.

The property test goes the whole way an event goes when it fails: the webhook's parser, a
QueueWriter message body, parse_message, and the mapper, which must map it exactly as it
mapped the original. SQS itself is the one stand-in here (a recorder of the bodies sent);
tests/integration/test_hostile_roundtrip.py does the same through moto's SQS.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.queues import message_header

from segment_raindrop.adapters.queue_writer import QueueTarget, QueueWriter
from segment_raindrop.core import codec
from segment_raindrop.core.codec import MAX_EVENT_DEPTH, MAX_INT_DIGITS, UnparsedEvent
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.items import MapResult
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.core.queue_message import QueueMessage, parse_message
from segment_raindrop.core.segment_body import parse_body

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

TS = "2025-03-14T09:26:53.589Z"
HASH_KEY = b"test-deployment-key"


def nested(depth: int, leaf: Any = 1) -> Any:
    """``leaf`` inside ``depth`` levels of alternating arrays and objects."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


# -- loads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '["Pricing \\ud83d"]',  # a string cut mid-emoji by a JavaScript app
        '["\\udc00\\ud83d"]',  # a low surrogate first: pydantic refuses it
        "[" * 250 + "]" * 250,  # deeper than pydantic's parser goes
        "[1" + "0" * 5_000 + ".5]",  # a float pydantic calls out of range
    ],
)
def test_loads_falls_back_to_the_stdlib_for_what_pydantic_refuses(text: str) -> None:
    assert codec.loads(text) == json.loads(text)
    assert codec.loads(text.encode()) == json.loads(text)


def test_loads_keeps_a_surrogate_pair_sent_as_two_escapes_as_one_character() -> None:
    assert codec.loads('["\\ud83d\\ude00"]') == ["😀"]


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"", codec.JsonError, "empty"),
        (b"{", codec.JsonError, "not valid JSON (Expecting"),
        (b"[NaN]", codec.JsonError, "NaN is not a JSON value"),
        (b'"\xff"', codec.JsonError, "not valid UTF-8"),
        (b"[" * 5_000 + b"]" * 5_000, codec.NestedTooDeeply, "nested too deeply"),
        (b"[" + b"9" * (MAX_INT_DIGITS + 1) + b"]", codec.NumberTooLong, "too many digits"),
    ],
)
def test_loads_says_what_is_wrong(raw: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        codec.loads(raw)


def test_integers_up_to_the_limit_are_read_by_either_parser() -> None:
    digits = "9" * MAX_INT_DIGITS
    assert codec.loads(f"[-{digits}]") == [-int(digits)]
    # The stdlib's path (a lone surrogate sends the body there) reads the same integers.
    assert codec.loads(f'["\\ud800", {digits}]') == ["\ud800", int(digits)]


def test_a_too_long_integer_behind_a_lone_surrogate_is_still_caught() -> None:
    with pytest.raises(codec.NumberTooLong):
        codec.loads(f'["\\ud800", {"9" * (MAX_INT_DIGITS + 1)}]')


# -- dumps ---------------------------------------------------------------------------------


def test_dumps_is_compact_utf8_escaping_only_what_sqs_refuses() -> None:
    value = {"t": "Pricing \ud83d", "e": "😀 日本", "n": "\x00\uffff\ufffe\u200f\ud800x"}
    text = codec.dumps(value)
    assert text == (
        '{"t":"Pricing \\ud83d","e":"😀 日本","n":"\\u0000\\uffff\\ufffe\u200f\\ud800x"}'
    )
    # Every character SQS takes is itself; what is left encodes as UTF-8.
    body = text.encode("utf-8")
    assert codec.utf8_size(text) == len(body) == len(text) + 3 + 2 * 2 + 2
    assert codec.loads(text) == value
    assert codec.loads(body) == value


def test_a_text_in_another_script_costs_its_utf8_bytes_not_escapes() -> None:
    # CJK is 3 bytes a character in UTF-8 (6 as \uXXXX), an emoji 4 (12 as a surrogate pair).
    text = codec.dumps({"p": "漢" * 1000 + "😀" * 100})
    assert codec.utf8_size(text) == len('{"p":""}') + 3 * 1000 + 4 * 100


def test_dumps_writes_infinity_as_a_number_json_reads_back() -> None:
    # 1e400 is valid JSON that parses as infinity; "Infinity" would not be JSON at all.
    value = codec.loads('{"big": 1e400, "small": -1e400, "s": "Infinity -Infinity NaN"}')
    text = codec.dumps(value)
    assert text == '{"big":1e999,"small":-1e999,"s":"Infinity -Infinity NaN"}'
    assert codec.loads(text) == {"big": math.inf, "small": -math.inf, "s": value["s"]}


def test_dumps_writes_an_unparsed_event_as_its_raw_text() -> None:
    unparsed = UnparsedEvent.of('{"a": [[[1]]]}', codec.TOO_DEEP)
    assert codec.dumps(unparsed) == '"{\\"a\\": [[[1]]]}"'
    assert codec.dumps([unparsed]) == '["{\\"a\\": [[[1]]]}"]'


def test_unparsed_text_is_cut_with_a_visible_marker() -> None:
    unparsed = UnparsedEvent.of("[" * (codec.UNPARSED_TEXT_LIMIT + 123), codec.TOO_DEEP)
    assert unparsed.text == "[" * codec.UNPARSED_TEXT_LIMIT + "…[truncated 123 characters]"
    assert UnparsedEvent.of("[[1]]", codec.TOO_DEEP).text == "[[1]]"


# -- nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("x", 0),
        ([], 1),
        ({}, 1),
        ([[], {"a": [1]}], 3),
        (nested(MAX_EVENT_DEPTH), MAX_EVENT_DEPTH),
    ],
)
def test_depth_exceeds(value: Any, depth: int) -> None:
    assert not codec.depth_exceeds(value, depth)
    assert codec.depth_exceeds(value, depth - 1) == (depth > 0)


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("[[1],[2]] tail", 9),
        ('{"a":"]}"}]', 10),
        ('[["\\"]"]]]', 9),
        ("[" * 3_000 + "]" * 3_000 + "]", 6_000),
    ],
)
def test_container_end(text: str, end: int) -> None:
    assert codec.container_end(text, 0) == end


@pytest.mark.parametrize("text", ["[[1]", '["]', '["\\"]'])
def test_container_end_of_an_unclosed_value(text: str) -> None:
    with pytest.raises(codec.JsonError):
        codec.container_end(text, 0)


# -- repair --------------------------------------------------------------------------------


def test_repair_text() -> None:
    value = {
        "cut": "Pricing \ud83d",
        "pair": "\ud83d\ude00!",
        "fine": "日本語 🌍",
        "keys\udc00": ["\udc00\ud83d", 3, None],
    }
    repaired, count = codec.repair_text(value)
    assert repaired == {
        "cut": "Pricing \ufffd",
        "pair": "😀!",
        "fine": "日本語 🌍",
        "keys\ufffd": ["\ufffd\ufffd", 3, None],
    }
    assert count == 4
    assert codec.repair_text(["ok", {"a": "b"}]) == (["ok", {"a": "b"}], 0)


# -- parse_message -------------------------------------------------------------------------


# The characters SQS refuses in a message body (its allowed set's complement).
SQS_REFUSES = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class RecordingSqs:
    """Stands in for SQS's SendMessageBatch: records each body, accepts every entry."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.bodies.extend(entry["MessageBody"] for entry in Entries)
        return {
            "Successful": [
                {"Id": entry["Id"], "MessageId": f"m{len(self.bodies)}-{entry['Id']}"}
                for entry in Entries
            ],
            "Failed": [],
        }


@pytest.fixture(scope="module")
def recorder() -> tuple[RecordingSqs, QueueWriter]:
    sqs = RecordingSqs()
    writer = QueueWriter(
        cast("SQSClient", sqs), retry_queue_url="retry", dlq_url="dlq", source="test"
    )
    return sqs, writer


def through_a_queue(writer: QueueWriter, sqs: RecordingSqs, events: list[Any]) -> list[Any]:
    """``events`` written to queue messages by ``writer`` and read back by parse_message."""
    sqs.bodies.clear()
    header = message_header(FailureReason.INVALID, error="why")
    result = writer.send(QueueTarget.DEAD_LETTER, [(header, list(enumerate(events)))])
    assert result.queued == set(range(len(events)))
    # What SQS takes: UTF-8 text without the code points it refuses.
    for body in sqs.bodies:
        body.encode("utf-8")
        assert not SQS_REFUSES.search(body)
    messages = [parse_message(body) for body in sqs.bodies]
    assert all(message.omitted == [] for message in messages)
    return [event for message in messages for event in message.events]


def test_parse_message_reads_a_message_with_a_lone_surrogate(
    recorder: tuple[RecordingSqs, QueueWriter],
) -> None:
    events = parse_body(b'[{"type":"track","properties":{"prompt":"Pricing \\ud83d"}}]').events
    assert through_a_queue(recorder[1], recorder[0], events) == events


def test_an_event_too_deep_for_the_queue_travels_as_its_raw_text(
    recorder: tuple[RecordingSqs, QueueWriter],
) -> None:
    # Deeper than pydantic's parser reads, but within the stdlib's: accepted whole on main,
    # then unreadable from the queue.
    deep = json.dumps({"type": "track", "properties": nested(250)})
    events = parse_body(f'[{deep}, {{"type": "page"}}]').events
    assert events[0] == UnparsedEvent(deep, codec.TOO_DEEP)
    back = through_a_queue(recorder[1], recorder[0], events)
    assert back == [deep, {"type": "page"}]
    # On replay it stays invalid (the message's error field keeps the first reason).
    assert map_events(back, MappingConfig()).invalid == {0: "event is not a JSON object"}


@pytest.mark.parametrize("body", ["", "[]", "{}", '{"format": 2}', "not json", '"\\ud800"'])
def test_parse_message_refuses_what_is_not_ours_with_value_error(body: str) -> None:
    # Any ValueError: that is what the retry worker and replay catch.
    with pytest.raises(ValueError):
        parse_message(body)


def test_parse_message_reads_what_main_wrote() -> None:
    # Messages already on the queues were written by json.dumps with the same settings.
    message = {
        "format": 1,
        "reason": "transient",
        "status": 503,
        "attempts": 3,
        "first_failure_at": TS,
        "last_failure_at": TS,
        "events": [{"type": "track", "event": "AI x", "n": 1.5, "t": "\ud83d"}],
        "omitted": [],
    }
    parsed = parse_message(json.dumps(message, separators=(",", ":")))
    assert parsed == QueueMessage.model_validate(message)


# -- the property: accepted → queued → read back → mapped the same ----------------------------

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ODD = st.sampled_from(
    ["\x00", "\x1f", "\x7f", "\u2028", "\u200f", "\u202e", "\ufeff", "\ufffe", "\uffff", "😀"]
)
TEXT = st.one_of(
    st.text(max_size=10),
    st.lists(st.one_of(st.characters(), SURROGATES, ODD), max_size=8).map("".join),
    st.sampled_from(["", " ", "\u3000", "Pricing \ud83d", "\ud83d\ude00", "AI "]),
)
HUGE_INTS = st.builds(
    lambda digits, negative: int(("-" if negative else "") + "7" * digits),
    st.one_of(st.integers(1, MAX_INT_DIGITS), st.just(MAX_INT_DIGITS)),
    st.booleans(),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(allow_nan=False),  # infinities too: 1e400 parses as one
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
# An event as deep as accepted: the event (1), properties (2), then the chain.
DEEP = st.builds(
    lambda depth, leaf: {"type": "track", "event": "AI Deep", "properties": nested(depth, leaf)},
    st.one_of(st.integers(1, MAX_EVENT_DEPTH - 1), st.just(MAX_EVENT_DEPTH - 1)),
    SCALARS,
)
AI_EVENTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "track", "identify", "delete"]),
        "event": st.sampled_from(["AI Chat Completed", "AI Feedback Submitted", "Other"]),
        "userId": st.one_of(st.just("user-1"), TEXT, HUGE_INTS),
        "messageId": st.one_of(st.just("m-1"), TEXT),
        "timestamp": st.one_of(st.just(TS), TEXT),
        "properties": st.fixed_dictionaries(
            {
                "trace_id": st.one_of(st.just("tr-1"), TEXT),
                "ai_data": st.one_of(
                    st.fixed_dictionaries({"input": TEXT, "output": st.one_of(TEXT, VALUES)}),
                    st.fixed_dictionaries({"input": TEXT}).map(json.dumps),
                ),
            },
            optional={"comment": TEXT, "extra": VALUES},
        ),
    },
    optional={
        "traits": st.dictionaries(TEXT, VALUES, max_size=3),
        "originalTimestamp": st.one_of(st.just(TS), TEXT),
        "context": st.fixed_dictionaries({"traits": st.dictionaries(TEXT, VALUES, max_size=3)}),
    },
)
EVENTS = st.lists(st.one_of(AI_EVENTS, AI_EVENTS, DEEP, VALUES), max_size=6)


def as_request_body(document: Any, *, ascii_only: bool) -> bytes:
    """How a JavaScript sender writes it: JSON.stringify escapes lone surrogates and writes
    everything else as UTF-8 (or everything escaped, which is also JSON)."""
    if not ascii_only:
        try:
            return json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ValueError:  # a lone surrogate or an infinity: the escaped form then
            pass
    # codec.dumps writes infinities as numbers JSON reads; everything outside ASCII escaped.
    return NON_ASCII.sub(_escaped, codec.dumps(document)).encode("ascii")


NON_ASCII = re.compile("[^\x00-\x7f]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def same_mapping(first: MapResult, second: MapResult) -> None:
    assert [(i.endpoint, i.payload, i.event_index) for i in first.items] == [
        (i.endpoint, i.payload, i.event_index) for i in second.items
    ]
    assert first.invalid == second.invalid
    assert first.filtered == second.filtered
    assert first.deletions == second.deletions
    assert first.repaired_texts == second.repaired_texts
    assert first.timestamp_fallbacks == second.timestamp_fallbacks


# About 3 s here; SEGMENT_RAINDROP_HYPOTHESIS_PROFILE=thorough (as in test_properties.py) runs
# 5,000, about 45 s.
THOROUGH = os.environ.get("SEGMENT_RAINDROP_HYPOTHESIS_PROFILE") == "thorough"
PROPERTY_EXAMPLES = 5_000 if THOROUGH else 400


@settings(
    max_examples=PROPERTY_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(events=EVENTS, batch=st.booleans(), ascii_only=st.booleans())
def test_accepted_events_read_back_from_the_queue_and_map_the_same(
    recorder: tuple[RecordingSqs, QueueWriter],
    events: list[Any],
    batch: bool,
    ascii_only: bool,
) -> None:
    document: Any = {"batch": events} if batch else events
    parsed = parse_body(as_request_body(document, ascii_only=ascii_only))
    assert len(parsed.events) == len(events)
    assert not any(isinstance(event, UnparsedEvent) for event in parsed.events)

    back = through_a_queue(recorder[1], recorder[0], parsed.events)

    assert back == parsed.events
    assert codec.dumps(back) == codec.dumps(parsed.events)  # 1 and 1.0 compare equal
    config = MappingConfig()
    same_mapping(
        map_events(parsed.events, config, user_hash_key=HASH_KEY),
        map_events(back, config, user_hash_key=HASH_KEY),
    )
