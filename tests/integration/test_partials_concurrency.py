"""Partial patches of one interaction posted at once by two OS processes, each through the real
mirror handler, against moto's DynamoDB in server mode, the Raindrop stand-in and the Segment
stand-in (as Raindrop's Go SDK does: pending patches from a ticker, the finish from the caller).

Every pending patch must be in Segment's copy of its interaction (the finished event, or a
follow-up revision when it came after the finish), and no open row may be left behind.
"""

from __future__ import annotations

import json
import multiprocessing
from typing import Any

import pytest

from segment_raindrop.handlers import raindrop_sdk
from segment_raindrop.service.runtime import build_runtime
from segment_raindrop_tools.local.apigw import LocalContext, rest_proxy_event
from segment_raindrop_tools.local.aws import dynamodb_client, forwarder_clients
from tests.support.mirror import MirrorEnv, env
from tests.support.queues import fast, fresh_runtimes

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes"]  # fixtures, imported for use by name

INTERACTIONS = 60


def _begin(n: int) -> dict[str, Any]:
    return {"event_id": f"int-{n}", "user_id": f"user-{n}", "event": "ai_interaction",
            "ai_data": {"model": "m", "input": f"question {n}"}, "is_pending": True}  # fmt: skip


def _pending(n: int) -> dict[str, Any]:
    return {"event_id": f"int-{n}", "properties": {"tool_calls": n}, "is_pending": True}


def _finish(n: int) -> dict[str, Any]:
    return {"event_id": f"int-{n}", "user_id": f"user-{n}", "event": "ai_interaction",
            "ai_data": {"output": f"answer {n}"}, "is_pending": False}  # fmt: skip


def _post_all(
    config: Any, aws_url: str, key: str, patches: list[dict[str, Any]], start: Any, out: Any
) -> None:
    """A child process: its own mirror runtime (moto at ``aws_url``), posting ``patches`` one
    by one through the handler, each when the other process is ready to post its patch of the
    same interaction (``start``, a barrier); the statuses go to ``out``."""
    clients = forwarder_clients(aws_url, "us-east-1")
    raindrop_sdk.runtime.use(lambda: build_runtime(config, source="mirror", aws=clients))
    raindrop_sdk.runtime.get()  # built before the race starts
    statuses = []
    for patch in patches:
        start.wait(30)
        event = rest_proxy_event(
            method="POST",
            path="/raindrop/v1/events/track_partial",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            body=json.dumps(patch).encode(),
        )
        statuses.append(raindrop_sdk.handler(event, LocalContext(timeout_seconds=10))["statusCode"])
    out.put(statuses)


def test_pending_and_finishing_patches_posted_at_once_all_reach_segment(env: MirrorEnv) -> None:
    for n in range(INTERACTIONS):
        assert env.post("events/track_partial", _begin(n)).status == 200

    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(2), spawn.Queue()
    key = env.aws.raindrop_api_key
    children = [
        spawn.Process(
            target=_post_all,
            args=(env.aws.config, env.aws.endpoint_url, key, patches, start, out),
        )
        for patches in (
            [_pending(n) for n in range(INTERACTIONS)],
            [_finish(n) for n in range(INTERACTIONS)],
        )
    ]
    for child in children:
        child.start()
    statuses = [out.get(timeout=120) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0

    assert [status for batch in statuses for status in batch] == [200] * (2 * INTERACTIONS)
    assert len(env.receiver.accepted("events/track_partial")) == 3 * INTERACTIONS
    # Segment's copy of each interaction: its latest revision holds every patch.
    latest: dict[str, dict[str, Any]] = {}
    for event in env.segment.accepted_events():
        properties = event["properties"]
        known = latest.get(properties["trace_id"])
        if known is None or properties.get("mirror_revision", 1) >= known["properties"].get(
            "mirror_revision", 1
        ):
            latest[properties["trace_id"]] = event
    assert sorted(latest) == sorted(f"int-{n}" for n in range(INTERACTIONS))
    for n in range(INTERACTIONS):
        event = latest[f"int-{n}"]
        assert event["userId"] == f"user-{n}"
        assert event["properties"]["tool_calls"] == n, event["properties"]
        assert event["properties"]["ai_data"] == {"model": "m", "input": f"question {n}",
                                                  "output": f"answer {n}"}  # fmt: skip
    # No orphans: every row is a finished marker (which expires on its own), none still open.
    rows = dynamodb_client(env.aws.endpoint_url, "us-east-1").scan(TableName=env.table)["Items"]
    assert len(rows) == INTERACTIONS
    assert all(int(row["revision"]["N"]) >= 1 for row in rows)
    # Nothing was deferred to the queue: conflicts were settled by merging again.
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
