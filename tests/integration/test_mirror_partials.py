"""Partial events of any size, and with the partials table failing, through the real mirror
handler (moto's DynamoDB and SQS over HTTP, the Raindrop and Segment stand-ins).

DynamoDB refuses items over 400 KB; Segment keeps 32 KB of an event. What is stored is cut to
fit, so large interactions still reach Segment with every field their patches set. A patch the
table cannot take is queued for the retry worker, never dropped.
"""

from __future__ import annotations

from typing import Any

import pytest

from segment_raindrop.adapters.partials import FINISHED_MARKER_SECONDS, PartialStore
from segment_raindrop.core.segment_copy import TRUNCATION_MARKER
from segment_raindrop_tools.local.aws import dynamodb_client, provision_partials_table
from segment_raindrop_tools.local.queues import peek_queue
from tests.support.mirror import MirrorEnv, env
from tests.support.queues import fast, fresh_runtimes, run_retry_worker

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes"]  # fixtures, imported for use by name


def _begin(event_id: str, prompt: str) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": "user-1", "event": "ai_interaction",
            "ai_data": {"model": "m", "input": prompt}, "is_pending": True}  # fmt: skip


def _finish(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": "user-1", "event": "ai_interaction",
            "ai_data": {"output": "done"}, "timestamp": "2026-11-29T10:00:05Z",
            "is_pending": False}  # fmt: skip


def _only_event(env: MirrorEnv, event_id: str) -> dict[str, Any]:
    [event] = [e for e in env.segment.accepted_events() if e["properties"]["trace_id"] == event_id]
    return event


def test_a_380_kb_begin_and_small_patches_reach_segment_with_their_properties(
    env: MirrorEnv,
) -> None:
    assert env.post("events/track_partial", _begin("big-1", "x" * 380_000)).status == 200
    for step in range(3):
        patch = {"event_id": "big-1", "properties": {f"step_{step}": step}, "is_pending": True}
        assert env.post("events/track_partial", patch).status == 200
    assert env.post("events/track_partial", _finish("big-1")).status == 200

    # Raindrop got every patch whole; Segment one track with every property, cut to 32 KB.
    [begin, *_] = env.receiver.accepted("events/track_partial")
    assert len(begin["ai_data"]["input"]) == 380_000
    event = _only_event(env, "big-1")
    assert event["event"] == "AI Chat Completed"
    assert {key: event["properties"][key] for key in ("step_0", "step_1", "step_2")} == {
        "step_0": 0,
        "step_1": 1,
        "step_2": 2,
    }
    assert event["properties"]["ai_data"]["output"] == "done"
    assert event["properties"]["ai_data"]["input"].endswith(TRUNCATION_MARKER)
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0


def test_a_420_kb_interaction_reaches_segment_as_a_track(env: MirrorEnv) -> None:
    # CJK text: 140,000 characters are 420 KB of UTF-8.
    assert env.post("events/track_partial", _begin("big-2", "长" * 140_000)).status == 200
    answer = env.post("events/track_partial", _finish("big-2"))
    assert answer.status == 200
    assert answer.body["mirrored"] == 1

    event = _only_event(env, "big-2")
    assert (event["type"], event["event"], event["userId"]) == (
        "track",
        "AI Chat Completed",
        "user-1",
    )
    assert event["timestamp"] == "2026-11-29T10:00:05Z"
    ai_data = event["properties"]["ai_data"]
    assert (ai_data["model"], ai_data["output"]) == ("m", "done")
    assert ai_data["input"].startswith("长" * 1000)
    assert ai_data["input"].endswith(TRUNCATION_MARKER)
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0


def test_patches_the_table_cannot_take_are_queued_and_merged_by_the_retry_worker(
    env: MirrorEnv,
) -> None:
    dynamodb = dynamodb_client(env.aws.endpoint_url, "us-east-1")
    dynamodb.delete_table(TableName=env.table)  # DynamoDB failing: ResourceNotFoundException

    assert env.post("events/track_partial", _begin("int-9", "a question")).status == 200
    pending = {"event_id": "int-9", "properties": {"tool": "search"}, "is_pending": True}
    assert env.post("events/track_partial", pending).status == 200
    answer = env.post("events/track_partial", _finish("int-9"))
    assert answer.status == 200
    assert answer.body["forwarded"] == 1  # Raindrop is not held up by the table

    assert env.segment.accepted_events() == []
    queued = peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url)
    assert [body["kind"] for body in queued] == ["partial_patches"] * 3
    assert [body["events"][0]["event_id"] for body in queued] == ["int-9"] * 3
    assert all("ResourceNotFoundException" in (body["error"] or "") for body in queued)

    provision_partials_table(endpoint_url=env.aws.endpoint_url, name=env.table)
    for _ in range(3):  # each poll takes what is visible; a message may come back once
        run_retry_worker(env.aws)
        if env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0:
            break
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
    assert env.aws.queue_depth(env.aws.resources.dlq_url) == 0
    # Whatever order the worker merged them in, Segment's latest copy holds all three.
    events = [e for e in env.segment.accepted_events() if e["properties"]["trace_id"] == "int-9"]
    latest = max(events, key=lambda e: e["properties"].get("mirror_revision", 1))
    assert latest["event"] == "AI Chat Completed"
    assert latest["properties"]["tool"] == "search"
    assert latest["properties"]["ai_data"] == {"model": "m", "input": "a question",
                                              "output": "done"}  # fmt: skip
    rows = dynamodb.scan(TableName=env.table)["Items"]
    assert [int(row["revision"]["N"]) >= 1 for row in rows] == [True]


def test_the_store_follows_up_late_patches_and_starts_afresh_after_expiry(env: MirrorEnv) -> None:
    # The table itself (moto over HTTP) with a clock the test moves.
    now = [1_000_000.0]
    store = PartialStore(
        dynamodb_client(env.aws.endpoint_url, "us-east-1"),
        env.table,
        ttl_seconds=3_600,
        clock=lambda: now[0],
    )
    assert store.add(_begin("s-1", "q")) is None
    first = store.add(_finish("s-1"))
    assert first is not None
    assert first.revision == 1
    # A late patch: the whole interaction again, as revision 2; its resend, revision 2 again.
    late = {"event_id": "s-1", "properties": {"late": True}, "is_pending": True}
    assert [
        (f.revision, f.item["properties"]) for f in (store.add(late), store.add(late)) if f
    ] == [
        (2, {"late": True}),
        (2, {"late": True}),
    ]
    # Once the finished marker expired, the same id is a new interaction.
    now[0] += FINISHED_MARKER_SECONDS + 1
    assert store.add(late) is None
    # And an open interaction left to expire is dropped when a patch finds it (counted, logged).
    now[0] += 3_601
    again = store.add(_finish("s-1"))
    assert again is not None
    assert (again.revision, "properties" in again.item) == (1, False)


def test_a_queued_pending_patch_is_merged_even_without_a_segment_write_key(
    env: MirrorEnv,
) -> None:
    dynamodb = dynamodb_client(env.aws.endpoint_url, "us-east-1")
    dynamodb.delete_table(TableName=env.table)
    assert env.post("events/track_partial", _begin("int-7", "a question")).status == 200
    provision_partials_table(endpoint_url=env.aws.endpoint_url, name=env.table)
    env.set_secret(segment_write_key="REPLACE_ME")

    run = run_retry_worker(env.aws)

    # Nothing to send to Segment yet, so nothing waits for the key: merged, and done.
    assert (run.received, run.failed) == (1, 0)
    [row] = dynamodb.scan(TableName=env.table)["Items"]
    assert (row["event_id"]["S"], row["revision"]["N"]) == ("int-7", "0")
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
