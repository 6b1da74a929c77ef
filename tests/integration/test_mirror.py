"""The mirror handler (Raindrop SDK requests -> Raindrop and Segment) against moto's SQS,
Secrets Manager and DynamoDB over HTTP, the Raindrop stand-in and the Segment stand-in.

Every test accounts for the items: what Raindrop accepted, what Segment accepted and what is
left on the queues.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from segment_raindrop.adapters.partials import FINISHED_MARKER_SECONDS
from segment_raindrop.core.jobs import JobKind
from segment_raindrop.core.queue_message import QueueMessage
from segment_raindrop_tools.local.aws import (
    dynamodb_client,
)
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.queues import peek_queue
from tests.support.mirror import WRITE_KEY, MirrorEnv, env, track
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
    run_retry_worker,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def test_raindrop_gets_the_body_as_received_and_segment_the_mirror(env: MirrorEnv) -> None:
    # Odd spacing on purpose: the body must reach Raindrop byte for byte.
    raw = b'[ {"event_id":"ev-1", "user_id":"user-1","event":"ai_interaction",' + (
        b'"timestamp":"2026-11-29T10:00:00Z","ai_data":{"input":"hi","output":"yo"}} ]'
    )
    answer = env.post("events/track", None, raw=raw)

    assert answer.status == 200
    assert answer.body == {"received": 1, "forwarded": 1, "queued": 0, "dead_lettered": 0,
                           "mirrored": 1}  # fmt: skip
    [request] = env.receiver.requests_to("events/track")
    assert request.body == raw
    [event] = env.segment.accepted_events()
    assert event["event"] == "AI Chat Completed"
    assert event["properties"]["trace_id"] == "ev-1"
    assert event["properties"]["ai_data"] == {"input": "hi", "output": "yo"}
    assert event["context"]["library"]["name"] == "segment-raindrop"
    assert env.segment.batches[0].write_key == WRITE_KEY


def test_a_key_that_is_neither_the_raindrop_key_nor_the_token_is_refused(env: MirrorEnv) -> None:
    refused = env.post("events/track", [track(1)], key="not-the-key")
    assert refused.status == 401
    assert env.receiver.requests == []
    assert env.segment.batches == []

    # The stored Raindrop key is (the webhook token only when allowed: test_mirror_guarantees).
    accepted = env.post("events/track", [track(2)])
    assert accepted.status == 200
    assert [item["event_id"] for item in env.receiver.accepted("events/track")] == ["ev-2"]


def test_without_a_write_key_raindrop_still_gets_everything(env: MirrorEnv) -> None:
    env.set_secret(segment_write_key="REPLACE_ME")
    answer = env.post("events/track", [track(1), track(2)])
    assert answer.status == 200
    assert answer.body["forwarded"] == 2
    assert answer.body["mirrored"] == 0
    assert len(env.receiver.accepted("events/track")) == 2
    assert env.segment.batches == []


def test_partial_events_are_merged_and_mirrored_once_finished(env: MirrorEnv) -> None:
    patches = [
        {"event_id": "int-1", "user_id": "user-1", "event": "ai_interaction",
         "ai_data": {"input": "write a haiku", "model": "m"}, "is_pending": True},
        {"event_id": "int-1", "properties": {"step": 1}, "is_pending": True},
        {"event_id": "int-1", "ai_data": {"output": "an old pond"},
         "timestamp": "2026-11-29T10:00:05Z", "is_pending": False},
    ]  # fmt: skip
    for patch in patches[:2]:
        assert env.post("events/track_partial", patch).status == 200
        assert env.segment.batches == []  # nothing until the interaction is finished
    assert env.post("events/track_partial", patches[2]).status == 200

    # Raindrop merges them itself: each patch went as it was.
    assert env.receiver.accepted("events/track_partial") == patches
    [event] = env.segment.accepted_events()
    assert event["event"] == "AI Chat Completed"
    assert event["userId"] == "user-1"
    assert event["timestamp"] == "2026-11-29T10:00:05Z"
    assert event["properties"]["ai_data"] == {
        "input": "write a haiku",
        "model": "m",
        "output": "an old pond",
    }
    assert event["properties"]["step"] == 1
    assert "is_pending" not in event["properties"]
    [row] = dynamodb_client(env.aws.endpoint_url, "us-east-1").scan(TableName=env.table)["Items"]
    # What is left is the finished marker: revision 1 mirrored, soon expired (a late patch
    # arriving meanwhile is sent as a follow-up, never left in an open row).
    assert row["revision"] == {"N": "1"}
    assert int(row["expires_at"]["N"]) <= time.time() + FINISHED_MARKER_SECONDS + 1


def test_a_raindrop_outage_queues_the_items_and_the_retry_worker_delivers_them(
    env: MirrorEnv,
) -> None:
    env.receiver.outage(Fault(status=503))
    answer = env.post("signals/track", [{"event_id": "ev-1", "signal_name": "thumbs_up",
        "timestamp": "2026-11-29T10:00:00Z", "properties": {}}])  # fmt: skip
    assert answer.status == 200
    assert answer.body["queued"] == 1
    # Segment does not wait for Raindrop.
    assert len(env.segment.accepted_events()) == 1

    [body] = peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url)
    assert (body["kind"], body["endpoint"]) == ("raindrop_items", "signals/track")
    message = QueueMessage.model_validate(body)
    assert message.kind is JobKind.RAINDROP_PASS_THROUGH
    env.receiver.heal()
    run = run_retry_worker(env.aws)
    assert (run.received, run.failed) == (1, 0)
    assert [item["signal_name"] for item in env.receiver.accepted("signals/track")] == ["thumbs_up"]
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
    assert len(env.segment.accepted_events()) == 1


def test_a_segment_outage_queues_the_events_for_segment_and_the_retry_worker_sends_them(
    env: MirrorEnv,
) -> None:
    env.segment.outage(Fault(status=503))
    answer = env.post("users/identify", [{"user_id": "user-1", "traits": {"plan": "pro"}}])
    assert answer.status == 200
    assert answer.body["forwarded"] == 1  # Raindrop got it whatever Segment does
    assert env.segment.accepted_events() == []
    first_try = [event for batch in env.segment.batches for event in batch.events]
    [body] = peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url)
    assert body["kind"] == "mirror_to_segment"  # sent to Segment as they are

    env.segment.heal()
    run = run_retry_worker(env.aws)
    assert (run.received, run.failed) == (1, 0)
    [event] = env.segment.accepted_events()
    assert event["type"] == "identify"
    assert event["traits"] == {"plan": "pro"}
    # The same messageId as the first try: Segment drops a resend of a delivered one.
    assert {e["messageId"] for e in first_try} == {event["messageId"]}
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
    assert len(env.receiver.accepted("users/identify")) == 1


def test_bodies_raindrop_would_not_parse_are_refused(env: MirrorEnv) -> None:
    assert env.post("events/track", {"not": "an array"}).status == 400
    assert env.post("events/track_partial", [{"event_id": "x"}]).status == 400
    assert env.receiver.requests == []


def test_replay_delivers_dead_lettered_messages_of_both_kinds(
    env: MirrorEnv, make_replayer: Any
) -> None:
    for destination, kind, endpoint, event in (
        ("segment", "segment_events", None, {"type": "identify", "userId": "u", "traits": {},
            "messageId": "sr-1", "context": {"library": {"name": "segment-raindrop"}}}),
        ("raindrop", "raindrop_items", "users/identify", {"user_id": "u", "traits": {"a": 1}}),
    ):  # fmt: skip
        message = {
            "format": 1,
            "reason": "transient",
            "first_failure_at": "2026-11-29T10:00:00.000Z",
            "last_failure_at": "2026-11-29T10:00:00.000Z",
            "events": [event],
            "destination": destination,
            "kind": kind,
            **({"endpoint": endpoint} if endpoint else {}),
        }
        env.aws.sqs.send_message(
            QueueUrl=env.aws.resources.dlq_url, MessageBody=json.dumps(message)
        )

    summary = make_replayer().run()

    assert summary.messages_replayed == 2
    assert [event["messageId"] for event in env.segment.accepted_events()] == ["sr-1"]
    assert env.receiver.accepted("users/identify") == [{"user_id": "u", "traits": {"a": 1}}]
    assert env.aws.queue_depth(env.aws.resources.dlq_url) == 0


def test_segments_circuit_breaker_logs_name_segment(
    env: MirrorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env.aws.configure(delivery={"breaker_failure_threshold": 2})
    env.segment.outage(Fault(status=503))
    for n in range(3):
        assert env.post("events/track", [track(n)]).status == 200
    changes = [
        record.__dict__
        for record in caplog.records
        if record.getMessage() == "circuit breaker changed state"
    ]
    assert changes
    assert {(change["receiver"], change["breaker_to"]) for change in changes} == {
        ("segment", "open")
    }
