"""Parsing what Segment sends (docs/wire.md §1.2): every shape, and bodies we must refuse."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.segment import tracking_api_envelope

from segment_raindrop.core.segment_body import (
    BodyError,
    first_array_element_text,
    parse_body,
    parse_document,
)
from segment_raindrop_tools import samples

# -- the three shapes ---------------------------------------------------------------------


def test_single_event_object(fixture_bytes: Callable[[str], bytes]) -> None:
    raw = fixture_bytes("actions_single_ai_chat_completed.json")
    parsed = parse_body(raw)
    assert parsed.shape == "event"
    assert parsed.events == [json.loads(raw)]


def test_webhooks_classic_event(fixture_bytes: Callable[[str], bytes]) -> None:
    parsed = parse_body(fixture_bytes("classic_webhook_track.json"))
    assert parsed.shape == "event"
    assert len(parsed.events) == 1
    assert parsed.events[0]["projectId"] == "cqDxIUVZoW"


def test_delete_event(fixture_bytes: Callable[[str], bytes]) -> None:
    parsed = parse_body(fixture_bytes("classic_webhook_delete.json"))
    assert parsed.shape == "event"
    assert parsed.events[0]["type"] == "delete"


def test_actions_batched_array(fixture_bytes: Callable[[str], bytes]) -> None:
    raw = fixture_bytes("actions_batch.json")
    parsed = parse_body(raw)
    assert parsed.shape == "array"
    assert parsed.events == json.loads(raw)
    assert len(parsed.events) == 6


def test_array_keeps_non_object_elements_for_the_mapper() -> None:
    # One bad element never fails the request: judging elements is the mapper's job.
    parsed = parse_body(b'[{"type":"track"}, 3, null, "x", []]')
    assert parsed.shape == "array"
    assert parsed.events == [{"type": "track"}, 3, None, "x", []]


def test_empty_array_is_a_valid_empty_request() -> None:
    parsed = parse_body(b"[]")
    assert parsed.shape == "array"
    assert parsed.events == []


def test_tracking_api_envelope(fixture_bytes: Callable[[str], bytes]) -> None:
    parsed = parse_body(fixture_bytes("tracking_api_batch.json"))
    assert parsed.shape == "batch"
    assert [event["messageId"][:9] for event in parsed.events] == [
        "python-3f",
        "python-4a",
        "python-5b",
    ]


def test_envelope_context_and_integrations_are_defaults(
    fixture_bytes: Callable[[str], bytes],
) -> None:
    identify, chat, own = parse_body(fixture_bytes("tracking_api_batch.json")).events
    library = {"name": "analytics-python", "version": "2.3.3"}
    # Events without their own context take the envelope's.
    assert identify["context"] == {"library": library, "ip": "10.0.0.1"}
    assert chat["integrations"] == {"All": True, "Mixpanel": False}
    # An event's own keys win, the envelope fills in the rest.
    assert own["context"] == {"library": library, "ip": "192.0.2.10", "traits": {"plan": "free"}}
    assert own["integrations"] == {"All": True, "Mixpanel": True}


def test_envelope_does_not_modify_non_object_events_or_replace_bad_context() -> None:
    body = {
        "batch": [7, {"type": "track", "context": "not an object"}],
        "context": {"ip": "10.0.0.1"},
    }
    events = parse_document(body).events
    assert events[0] == 7
    # A non-object context is replaced by the defaults (it could not be merged).
    assert events[1]["context"] == {"ip": "10.0.0.1"}


def test_envelope_without_shared_context_passes_events_through() -> None:
    batch = [{"type": "track", "event": "AI x"}]
    for envelope in (
        {"batch": batch},
        {"batch": batch, "context": {}},
        {"batch": batch, "context": "x", "integrations": None},
    ):
        assert parse_document(envelope).events == batch


def test_envelope_events_are_copies() -> None:
    event: dict[str, Any] = {"type": "track", "context": {"ip": "1.2.3.4"}}
    parse_document({"batch": [event], "context": {"locale": "de-DE"}})
    assert event == {"type": "track", "context": {"ip": "1.2.3.4"}}


def test_object_with_null_batch_is_a_single_event() -> None:
    parsed = parse_body(b'{"type":"track","batch":null}')
    assert parsed.shape == "event"


def test_samples_envelope_round_trips() -> None:
    events = samples.batch(20, seed=3)
    raw = json.dumps(tracking_api_envelope(events)).encode()
    parsed = parse_body(raw)
    assert parsed.shape == "batch"
    assert len(parsed.events) == 20
    # Every sample event has its own library, so the envelope's never overrides it.
    assert [e["context"]["library"] for e in parsed.events] == [
        e["context"]["library"] for e in events
    ]


def test_str_and_bytes_bodies_are_equivalent() -> None:
    raw = samples.body(samples.conversation())
    assert parse_body(raw) == parse_body(raw.decode("utf-8"))


def test_unicode_and_json_escapes_survive(fixture_bytes: Callable[[str], bytes]) -> None:
    event = parse_body(fixture_bytes("classic_webhook_track.json")).events[0]
    ai_data = json.loads(event["properties"]["ai_data"])
    assert ai_data["input"].endswith("🙏")
    assert ai_data["output"].startswith("• Export")


def test_lone_surrogate_escapes_parse() -> None:
    # JavaScript strings may hold lone surrogates; JSON.stringify escapes them.
    parsed = parse_body(b'[{"type":"track","event":"AI \\ud800"}]')
    assert parsed.events[0]["event"] == "AI \ud800"


# -- bodies refused as a whole ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(b"", "body is empty", id="empty"),
        pytest.param(b"  \n\t ", "body is empty", id="whitespace-only"),
        pytest.param(b"{", "not valid JSON", id="truncated"),
        pytest.param(b"event=AI+Chat", "not valid JSON", id="form-encoded"),
        pytest.param(b'{"a":1} {"b":2}', "not valid JSON", id="two-documents"),
        pytest.param(b"[1,]", "not valid JSON", id="trailing-comma"),
        pytest.param(b'{"x": NaN}', "NaN is not a JSON value", id="nan"),
        pytest.param(b"[Infinity]", "Infinity is not a JSON value", id="infinity"),
        pytest.param(b"[-Infinity]", "-Infinity is not a JSON value", id="minus-infinity"),
        pytest.param(b'{"x": "\xff\xfe"}', "not valid UTF-8", id="latin-1-bytes"),
        pytest.param(b"\xef\xbb", "not valid UTF-8", id="truncated-bom"),
        pytest.param(b"null", "not null", id="null"),
        pytest.param(b"true", "not a boolean", id="boolean"),
        pytest.param(b"42", "not a number", id="number"),
        pytest.param(b"1.5e3", "not a number", id="float"),
        pytest.param(b'"AI Chat Completed"', "not a string", id="string"),
        pytest.param(
            b'{"batch": {"type": "track"}}', "'batch' must be a JSON array", id="batch-obj"
        ),
        pytest.param(b'{"batch": "[]"}', "'batch' must be a JSON array", id="batch-str"),
        # Deeper than the parser goes and never closed: still not JSON. (A well-formed array
        # with an element too deep, or a huge number, costs only that element:
        # test_hostile_input.py.)
        pytest.param(b"[" * 100_000, "not valid JSON", id="deep-nesting-unclosed"),
        pytest.param(b"9" * 5_000, "not a number", id="huge-integer-body"),
    ],
)
def test_unusable_bodies_raise_body_error_naming_the_problem(raw: bytes, problem: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_body(raw)
    assert problem in str(caught.value)


def test_json_error_message_locates_the_problem() -> None:
    with pytest.raises(BodyError, match=r"line 2 column \d+"):
        parse_body(b'{"type": "track",\n "event": }')


def test_body_error_is_a_value_error() -> None:
    # The endpoint answers BodyError with 400; it must not be mistaken for a server error.
    assert issubclass(BodyError, ValueError)


# -- first_array_element_text -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('[{"a":1}]', '{"a":1}', id="compact"),
        pytest.param('[{"a":1},{"b":2}]', '{"a":1}', id="two-elements"),
        pytest.param(' \n\t[ \r\n {"a" : 1 } ,\n{"b":2}]', '{"a" : 1 }', id="whitespace"),
        pytest.param("[[1,[2,[3]]],4]", "[1,[2,[3]]]", id="nested-arrays"),
        pytest.param('[{"s":"],[,{"},1]', '{"s":"],[,{"}', id="brackets-in-string"),
        pytest.param('[{"s":"a\\"],b"},2]', '{"s":"a\\"],b"}', id="escaped-quote-before-bracket"),
        pytest.param('[{"t":"日本語 🌍 ü"}]', '{"t":"日本語 🌍 ü"}', id="unicode"),
        pytest.param(
            '[{"t":"\\u65e5\\ud83c\\udf0d"}]', '{"t":"\\u65e5\\ud83c\\udf0d"}', id="escapes"
        ),
        pytest.param('[{"n":1e21}]', '{"n":1e21}', id="js-1e21"),
        pytest.param('[{"n":1e+21,"m":1E-7}]', '{"n":1e+21,"m":1E-7}', id="js-exponent-forms"),
        pytest.param('[{"n":1.0}]', '{"n":1.0}', id="one-point-zero"),
        pytest.param('[{"n":-0,"m":0.1}]', '{"n":-0,"m":0.1}', id="minus-zero"),
        pytest.param(
            '[{"n":12345678901234567890123}]', '{"n":12345678901234567890123}', id="bigint"
        ),
        pytest.param("[1e21, 2]", "1e21", id="bare-number"),
        pytest.param('["a,b", "c"]', '"a,b"', id="string-with-comma"),
        pytest.param("[null]", "null", id="null"),
        pytest.param("[]", None, id="empty"),
        pytest.param("[  \n ]", None, id="empty-with-whitespace"),
        pytest.param("", None, id="empty-text"),
        pytest.param("   ", None, id="only-whitespace"),
        pytest.param('{"a":[1]}', None, id="object"),
        pytest.param("[", None, id="only-bracket"),
        pytest.param('[{"a":', None, id="truncated"),
        pytest.param("[,1]", None, id="leading-comma"),
        pytest.param('[{"a":1', None, id="unterminated-object"),
    ],
)
def test_first_array_element_text(text: str, expected: str | None) -> None:
    assert first_array_element_text(text) == expected


def test_first_array_element_text_is_verbatim_not_reserialised() -> None:
    # JavaScript writes 1e21 as "1e+21" and 1.0 as "1"; Python would write "1e+21"/"1.0".
    # Whatever the sender wrote must come back byte for byte.
    element = '{ "price" : 1e+21 ,"ratio":1,"tiny":1e-7,"s":"a\\u00e9" }'
    assert first_array_element_text(f"[{element},{{}}]") == element
    assert json.dumps(json.loads(element)) != element


def test_first_array_element_text_of_fixture(fixture_bytes: Callable[[str], bytes]) -> None:
    text = fixture_bytes("actions_batch_js_numbers.json").decode("utf-8")
    first = first_array_element_text(text)
    assert first is not None
    assert first.startswith('{"type":"track"')
    assert first.endswith("}}")
    assert '"big":1e+21,"ratio":1.0' in first
    assert json.loads(first) == json.loads(text)[0]
