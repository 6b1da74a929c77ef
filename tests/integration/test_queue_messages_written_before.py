"""Messages written before the queue message became one shape are read and delivered as their
writer meant: webhook events mapped to Raindrop, Raindrop SDK items passed through to their
endpoint and project, the mirror's copies sent to Segment.

The bodies are tests/fixtures/queue_messages_v1, written by the code of that time; each is put
on the real queue as it is, then the retry worker or replay takes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from segment_raindrop.core.jobs import JobKind
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.core.queue_message import parse_message
from tests.support.mirror import MirrorEnv, env
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
    peek_dlq,
    run_retry_worker,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name

FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue_messages_v1"


def written_before(name: str) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return fixture


def put_as_written(env: MirrorEnv, name: str) -> None:
    """The old body on the queue it was written to, byte for byte."""
    fixture = written_before(name)
    resources = env.aws.resources
    url = resources.retry_queue_url if fixture["queue"] == "retry" else resources.dlq_url
    env.aws.sqs.send_message(QueueUrl=url, MessageBody=fixture["body"])


@pytest.mark.parametrize(
    ("name", "kind", "endpoint", "project"),
    [
        ("webhook_transient", JobKind.SEGMENT_TO_RAINDROP, None, None),
        ("webhook_rejected_project", JobKind.SEGMENT_TO_RAINDROP, None, "web-app"),
        ("retry_exhausted", JobKind.SEGMENT_TO_RAINDROP, None, None),
        ("webhook_omitted", JobKind.SEGMENT_TO_RAINDROP, None, None),
        ("mirror_raindrop_items", JobKind.RAINDROP_PASS_THROUGH, "events/track", "support-bot"),
        ("mirror_track_partial", JobKind.RAINDROP_PASS_THROUGH, "events/track_partial", None),
        ("mirror_segment", JobKind.MIRROR_TO_SEGMENT, None, None),
        ("replay_segment", JobKind.MIRROR_TO_SEGMENT, None, None),
    ],
)
def test_every_kind_of_older_message_reads_as_its_job(
    name: str, kind: JobKind, endpoint: str | None, project: str | None
) -> None:
    message = parse_message(written_before(name)["body"])
    assert (message.kind, message.endpoint, message.project) == (kind, endpoint, project)
    assert message.job.kind is kind
    assert message.source == written_before(name)["attributes"]["source"]


def test_an_older_webhook_message_is_mapped_and_sent_to_its_project(
    env: MirrorEnv, make_replayer: Any
) -> None:
    put_as_written(env, "webhook_rejected_project")
    summary = make_replayer().run()
    assert summary.messages_partly_replayed == 1
    [delivered] = env.receiver.accepted("events/track")
    assert delivered["event_id"] == "trace-7f3a"
    assert delivered["ai_data"]["input"] == "Hi \u00e9\u6f22 \U0001f600"
    [request] = env.receiver.requests_to("events/track")
    assert request.headers["x-raindrop-project-id"] == "web-app"
    # The event that was never JSON is invalid now too, and stays with the dead letters.
    [dead] = peek_dlq(env.aws)
    assert (dead.reason, dead.events, dead.project) == (
        FailureReason.INVALID,
        ["[unparsed"],
        "web-app",
    )
    assert dead.kind is JobKind.SEGMENT_TO_RAINDROP


def test_older_raindrop_items_pass_through_to_their_endpoint(env: MirrorEnv) -> None:
    put_as_written(env, "mirror_raindrop_items")
    run = run_retry_worker(env.aws)
    assert (run.received, run.failed) == (1, 0)
    [item] = env.receiver.accepted("events/track")
    assert [item] == parse_message(written_before("mirror_raindrop_items")["body"]).events
    [request] = env.receiver.requests_to("events/track")
    assert request.headers["x-raindrop-project-id"] == "support-bot"
    assert env.segment.accepted_events() == []  # the Segment copy had its own message


def test_an_older_segment_message_goes_to_segment(env: MirrorEnv) -> None:
    put_as_written(env, "mirror_segment")
    run = run_retry_worker(env.aws)
    assert (run.received, run.failed) == (1, 0)
    [event] = env.segment.accepted_events()
    assert (event["messageId"], event["properties"]["trace_id"]) == ("sr-abc", "ev-1")
    assert env.receiver.requests == []


def test_an_older_dead_letter_is_replayed_to_where_it_was_going(
    env: MirrorEnv, make_replayer: Any
) -> None:
    put_as_written(env, "replay_segment")
    put_as_written(env, "mirror_track_partial")
    summary = make_replayer().run()
    assert summary.ok, summary.errors
    assert summary.messages_replayed == 2
    [event] = env.segment.accepted_events()
    assert event["messageId"] == "sr-abc"
    [partial] = env.receiver.accepted("events/track_partial")
    assert (partial["event_id"], partial["is_pending"]) == ("ev-2", False)
    assert peek_dlq(env.aws) == []


def test_an_older_webhook_retry_message_is_delivered_by_the_retry_worker(env: MirrorEnv) -> None:
    put_as_written(env, "webhook_transient")
    run = run_retry_worker(env.aws)
    assert (run.received, run.failed) == (1, 0)
    assert [item["event_id"] for item in env.receiver.accepted("events/track")] == ["trace-7f3a"]
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
