"""Hostile events through moto's SQS: what the webhook accepts is read back intact, and one
event it cannot read costs only that event, which waits on the dead-letter queue as sent."""

from __future__ import annotations

import json
from typing import Any

from segment_raindrop.adapters.queue_writer import QueueTarget, QueueWriter
from segment_raindrop.core import codec
from segment_raindrop.core.codec import MAX_EVENT_DEPTH, MAX_INT_DIGITS, UnparsedEvent
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.core.queue_message import parse_message
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop_tools.local.queues import drain_messages
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.queues import message_header

TS = "2025-03-14T09:26:53.589Z"
KEY = b"deployment-key"


def chat(seq: int, prompt: str, **changes: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "AI Chat Completed",
        "userId": "user-1",
        "messageId": f"msg-{seq}",
        "timestamp": TS,
        "properties": {"trace_id": f"trace-{seq}", "ai_data": {"input": prompt, "output": "ok"}},
        **changes,
    }


def chain(depth: int) -> Any:
    value: Any = "leaf \ud83d"
    for _ in range(depth):
        value = [value]
    return value


def test_hostile_events_read_back_from_sqs_exactly(aws: AwsEnv) -> None:
    hostile = [
        chat(1, "Pricing \ud83d"),  # cut mid-emoji by a JavaScript app
        chat(2, "\x00 \uffff \u200f\u202e RTL \U0001f600 \udc00"),
        chat(3, "big", properties={"n": int("7" * MAX_INT_DIGITS), "m": -(10**40)}),
        chat(4, "deep", properties={"nested": chain(MAX_EVENT_DEPTH - 2)}),
        {"type": "identify", "userId": "user-\ud800", "traits": {"name\udfff": "x"}},
        "not an object \ud83d",
    ]
    # Escaped the way JSON.stringify escapes lone surrogates; 1e400 reads as infinity.
    body = codec.dumps(hostile)[:-1] + ',{"type":"track","x":1e400}]'
    events = parse_body(body.encode("utf-8")).events
    assert len(events) == 7
    assert not any(isinstance(event, UnparsedEvent) for event in events)

    writer = QueueWriter(
        aws.sqs,
        retry_queue_url=aws.resources.retry_queue_url,
        dlq_url=aws.resources.dlq_url,
        source="test",
    )
    header = message_header(FailureReason.TRANSIENT, status=503)
    result = writer.send(QueueTarget.RETRY, [(header, list(enumerate(events)))])
    assert result.queued == set(range(7))
    assert result.messages == 1

    [message] = drain_messages(aws.sqs, aws.resources.retry_queue_url)
    back = parse_message(message["Body"])
    assert back.events == events
    assert codec.dumps(back.events) == codec.dumps(events)
    first = map_events(events, MappingConfig(), user_hash_key=KEY)
    again = map_events(back.events, MappingConfig(), user_hash_key=KEY)
    assert [item.payload for item in again.items] == [item.payload for item in first.items]
    assert again.invalid == first.invalid
    assert again.repaired_texts == first.repaired_texts > 0


def test_one_unreadable_event_costs_only_itself(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    too_deep = '{"type":"track","event":"AI x","properties":' + "[" * 1_000 + "]" * 1_000 + "}"
    too_long = '{"type":"track","event":"AI x","n":' + "9" * (MAX_INT_DIGITS + 1) + "}"
    good = json.dumps(chat(1, "Hello"))
    cut = codec.dumps(chat(2, "Pricing \ud83d"))
    blank_user = json.dumps(chat(3, "Hi", userId=" "))
    body = f"[{good},{too_deep},{cut},{too_long},{blank_user}]"

    response = invoke_webhook(body, headers=bearer(aws))

    # Before: a 400 for the whole batch, which Segment drops.
    assert response.status == 200, response.body
    assert response.body == {
        "received": 5,
        "forwarded": 2,
        "filtered": 0,
        "queued": 0,
        "dead_lettered": 3,
    }
    prompts = [item["ai_data"]["input"] for item in receiver.accepted("events/track")]
    assert sorted(prompts) == ["Hello", "Pricing \ufffd"]
    assert not receiver.callback_errors

    dead = {message["error"]: message["events"] for message in aws.drain_dlq()}
    assert dead == {
        "event is nested too deeply": [too_deep],
        "event holds a number with too many digits": [too_long],
        "event has no userId or anonymousId": [json.loads(blank_user)],
    }
