"""Per-project routing (POST /segment/{project}) through the real handlers, moto and the
recording receiver: the project header every Raindrop request carried, the 404s, and the
project kept on the queues so the retry worker and replay deliver to the same one."""

from __future__ import annotations

from typing import Any

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.queues import (
    assert_delivered_once,
    bodies,
    fast,
    fresh_runtimes,
    make_replayer,
    put_message,
    run_retry_worker,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name

HEADER = "X-Raindrop-Project-Id"


def _projects(receiver: RaindropReceiver) -> list[str | None]:
    """The project header of every request Raindrop received (all values of each)."""
    seen: list[str | None] = []
    for request in receiver.requests:
        values = request.headers.get_all(HEADER) or [None]
        seen.extend(values)
    return seen


def test_every_item_of_a_project_request_goes_to_that_project(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(delivery={"project_id": "production", "chunk_max_items": 10})
    events = se.mixed(40)  # tracks, feedback and identifies: several endpoints and chunks

    response = invoke_webhook(events, headers=bearer(aws), path="/segment/team-a")

    assert response.status == 200, response.body
    assert response.body["forwarded"] == 36
    assert len(receiver.requests) > 3
    # One header per request, naming the path's project, never the configured default.
    assert _projects(receiver) == ["team-a"] * len(receiver.requests)


def test_plain_segment_path_keeps_the_configured_project(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(delivery={"project_id": "production"})
    # A project request first: the shared client must not keep its project for the next one.
    assert invoke_webhook([se.chat(1)], headers=bearer(aws), path="/segment/team-a").status == 200
    assert invoke_webhook([se.chat(2)], headers=bearer(aws)).status == 200

    assert _projects(receiver) == ["team-a", "production"]


def test_no_project_header_without_a_project(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    assert invoke_webhook([se.chat(1)], headers=bearer(aws)).status == 200
    assert _projects(receiver) == [None]


@pytest.mark.parametrize(
    "slug",
    ["Team-A", "-team", "team-", "team_a", "a" * 64, "team%20a", "t.a"],
)
def test_a_malformed_slug_is_not_found(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, slug: str
) -> None:
    response = invoke_webhook([se.chat(1)], headers=bearer(aws), path=f"/segment/{slug}")

    assert response.status == 404
    assert receiver.requests == []
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_the_longest_slug_is_accepted(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    slug = "a" + "-" * 61 + "z"
    assert len(slug) == 63
    response = invoke_webhook([se.chat(1)], headers=bearer(aws), path=f"/segment/{slug}")
    assert response.status == 200
    assert _projects(receiver) == [slug]


def test_with_an_allow_list_other_slugs_are_not_found(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(delivery={"projects": ["team-a", "team-b"]})

    typo = invoke_webhook([se.chat(1)], headers=bearer(aws), path="/segment/team-c")
    allowed = invoke_webhook([se.chat(2)], headers=bearer(aws), path="/segment/team-b")

    assert typo.status == 404
    assert allowed.status == 200
    assert _projects(receiver) == ["team-b"]
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_strangers_cannot_probe_the_allow_list(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(delivery={"projects": ["team-a"]})
    stranger = {"Authorization": "Bearer not-the-token"}

    listed = invoke_webhook([se.chat(1)], headers=stranger, path="/segment/team-a")
    unlisted = invoke_webhook([se.chat(1)], headers=stranger, path="/segment/team-z")

    assert listed.status == unlisted.status == 401
    assert receiver.requests == []


def test_retry_worker_delivers_to_the_project_the_webhook_queued_for(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(delivery={"project_id": "production"})
    receiver.outage(Fault(status=503))

    response = invoke_webhook([se.chat(1), se.chat(2)], headers=bearer(aws), path="/segment/team-a")

    assert response.status == 200
    assert response.body["queued"] == 2
    [message] = bodies(
        aws.sqs.receive_message(QueueUrl=aws.resources.retry_queue_url, VisibilityTimeout=0).get(
            "Messages", []
        )
    )
    assert message.project == "team-a"

    receiver.reset()
    run = run_retry_worker(aws)

    assert (run.received, run.failed) == (1, 0)
    assert_delivered_once(receiver, ["trace-1", "trace-2"])
    assert _projects(receiver) == ["team-a"]


def test_retry_worker_keeps_the_project_when_it_requeues(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    put_message(aws, QueueTarget.RETRY, [se.chat(1), se.chat(2)], project="team-a")
    # The first event's chunk fails, the second's is delivered: a new retry message holds one.
    aws.configure(delivery={"chunk_max_items": 1, "concurrency": 1, "max_attempts": 1})
    receiver.inject(Fault(status=503), endpoint="events/track")

    run = run_retry_worker(aws)

    assert (run.received, run.failed) == (1, 0)
    [message] = bodies(
        aws.sqs.receive_message(QueueUrl=aws.resources.retry_queue_url).get("Messages", [])
    )
    assert message.project == "team-a"
    assert len(message.events) == 1
    assert set(_projects(receiver)) == {"team-a"}


def test_replay_delivers_each_message_to_its_own_project(
    aws: AwsEnv, receiver: RaindropReceiver, make_replayer: Any
) -> None:
    aws.configure(delivery={"project_id": "production"})
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)], project="team-a")
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(2)])  # absent: the default project

    summary = make_replayer().run()

    assert summary.ok
    assert summary.messages_replayed == 2
    by_event = {
        request.items[0]["event_id"]: request.headers.get(HEADER)
        for request in receiver.requests
        if request.items
    }
    assert by_event == {"trace-1": "team-a", "trace-2": "production"}
