"""The Raindrop models accept what Raindrop accepts and nothing else (docs/wire.md §2.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from segment_raindrop.core.raindrop_api import (
    AiData,
    Attachment,
    Endpoint,
    Identify,
    Signal,
    TrackEvent,
)

TS = "2025-03-14T09:26:53.589Z"

TRACK = {
    "event_id": "tr_1",
    "user_id": "usr_1",
    "event": "ai_interaction",
    "timestamp": TS,
    "properties": {"latency_ms": 812, "nested": {"a": [1, None]}},
    "ai_data": {"model": "gpt-4o", "input": "Hi", "output": "Hello", "convo_id": "c1"},
}
SIGNAL = {
    "event_id": "tr_1",
    "signal_name": "thumbs_up",
    "signal_type": "feedback",
    "timestamp": TS,
    "properties": {"comment": "Great"},
    "sentiment": "POSITIVE",
}
IDENTIFY = {"user_id": "usr_1", "traits": {"plan": "pro", "seats": 3, "score": 0.5, "beta": True}}

_DROP = object()  # removes a key in ``with_``


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(json.dumps(base))
    for key, value in changes.items():
        if value is _DROP:
            item.pop(key)
        else:
            item[key] = value
    return item


def test_endpoints() -> None:
    assert [endpoint.value for endpoint in Endpoint] == [
        "events/track",
        "signals/track",
        "users/identify",
        "events/track_partial",
        "traces",
    ]


VALID: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
    ("track-full", TrackEvent, TRACK),
    ("track-without-ai-data", TrackEvent, with_(TRACK, ai_data=_DROP)),
    ("track-without-properties", TrackEvent, with_(TRACK, properties=_DROP, ai_data=_DROP)),
    ("track-output-only", TrackEvent, with_(TRACK, ai_data={"output": "Hello"})),
    ("track-input-only", TrackEvent, with_(TRACK, ai_data={"input": "Hi"})),
    ("track-offset-timestamp", TrackEvent, with_(TRACK, timestamp="2025-03-14T10:26:53+01:00")),
    ("track-date-timestamp", TrackEvent, with_(TRACK, timestamp="2025-03-14")),
    ("track-unicode", TrackEvent, with_(TRACK, event="🤖 reply", user_id="ユーザー")),
    (
        "track-attachments",
        TrackEvent,
        with_(
            TRACK,
            attachments=[
                {"type": "code", "value": "print(1)", "language": "python", "role": "output"},
                {"type": "text", "value": "doc", "name": "README", "role": "context"},
                {"type": "image", "value": "https://x.example/a.png", "role": "input"},
                {"type": "iframe", "value": "https://x.example/embed"},
            ],
        ),
    ),
    ("signal-feedback", Signal, SIGNAL),
    ("signal-default", Signal, with_(SIGNAL, signal_type="default", properties={})),
    ("signal-type-defaults-to-default", Signal, with_(SIGNAL, signal_type=_DROP, properties={})),
    ("signal-edit", Signal, with_(SIGNAL, signal_type="edit", properties={"after": "new text"})),
    ("signal-negative", Signal, with_(SIGNAL, sentiment="NEGATIVE")),
    ("signal-no-sentiment", Signal, with_(SIGNAL, sentiment=_DROP)),
    ("signal-attachment-id", Signal, with_(SIGNAL, attachment_id="att_1")),
    ("identify", Identify, IDENTIFY),
    ("identify-no-traits", Identify, {"user_id": "usr_1"}),
    ("identify-empty-traits", Identify, {"user_id": "usr_1", "traits": {}}),
    ("identify-big-int-trait", Identify, {"user_id": "u", "traits": {"n": 2**70}}),
]


@pytest.mark.parametrize(
    ("model", "item"), [(m, i) for _, m, i in VALID], ids=[v[0] for v in VALID]
)
def test_valid_items(model: type[BaseModel], item: dict[str, Any]) -> None:
    validated = model.model_validate(item)
    # And they survive the wire: serialised and validated again from JSON.
    again = model.model_validate_json(validated.model_dump_json(exclude_none=True))
    assert again == validated


INVALID: list[tuple[str, type[BaseModel], dict[str, Any], str]] = [
    # events/track
    ("track-empty-user-id", TrackEvent, with_(TRACK, user_id=""), "user_id"),
    ("track-missing-user-id", TrackEvent, with_(TRACK, user_id=_DROP), "user_id"),
    ("track-numeric-user-id", TrackEvent, with_(TRACK, user_id=42), "user_id"),
    ("track-empty-event", TrackEvent, with_(TRACK, event=""), "event"),
    ("track-null-event", TrackEvent, with_(TRACK, event=None), "event"),
    ("track-empty-event-id", TrackEvent, with_(TRACK, event_id=""), "event_id"),
    ("track-bad-timestamp", TrackEvent, with_(TRACK, timestamp="14/03/2025"), "ISO 8601"),
    ("track-empty-timestamp", TrackEvent, with_(TRACK, timestamp=""), "ISO 8601"),
    (
        "track-impossible-date",
        TrackEvent,
        with_(TRACK, timestamp="2025-02-30T00:00:00Z"),
        "ISO 8601",
    ),
    ("track-epoch-timestamp", TrackEvent, with_(TRACK, timestamp=1710408413), "timestamp"),
    ("track-properties-list", TrackEvent, with_(TRACK, properties=[1]), "properties"),
    ("track-extra-field", TrackEvent, with_(TRACK, userId="usr_1"), "userId"),
    (
        "ai-data-no-content",
        TrackEvent,
        with_(TRACK, ai_data={"model": "gpt-4o"}),
        "input or output",
    ),
    (
        "ai-data-empty-content",
        TrackEvent,
        with_(TRACK, ai_data={"input": "", "output": ""}),
        "input or output",
    ),
    (
        "ai-data-list-input",
        TrackEvent,
        with_(TRACK, ai_data={"input": [{"role": "user"}]}),
        "input",
    ),
    (
        "ai-data-numeric-model",
        TrackEvent,
        with_(TRACK, ai_data={"input": "x", "model": 4}),
        "model",
    ),
    (
        "ai-data-extra-field",
        TrackEvent,
        with_(TRACK, ai_data={"input": "x", "tokens": 4}),
        "tokens",
    ),
    (
        "attachment-bad-type",
        TrackEvent,
        with_(TRACK, attachments=[{"type": "video", "value": "x"}]),
        "attachments",
    ),
    (
        "attachment-bad-role",
        TrackEvent,
        with_(TRACK, attachments=[{"type": "text", "value": "x", "role": "system"}]),
        "attachments",
    ),
    # signals/track
    ("signal-empty-event-id", Signal, with_(SIGNAL, event_id=""), "event_id"),
    ("signal-empty-name", Signal, with_(SIGNAL, signal_name=""), "signal_name"),
    ("signal-feedback-without-comment", Signal, with_(SIGNAL, properties={}), "properties.comment"),
    ("signal-feedback-empty-comment", Signal, with_(SIGNAL, properties={"comment": ""}), "comment"),
    (
        "signal-feedback-numeric-comment",
        Signal,
        with_(SIGNAL, properties={"comment": 5}),
        "comment",
    ),
    (
        "signal-edit-without-after",
        Signal,
        with_(SIGNAL, signal_type="edit", properties={}),
        "properties.after",
    ),
    (
        "signal-edit-empty-after",
        Signal,
        with_(SIGNAL, signal_type="edit", properties={"after": ""}),
        "after",
    ),
    ("signal-bad-type", Signal, with_(SIGNAL, signal_type="thumbs"), "signal_type"),
    ("signal-lower-sentiment", Signal, with_(SIGNAL, sentiment="positive"), "sentiment"),
    ("signal-bad-sentiment", Signal, with_(SIGNAL, sentiment="NEUTRAL"), "sentiment"),
    ("signal-bad-timestamp", Signal, with_(SIGNAL, timestamp="now"), "ISO 8601"),
    ("signal-empty-attachment-id", Signal, with_(SIGNAL, attachment_id=""), "attachment_id"),
    # users/identify
    ("identify-empty-user-id", Identify, {"user_id": "", "traits": {}}, "user_id"),
    ("identify-missing-user-id", Identify, {"traits": {}}, "user_id"),
    (
        "identify-nested-trait",
        Identify,
        {"user_id": "u", "traits": {"company": {"id": 1}}},
        "traits",
    ),
    ("identify-list-trait", Identify, {"user_id": "u", "traits": {"roles": ["admin"]}}, "traits"),
    ("identify-null-trait", Identify, {"user_id": "u", "traits": {"nps": None}}, "traits"),
    (
        "identify-infinite-trait",
        Identify,
        {"user_id": "u", "traits": {"x": float("inf")}},
        "traits",
    ),
    ("identify-nan-trait", Identify, {"user_id": "u", "traits": {"x": float("nan")}}, "traits"),
]


@pytest.mark.parametrize(
    ("model", "item", "where"), [(m, i, w) for _, m, i, w in INVALID], ids=[v[0] for v in INVALID]
)
def test_invalid_items(model: type[BaseModel], item: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(item)
    assert where in str(caught.value)


# -- strictness: no silent coercion ----------------------------------------------------------


def test_trait_types_are_kept_exactly() -> None:
    identify = Identify.model_validate(
        {"user_id": "u", "traits": {"flag": True, "off": False, "one": 1, "half": 0.5, "s": "1"}}
    )
    traits = identify.traits
    assert traits["flag"] is True
    assert traits["off"] is False
    assert type(traits["one"]) is int
    assert type(traits["half"]) is float
    assert traits["s"] == "1"
    assert json.loads(identify.model_dump_json())["traits"] == {
        "flag": True,
        "off": False,
        "one": 1,
        "half": 0.5,
        "s": "1",
    }


@pytest.mark.parametrize(
    ("model", "item"),
    [
        (TrackEvent, with_(TRACK, user_id=1)),
        (TrackEvent, with_(TRACK, event=True)),
        (TrackEvent, with_(TRACK, event_id=123)),
        (Signal, with_(SIGNAL, signal_name=False)),
        (Identify, {"user_id": 7}),
        (Identify, {"user_id": True}),
        (AiData, {"input": 1}),
        (AiData, {"input": "x", "convo_id": 5}),
        (Attachment, {"type": "text", "value": 1}),
    ],
)
def test_no_coercion_to_strings(model: type[BaseModel], item: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(item)


def test_bool_is_not_accepted_as_a_string_from_json() -> None:
    with pytest.raises(ValidationError):
        Identify.model_validate_json('{"user_id": true}')


def test_models_forbid_unknown_fields_and_are_frozen() -> None:
    item = Identify.model_validate(IDENTIFY)
    with pytest.raises(ValidationError):
        item.user_id = "other"
    with pytest.raises(ValidationError, match="extra"):
        Identify.model_validate({**IDENTIFY, "anonymousId": "a"})


def test_serialisation_drops_absent_optionals() -> None:
    track = TrackEvent.model_validate(with_(TRACK, ai_data={"input": "Hi"}))
    payload = json.loads(track.model_dump_json(exclude_none=True))
    assert payload["ai_data"] == {"input": "Hi"}
    assert "attachments" not in payload
