"""Good events are never dead-lettered beside bad ones: a group Raindrop refuses goes on being
split, by the webhook and then the retry worker, until every event is delivered or refused on
its own; only those refused on their own reach the dead-letter queue as ``rejected``."""

from __future__ import annotations

from typing import Any

import pytest

from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.queues import peek_messages
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.queues import bodies, fast, fresh_runtimes, peek_dlq, run_retry_worker

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["fast", "fresh_runtimes"]  # fixtures, imported for use by name

BAD = {3, 17, 18, 40, 41, 42, 77, 98}


def _refusing(bad: set[int]) -> Any:
    wanted = {f"trace-{n}" for n in bad}
    return lambda _endpoint, item: item.get("event_id") in wanted


def _drain(aws: AwsEnv, *, limit: int = 40) -> int:
    """Run the retry worker until the retry queue is empty; how many polls it took."""
    for poll in range(1, limit + 1):
        run = run_retry_worker(aws)
        if run.received == 0 and aws.queue_depth(aws.resources.retry_queue_url) == 0:
            return poll
    raise AssertionError("the retry queue did not empty")


def test_a_batch_with_several_bad_items_ends_with_only_those_dead_lettered(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(mapping={"enrich_from_context_traits": False})
    receiver.refuse_items(_refusing(BAD))
    events = [se.chat(n) for n in range(100)]
    answer = invoke_webhook(events, headers=bearer(aws))
    assert answer.status == 200
    # The webhook's own budget isolates some; the rest is queued to go on, none dead-lettered
    # except what Raindrop refused on its own.
    assert answer.body["dead_lettered"] <= len(BAD)
    queued = bodies(peek_messages(aws.sqs, aws.resources.retry_queue_url))
    assert {message.reason for message in queued} <= {FailureReason.ISOLATING}

    _drain(aws)

    delivered = {item["event_id"] for item in receiver.accepted("events/track")}
    assert delivered == {f"trace-{n}" for n in range(100) if n not in BAD}
    dead = peek_dlq(aws)
    assert {message.reason for message in dead} == {FailureReason.REJECTED}
    assert sorted(e["properties"]["trace_id"] for m in dead for e in m.events) == sorted(
        f"trace-{n}" for n in BAD
    )
    # And each was refused on its own before it was dead-lettered.
    alone = {
        r.items[0]["event_id"]
        for r in receiver.requests
        if r.status == 400 and r.items is not None and len(r.items) == 1
    }
    assert alone == {f"trace-{n}" for n in BAD}


def test_isolating_goes_on_past_the_retry_workers_receives(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # More bad items than receives before the redrive: the split still ends.
    aws.configure(mapping={"enrich_from_context_traits": False}, retry_max_attempts=2)
    bad = set(range(0, 100, 7))
    receiver.refuse_items(_refusing(bad))
    assert invoke_webhook([se.chat(n) for n in range(100)], headers=bearer(aws)).status == 200
    _drain(aws)
    delivered = {item["event_id"] for item in receiver.accepted("events/track")}
    assert delivered == {f"trace-{n}" for n in range(100) if n not in bad}
    dead = peek_dlq(aws)
    assert {message.reason for message in dead} == {FailureReason.REJECTED}
    assert len([e for m in dead for e in m.events]) == len(bad)
