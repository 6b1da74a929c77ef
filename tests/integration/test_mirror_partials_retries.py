"""Partial patches applied again (a retried ``partial_patches`` message, a resend by the SDK),
late and stale, through the real mirror handler and retry worker, moto's DynamoDB and SQS over
HTTP and the Segment stand-in; the store's own behaviour against moto's table with a clock the
test moves.

A patch is applied once: a retry changes nothing and is sent to Segment with the same
``messageId``. The finished marker outlives the retry queue's retention, and a pending patch
that comes after the finish only fills what the finished interaction lacks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from segment_raindrop.adapters.partials import FINISHED_MARKER_SECONDS, PartialStore
from segment_raindrop.core.contract import RETRY_RETENTION_DAYS
from segment_raindrop_tools.local.aws import dynamodb_client, provision_partials_table
from segment_raindrop_tools.local.faults import Fault
from tests.support.mirror import MirrorEnv, env
from tests.support.queues import fast, fresh_runtimes, run_retry_worker

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes"]  # fixtures, imported for use by name

ATTACHMENT = {"type": "text", "value": "doc", "role": "context"}


def _whole(event_id: str) -> dict[str, Any]:
    """An interaction sent whole: one finishing patch with an attachment."""
    return {"event_id": event_id, "user_id": "user-1", "event": "ai_interaction",
            "ai_data": {"model": "m", "input": "q", "output": "done"},
            "attachments": [ATTACHMENT], "is_pending": False}  # fmt: skip


def _begin(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": "user-1", "event": "ai_interaction",
            "ai_data": {"model": "m", "input": "q"}, "is_pending": True}  # fmt: skip


def _store(env: MirrorEnv, now: list[float], *, ttl_seconds: int = 3_600) -> PartialStore:
    return PartialStore(
        dynamodb_client(env.aws.endpoint_url, "us-east-1"),
        env.table,
        ttl_seconds=ttl_seconds,
        clock=lambda: now[0],
    )


def _row(env: MirrorEnv, event_id: str) -> tuple[int, dict[str, Any]]:
    dynamodb = dynamodb_client(env.aws.endpoint_url, "us-east-1")
    row = dynamodb.get_item(TableName=env.table, Key={"event_id": {"S": event_id}})["Item"]
    return int(row["revision"]["N"]), json.loads(row["doc"]["S"])


def test_a_retried_partial_patches_message_is_merged_once_and_sent_with_one_message_id(
    env: MirrorEnv,
) -> None:
    # No breaker: every poll tries Segment, so the patch is retried as often as it fails.
    env.aws.configure(delivery={"breaker_failure_threshold": 0})
    dynamodb = dynamodb_client(env.aws.endpoint_url, "us-east-1")
    dynamodb.delete_table(TableName=env.table)
    assert env.post("events/track_partial", _whole("r-1")).status == 200  # deferred
    provision_partials_table(endpoint_url=env.aws.endpoint_url, name=env.table)
    env.segment.outage(Fault(status=503))
    for _ in range(3):  # merged, Segment fails, the message comes back: three times
        assert run_retry_worker(env.aws).failed == 1
    env.segment.heal()
    for _ in range(3):
        run_retry_worker(env.aws)
        if env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0:
            break
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0

    tried = [event for batch in env.segment.batches for event in batch.events]
    assert len(tried) > 3  # each poll tries Segment (more than once within its budget)
    assert len({event["messageId"] for event in tried}) == 1
    [accepted] = env.segment.accepted_events()
    assert "mirror_revision" not in accepted["properties"]
    assert accepted["properties"]["attachments"] == [ATTACHMENT]
    revision, state = _row(env, "r-1")
    assert (revision, state["attachments"]) == (1, [ATTACHMENT])


def test_a_resent_pending_patch_is_merged_once(env: MirrorEnv) -> None:
    # The SDK resends a patch it got a 5xx for: its attachment is not doubled.
    pending = {"event_id": "r-2", "attachments": [ATTACHMENT], "is_pending": True}
    for patch in (_begin("r-2"), pending, pending):
        assert env.post("events/track_partial", patch).status == 200
    answer = env.post("events/track_partial", {"event_id": "r-2", "is_pending": False,
                                               "ai_data": {"output": "done"}})  # fmt: skip
    assert answer.body["mirrored"] == 1
    [event] = env.segment.accepted_events()
    assert event["properties"]["attachments"] == [ATTACHMENT]


def test_a_finishing_patch_retried_after_days_finds_its_finished_marker(env: MirrorEnv) -> None:
    now = [1_000_000.0]
    store = _store(env, now)
    assert store.add(_begin("m-1")) is None
    finish = {"event_id": "m-1", "ai_data": {"output": "done"}, "is_pending": False}
    first = store.add(finish)
    assert first is not None
    # Retried from the retry queue just before its retention ends: the same interaction.
    now[0] += RETRY_RETENTION_DAYS * 86_400 - 60
    again = store.add(finish)
    assert again is not None
    assert (again.revision, again.item) == (1, first.item)
    assert again.item["event"] == "ai_interaction"
    assert FINISHED_MARKER_SECONDS >= RETRY_RETENTION_DAYS * 86_400
    # With a TTL longer than that, the marker lives as long as an open row.
    now[0] = 2_000_000.0
    store = _store(env, now, ttl_seconds=10 * 86_400)
    assert store.add(_begin("m-2")) is None
    first = store.add({**finish, "event_id": "m-2"})
    now[0] += 10 * 86_400 - 60
    again = store.add({**finish, "event_id": "m-2"})
    assert first is not None
    assert again is not None
    assert (again.revision, again.item) == (1, first.item)


def test_a_pending_patch_applied_after_the_finish_only_fills_gaps(env: MirrorEnv) -> None:
    now = [1_000_000.0]
    store = _store(env, now)
    assert store.add({**_begin("e-1"), "attachments": [ATTACHMENT]}) is None
    final = {"event_id": "e-1", "ai_data": {"output": "final answer"},
             "properties": {"tokens": 12}, "is_pending": False}  # fmt: skip
    first = store.add(final)
    assert first is not None
    assert first.revision == 1
    # A pending patch deferred before the finish, applied after it: older content.
    stale = {"event_id": "e-1", "ai_data": {"output": "final ans"}, "properties": {"tokens": 7},
             "attachments": [ATTACHMENT], "is_pending": True}  # fmt: skip
    same = store.add(stale)
    assert same is not None
    assert (same.revision, same.item) == (1, first.item)
    # One that adds what the finish lacks: a follow-up with it, the final values kept.
    more = {"event_id": "e-1", "ai_data": {"convo_id": "c-1", "output": "final a"},
            "properties": {"tool": "search", "tokens": 3},
            "attachments": [ATTACHMENT, {"type": "code", "value": "x = 1"}],
            "is_pending": True}  # fmt: skip
    follow_up = store.add(more)
    assert follow_up is not None
    assert follow_up.revision == 2
    item = follow_up.item
    assert item["ai_data"] == {"model": "m", "input": "q", "output": "final answer",
                               "convo_id": "c-1"}  # fmt: skip
    assert item["properties"] == {"tokens": 12, "tool": "search"}
    assert item["attachments"] == [ATTACHMENT, {"type": "code", "value": "x = 1"}]
    # A second finishing patch is the last word again: its values win.
    last = store.add({"event_id": "e-1", "ai_data": {"output": "corrected"},
                      "is_pending": False})  # fmt: skip
    assert last is not None
    assert (last.revision, last.item["ai_data"]["output"]) == (3, "corrected")
