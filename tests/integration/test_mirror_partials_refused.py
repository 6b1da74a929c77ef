"""Partial patches the partials table can never take, and interactions that cannot be
finished, through the real mirror handler against moto's DynamoDB and SQS over HTTP, the
Raindrop and Segment stand-ins.

What retrying cannot fix is not queued for the retry worker (it would only reach the
dead-letter queue days later): it is not mirrorable, counted and logged with why. What is
queued for the table is not counted as mirrored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.contract import Metric
from segment_raindrop.core.jobs import JobKind
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.core.segment_copy import TRUNCATION_MARKER
from segment_raindrop_tools.local.aws import dynamodb_client
from segment_raindrop_tools.local.queues import peek_queue
from tests.support.mirror import MirrorEnv, env
from tests.support.queues import (
    fast,
    fresh_runtimes,
    message_header,
    peek_dlq,
    run_retry_worker,
    writer,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes"]  # fixtures, imported for use by name


def _whole(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": "user-1", "event": "ai_interaction",
            "ai_data": {"model": "m", "input": "q", "output": "done"},
            "is_pending": False}  # fmt: skip


def _queued_patches(env: MirrorEnv) -> list[dict[str, Any]]:
    messages = peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url)
    return [body for body in messages if body["kind"] == "partial_patches"]


def _logged(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    """The log records with ``message`` (or starting with it), as their fields."""
    return [
        {**record.__dict__, "message": record.getMessage()}
        for record in caplog.records
        if record.getMessage().startswith(message)
    ]


def _published(output: str, metric: Metric) -> float:
    values = [
        json.loads(line).get(metric.value)
        for line in output.splitlines()
        if line.startswith("{") and metric.value in line
    ]
    return sum(sum(v) if isinstance(v, list) else v for v in values if v is not None)


@pytest.mark.parametrize(
    ("event_id", "reason"),
    [
        ("", "partial event has no event_id"),
        ("e" * 1_025, "partial event's event_id is over 1024 bytes"),
    ],
)
def test_a_patch_with_an_empty_or_over_long_event_id_is_not_mirrorable_nor_queued(
    env: MirrorEnv, caplog: pytest.LogCaptureFixture, event_id: str, reason: str
) -> None:
    answer = env.post("events/track_partial", _whole(event_id))
    assert answer.status == 200
    assert answer.body["mirrored"] == 0
    assert _queued_patches(env) == []
    assert env.segment.batches == []
    [line] = _logged(caplog, "item not mirrored")
    assert line["reason"] == reason
    assert line["event_id"] == event_id[:200]


def test_a_patch_the_table_refuses_for_good_is_not_mirrorable_nor_queued(
    env: MirrorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # A table whose key is a number: DynamoDB answers every string key ValidationException.
    dynamodb = dynamodb_client(env.aws.endpoint_url, "us-east-1")
    dynamodb.delete_table(TableName=env.table)
    dynamodb.create_table(
        TableName=env.table,
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    answer = env.post("events/track_partial", _whole("v-1"))
    assert (answer.status, answer.body["forwarded"], answer.body["mirrored"]) == (200, 1, 0)
    assert _queued_patches(env) == []
    [line] = _logged(caplog, "item not mirrored")
    assert (line["event_id"], line["code"]) == ("v-1", "ValidationException")


def test_lone_surrogates_are_measured_as_stored_and_the_interaction_reaches_segment(
    env: MirrorEnv,
) -> None:
    # 100,000 lone surrogates: 600 KB as the table stores them (escapes), 100 KB as UTF-8.
    body = ('{"event_id":"c-1","user_id":"u","event":"ai_interaction","is_pending":true,'
            '"ai_data":{"input":"' + "\\udc00" * 100_000 + '"}}').encode()  # fmt: skip
    assert env.post("events/track_partial", None, raw=body).status == 200
    answer = env.post("events/track_partial", {"event_id": "c-1", "is_pending": False,
                                               "ai_data": {"output": "done"}})  # fmt: skip
    assert answer.body["mirrored"] == 1
    assert _queued_patches(env) == []
    [event] = env.segment.accepted_events()
    ai_data = event["properties"]["ai_data"]
    assert (ai_data["output"], ai_data["input"].endswith(TRUNCATION_MARKER)) == ("done", True)


def test_patches_queued_for_the_table_are_not_counted_as_mirrored(env: MirrorEnv) -> None:
    dynamodb_client(env.aws.endpoint_url, "us-east-1").delete_table(TableName=env.table)
    answer = env.post("events/track_partial", _whole("d-1"))
    assert (answer.status, answer.body["forwarded"], answer.body["mirrored"]) == (200, 1, 0)
    assert [body["events"][0]["event_id"] for body in _queued_patches(env)] == ["d-1"]


def test_a_finish_with_nothing_of_its_start_is_counted_and_logged_as_lost(
    env: MirrorEnv, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    finish = {"event_id": "l-1", "ai_data": {"output": "done"}, "is_pending": False}
    answer = env.post("events/track_partial", finish)
    assert (answer.status, answer.body["mirrored"]) == (200, 0)
    output = capsys.readouterr().out
    [line] = _logged(caplog, "interaction lost")
    assert line["event_id"] == "l-1"
    assert _published(output, Metric.MIRROR_PARTIALS_LOST) == 1
    assert env.segment.batches == []


def test_a_queued_patch_that_can_never_be_merged_is_dead_lettered_not_retried(
    env: MirrorEnv,
) -> None:
    # Queued before such patches were refused: the retry worker settles it on its first try.
    header = message_header(
        FailureReason.TRANSIENT,
        kind=JobKind.PARTIAL_PATCHES,
        error="reading a partial failed (ValidationException)",
        source="mirror",
    )
    assert writer(env.aws).send(QueueTarget.RETRY, [(header, [(0, _whole(""))])]).messages == 1
    run = run_retry_worker(env.aws)
    assert (run.received, run.failed) == (1, 0)
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
    [dead] = peek_dlq(env.aws)
    assert (dead.kind, dead.error) == (JobKind.PARTIAL_PATCHES, "partial event has no event_id")
