"""Raindrop-native mapping, rule by rule: attachments, every signal kind, field paths, and one
identify per user and request (docs/wire.md §3).

Rows follow tests/unit/test_mapping.py: each maps one event and states its one outcome.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.test_mapping import (
    ABSENT,
    DROP,
    IDENTIFY,
    SIGNAL,
    TRACK,
    Invalid,
    Row,
    check,
    feedback,
    identify,
    mapped,
    props,
    track,
    with_,
)

from segment_raindrop.core.config import ConfigError, MappingConfig
from segment_raindrop.core.environment import read_mapping_config, to_environment
from segment_raindrop.core.field_paths import DEFAULT_FIELD_PATHS, FieldPaths, lookup
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.raindrop_api import SIGNAL_TYPES

CODE = {
    "type": "code",
    "value": "print(4)",
    "name": "answer.py",
    "role": "output",
    "language": "python",
    "attachment_id": "att-1",
}
TEXT = {"type": "text", "value": "The manual, page 4"}

# The README's example: a team whose events carry prompt, completion, conversation_id and
# request_id at the top of their properties.
TEAM_PATHS = {
    "event_id": ["properties.request_id", "messageId"],
    "ai_data.input": ["properties.prompt"],
    "ai_data.output": ["properties.completion"],
    "ai_data.convo_id": ["properties.conversation_id"],
}
TEAM_PROPERTIES = {
    "request_id": "req-9",
    "prompt": "What is 2 + 2?",
    "completion": "4",
    "conversation_id": "conv-3",
    "model": "gpt-4o",
}


def signal(kind: Any, **properties: Any) -> dict[str, Any]:
    return feedback(signal_type=kind, **properties)


RULES = [
    # -- attachments ------------------------------------------------------------------------
    Row(
        "attachments-become-the-events-attachments",
        track(properties=props(attachments=[CODE, TEXT])),
        mapped(TRACK, attachments=[CODE, TEXT], properties={"trace_id": "trace-1"}),
    ),
    Row(
        "attachments-that-do-not-fit-are-dropped",
        track(
            properties=props(
                attachments=[
                    {"type": "video", "value": "x"},  # not one of Raindrop's types
                    {"type": "text"},  # no value
                    {"type": "text", "value": 3},  # value not text
                    {"type": "text", "value": "x", "role": "system"},  # unknown role
                    {"type": "text", "value": "x", "size": 3},  # not in the shape
                    {"type": "text", "value": "x", "attachment_id": " "},  # blank id
                    "a string",
                    TEXT,
                ]
            )
        ),
        mapped(TRACK, attachments=[TEXT], properties={"trace_id": "trace-1"}),
    ),
    Row(
        "attachments-none-fit-none-sent",
        track(properties=props(attachments=[{"type": "pdf", "value": "x"}])),
        mapped(TRACK, attachments=ABSENT, properties={"trace_id": "trace-1"}),
    ),
    Row(
        "attachments-not-a-list-none-sent",
        track(properties=props(attachments=CODE)),
        mapped(TRACK, attachments=ABSENT, properties={"trace_id": "trace-1"}),
    ),
    Row(
        "attachments-empty-list-none-sent",
        track(properties=props(attachments=[])),
        mapped(TRACK, attachments=ABSENT, properties={"trace_id": "trace-1"}),
    ),
    Row("no-attachments-none-sent", track(), mapped(TRACK, attachments=ABSENT)),
    Row(
        "attachments-from-a-configured-path",
        track(properties=props(files=[TEXT])),
        mapped(TRACK, attachments=[TEXT], properties={"trace_id": "trace-1"}),
        {"field_paths": {"attachments": ["properties.files"]}},
    ),
    # -- every signal kind ------------------------------------------------------------------
    *(
        Row(
            f"signal-type-{kind}-as-given",
            signal(kind, after="4"),
            mapped(SIGNAL, signal_type=kind),
        )
        for kind in sorted(SIGNAL_TYPES)
    ),
    Row(
        "signal-type-default-asked-despite-a-comment",
        signal("default"),
        mapped(SIGNAL, signal_type="default"),
    ),
    Row(
        "edit-without-after-invalid", signal("edit"), Invalid("edit signal has no properties.after")
    ),
    Row(
        "edit-with-blank-after-invalid",
        signal("edit", after="  "),
        Invalid("edit signal has no properties.after"),
    ),
    Row(
        "feedback-asked-without-comment-invalid",
        signal("feedback", comment=DROP),
        Invalid("feedback signal has no properties.comment"),
    ),
    Row(
        "unknown-signal-type-falls-back-to-feedback",
        signal("thumbs"),
        mapped(SIGNAL, signal_type="feedback"),
    ),
    Row(
        "unknown-signal-type-without-comment-default",
        signal("Edit", comment=DROP),
        mapped(SIGNAL, signal_type="default"),
    ),
    Row(
        "non-string-signal-type-falls-back",
        signal(["edit"], comment=DROP),
        mapped(SIGNAL, signal_type="default"),
    ),
    Row(
        "signal-ai-data-of-any-shape-is-dropped-not-checked",
        feedback(ai_data=["not", "an", "object"]),
        mapped(
            SIGNAL,
            properties={"trace_id": "trace-1", "comment": "Great answer", "sentiment": "positive"},
        ),
    ),
    Row(
        "signal-attachment-id-passes-through",
        feedback(attachment_id="att-1"),
        mapped(SIGNAL, attachment_id="att-1"),
    ),
    Row(
        "signal-blank-attachment-id-omitted",
        feedback(attachment_id=" "),
        mapped(SIGNAL, attachment_id=ABSENT),
    ),
    # -- field paths ------------------------------------------------------------------------
    Row(
        "team-paths-ai-data-and-ids",
        track(properties=TEAM_PROPERTIES),
        mapped(
            TRACK,
            event_id="req-9",
            ai_data={
                "input": "What is 2 + 2?",
                "output": "4",
                "convo_id": "conv-3",
                "model": "gpt-4o",
            },
            # What ai_data carries is not repeated; the ids stay, as trace_id does by default.
            properties={"request_id": "req-9", "conversation_id": "conv-3", "model": "gpt-4o"},
        ),
        {"field_paths": TEAM_PATHS},
    ),
    Row(
        "team-paths-event-id-falls-back-to-message-id",
        track(properties=with_(TEAM_PROPERTIES, request_id=DROP)),
        mapped(TRACK, event_id="msg-1"),
        {"field_paths": TEAM_PATHS},
    ),
    Row(
        "team-paths-nothing-falls-back-to-ai-data",
        track(properties=props()),
        mapped(TRACK, ai_data=ABSENT),
        {"field_paths": TEAM_PATHS},
    ),
    Row(
        "configured-event-id-missing-names-the-paths",
        track(properties=props()),
        Invalid("event has no properties.request_id"),
        {"field_paths": {"event_id": ["properties.request_id"]}},
    ),
    Row(
        "configured-user-id-path",
        track(properties=props(account={"id": "acct-7"})),
        mapped(TRACK, user_id="acct-7"),
        {"field_paths": {"user_id": ["properties.account.id", "userId"]}},
    ),
    Row(
        "configured-user-id-missing-names-the-paths",
        track(),
        Invalid("event has no properties.account.id"),
        {"field_paths": {"user_id": ["properties.account.id"]}},
    ),
    Row(
        "configured-timestamp-path",
        track(properties=props(sent="2026-01-02T03:04:05Z")),
        mapped(TRACK, timestamp="2026-01-02T03:04:05.000Z"),
        {"field_paths": {"timestamp": ["properties.sent", "timestamp"]}},
    ),
    Row(
        "configured-model-path",
        track(properties=props(llm={"name": "claude"})),
        mapped(TRACK, ai_data={"input": "What is 2 + 2?", "output": "4", "model": "claude"}),
        {"field_paths": {"ai_data.model": ["properties.llm.name"]}},
    ),
    Row(
        "configured-nested-ai-object-as-json-text",
        track(properties={"trace_id": "t", "llm": json.dumps({"in": "hi", "out": "yo"})}),
        mapped(TRACK, ai_data={"input": "hi", "output": "yo"}, properties={"trace_id": "t"}),
        {
            "field_paths": {
                "ai_data.input": ["properties.llm.in"],
                "ai_data.output": ["properties.llm.out"],
            }
        },
    ),
    Row(
        "configured-signal-event-id-path",
        feedback(trace_id=DROP, request_id="req-9"),
        mapped(SIGNAL, event_id="req-9"),
        {"field_paths": {"signal.event_id": ["properties.request_id"]}},
    ),
    Row(
        "configured-signal-name-path",
        feedback(kind="thumbs_up"),
        mapped(SIGNAL, signal_name="thumbs_up"),
        {"field_paths": {"signal.signal_name": ["properties.kind"]}},
    ),
]


@pytest.mark.parametrize("row", RULES, ids=[row.id for row in RULES])
def test_rule(row: Any) -> None:
    config = MappingConfig.model_validate(row.config)
    check(map_events([row.event], config), row.expected)


def test_rule_ids_are_unique() -> None:
    assert len({row.id for row in RULES}) == len(RULES)


def test_dropped_attachments_are_counted_per_event() -> None:
    events = [
        track(properties=props(attachments=[TEXT, {"type": "pdf"}, 7])),
        track(properties=props(trace_id="t2", attachments=[TEXT])),
        # Invalid for another reason: its attachments are not counted, it went nowhere.
        track(userId=DROP, anonymousId=DROP, properties=props(attachments=[7])),
    ]
    result = map_events(events, MappingConfig())
    assert result.mapped == {0, 1}
    assert result.dropped_attachments == {0: 2}


# -- one identify per user and request ------------------------------------------------------


def _identifies(events: list[dict[str, Any]], **config: Any) -> list[tuple[int, bool, Any]]:
    result = map_events(events, MappingConfig(**config))
    return [
        (item.event_index, item.optional, json.loads(item.payload))
        for item in result.items
        if item.endpoint is IDENTIFY
    ]


def enriched(traits: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return track(context={"traits": traits}, **changes)


@pytest.mark.parametrize("identify_first", [True, False])
def test_explicit_identify_and_enrichment_become_one(identify_first: bool) -> None:
    explicit = identify(traits={"plan": "pro", "seats": 3})
    context = enriched({"plan": "free", "email": "a@example.com"})
    events = [explicit, context] if identify_first else [context, explicit]
    [(source, optional, payload)] = _identifies(events)
    # The explicit identify's event owns the item; its traits win.
    assert source == events.index(explicit)
    assert optional is False
    assert payload == {
        "user_id": "user-1",
        "traits": {"plan": "pro", "seats": 3, "email": "a@example.com"},
    }


def test_enrichment_without_an_identify_stays_optional_and_separate() -> None:
    events = [
        identify(userId="user-2"),
        enriched({"plan": "free"}),  # user-1
    ]
    got = _identifies(events)
    assert [(source, optional) for source, optional, _ in got] == [(0, False), (1, True)]
    assert got[1][2] == {"user_id": "user-1", "traits": {"plan": "free"}}


def test_enrichment_merges_into_the_first_of_several_identifies() -> None:
    events = [
        identify(traits={"plan": "pro"}),
        identify(traits={"plan": "team"}),
        enriched({"email": "a@example.com"}),
    ]
    got = _identifies(events)
    assert [(source, payload["traits"]) for source, _, payload in got] == [
        (0, {"plan": "pro", "email": "a@example.com"}),
        (1, {"plan": "team"}),
    ]


def test_filtered_identify_leaves_enrichment_alone() -> None:
    events = [identify(), enriched({"plan": "free"})]
    got = _identifies(events, forward_identify=False)
    assert [(source, optional) for source, optional, _ in got] == [(1, True)]


def test_invalid_identify_leaves_enrichment_alone() -> None:
    events = [identify(traits=["not", "an", "object"]), enriched({"plan": "free"})]
    result = map_events(events, MappingConfig())
    assert result.invalid == {0: "traits is not an object"}
    assert [(i.endpoint, i.event_index, i.optional) for i in result.items] == [
        (TRACK, 1, False),
        (IDENTIFY, 1, True),
    ]


def test_every_event_is_accounted_for_once_with_merging() -> None:
    events = [enriched({"a": 1}), identify(), track("Order Completed"), enriched({"b": 2})]
    result = map_events(events, MappingConfig())
    assert result.mapped == {0, 1, 3}
    assert set(result.filtered) == {2}
    assert [(i.endpoint, i.event_index) for i in result.items] == [
        (TRACK, 0),
        (TRACK, 3),
        (IDENTIFY, 1),
    ]


# -- field paths: configuration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_paths", "problem"),
    [
        ({"ai_data.prompt": ["properties.prompt"]}, "unknown Raindrop field 'ai_data.prompt'"),
        ({"event_id": []}, "event_id: needs at least one path"),
        ({"event_id": [""]}, "event_id: malformed path ''"),
        ({"event_id": ["properties..id"]}, "event_id: malformed path 'properties..id'"),
        ({"event_id": [".id"]}, "malformed path '.id'"),
        ({"event_id": ["properties."]}, "malformed path 'properties.'"),
        ({"event_id": ["properties. id"]}, "malformed path 'properties. id'"),
        ({"event_id": "properties.id"}, "FIELD_PATHS.event_id"),
    ],
)
def test_bad_field_paths_fail_at_start_up_naming_the_path(
    field_paths: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        read_mapping_config({"FIELD_PATHS": json.dumps(field_paths)})
    assert "FIELD_PATHS" in str(raised.value)
    assert problem in str(raised.value)


def test_field_paths_round_trip_through_the_environment() -> None:
    config = MappingConfig(field_paths=TEAM_PATHS)
    environment = to_environment(config)
    assert json.loads(environment["FIELD_PATHS"]) == TEAM_PATHS
    assert read_mapping_config(environment) == config
    # Unset, nothing is written: the defaults live in the code.
    assert "FIELD_PATHS" not in to_environment(MappingConfig())


def test_defaults_are_todays_rules() -> None:
    paths = FieldPaths.from_overrides({})
    assert paths["event_id"] == (("properties", "trace_id"), ("messageId",))
    assert paths.names("user_id") == "userId or anonymousId"
    assert set(FieldPaths.from_overrides(TEAM_PATHS).paths) == set(DEFAULT_FIELD_PATHS)


def test_lookup_stops_at_anything_but_an_object() -> None:
    event = {"properties": {"a": {"b": 1}, "s": "text", "l": [1]}}
    assert lookup(event, ("properties", "a", "b")) == 1
    assert lookup(event, ("properties", "s", "x")) is None
    assert lookup(event, ("properties", "l", "0")) is None
    assert lookup(event, ("missing", "x")) is None
