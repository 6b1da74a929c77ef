"""Raindrop-native mapping through the real webhook handler: what the recording receiver (which
checks every item against docs/wire.md §2 independently) accepts, and where the rest went."""

from __future__ import annotations

from typing import Any

from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.integration.test_webhook import account
from tests.support.auth import bearer

CODE = {
    "type": "code",
    "value": "SELECT 4",
    "name": "query.sql",
    "role": "output",
    "language": "sql",
    "attachment_id": "att-0",
}


def signal(n: int, *, about: int, **properties: Any) -> dict[str, Any]:
    event = se.feedback(n, about=about)
    event["properties"].update(properties)
    return event


def test_attachments_reach_raindrop_and_bad_entries_are_dropped(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    events = [se.chat(0, attachments=[CODE, {"type": "pdf", "value": "x"}, "text"])]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200, response.body
    account(response, events, receiver, aws)
    [item] = receiver.accepted("events/track")
    assert item["attachments"] == [CODE]
    assert "attachments" not in item["properties"]


def test_every_signal_kind_and_its_requirements(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    events = [
        se.chat(0),
        signal(1, about=0, signal_type="edit", after="SELECT 5"),
        signal(2, about=0, signal_type="agent", attachment_id="att-0"),
        signal(3, about=0, signal_type="edit"),  # no properties.after: invalid
        signal(4, about=0, signal_type="feedback", comment=" "),  # no comment: invalid
    ]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200, response.body
    ledger = account(response, events, receiver, aws)
    signals = {item["properties"]["seq"]: item for item in receiver.accepted("signals/track")}
    assert signals[1]["signal_type"] == "edit"
    assert signals[1]["properties"]["after"] == "SELECT 5"
    assert signals[2]["signal_type"] == "agent"
    assert signals[2]["attachment_id"] == "att-0"
    assert ledger.dead_letter == {3, 4}
    assert sorted(m["error"] for m in ledger.dlq_messages) == [
        "edit signal has no properties.after",
        "feedback signal has no properties.comment",
    ]


def test_readme_field_paths_example(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # README "Your own property names": prompt, completion, conversation_id and request_id.
    aws.configure(
        mapping={
            "field_paths": {
                "event_id": ["properties.request_id", "messageId"],
                "ai_data.input": ["properties.prompt"],
                "ai_data.output": ["properties.completion"],
                "ai_data.convo_id": ["properties.conversation_id"],
            }
        }
    )
    event = se.track_call(
        "AI Chat Completed",
        {
            "seq": 0,
            "request_id": "req_81f2",
            "prompt": "How do I export to Parquet?",
            "completion": "Settings → Export → Format: Parquet.",
            "conversation_id": "conv_12",
            "model": "gpt-4o",
        },
        messageId="msg-0",
        userId="user-1",
        timestamp=se.TIMESTAMP,
    )
    response = invoke_webhook([event], headers=bearer(aws))
    assert response.status == 200, response.body
    account(response, [event], receiver, aws)
    [item] = receiver.accepted("events/track")
    assert item["event_id"] == "req_81f2"
    assert item["ai_data"] == {
        "model": "gpt-4o",
        "input": "How do I export to Parquet?",
        "output": "Settings → Export → Format: Parquet.",
        "convo_id": "conv_12",
    }
    assert item["properties"] == {
        "seq": 0,
        "request_id": "req_81f2",
        "conversation_id": "conv_12",
        "model": "gpt-4o",
    }


def test_identify_and_context_traits_become_one_identify(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    chat = se.chat(0, user="user-1")
    chat["context"] = {"traits": {"email": "ada@example.com", "plan": {"tier": "free"}}}
    other = se.chat(1, user="user-2")
    other["context"] = {"traits": {"plan": "team"}}
    events = [chat, se.identify(2, user="user-1"), other]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200, response.body
    account(response, events, receiver, aws)
    identifies = {item["user_id"]: item["traits"] for item in receiver.accepted("users/identify")}
    assert len(receiver.accepted("users/identify")) == 2
    # The explicit identify's own traits win over the context's.
    assert identifies["user-1"] == {"email": "ada@example.com", "seq": 2, "plan.tier": "pro"}
    assert identifies["user-2"] == {"plan": "team"}
