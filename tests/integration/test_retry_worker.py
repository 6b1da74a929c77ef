"""The retry worker against moto's queues (over HTTP) and the real receiver.

Each test drives ``retry.handler`` the way Lambda's SQS event source does: real messages are
received from moto's retry queue (which has the stack's redrive policy), handed over as an SQS
event, and the ones not reported as batch item failures are deleted. Every test checks the
accounting: the receiver and both queues hold exactly the events expected.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.queues import drain_messages, peek_messages
from segment_raindrop_tools.local.raindrop_items import check_raindrop_items
from tests.support.queues import (
    FIRST_FAILURE,
    assert_delivered_once,
    bodies,
    fast,
    fresh_runtimes,
    put_message,
    run_retry_worker,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["fast", "fresh_runtimes"]  # fixtures, imported for use by name


def _depth(aws: Any, url: str) -> int:
    return aws.queue_depth(url)


def _retry_url(aws: Any) -> str:
    return str(aws.resources.retry_queue_url)


def _dlq_url(aws: Any) -> str:
    return str(aws.resources.dlq_url)


def test_heals_a_transient_outage(aws: Any, receiver: Any) -> None:
    events = [se.chat(1), se.chat(2), se.chat(3)]
    put_message(aws, QueueTarget.RETRY, events)
    receiver.outage(Fault(status=503))

    first = run_retry_worker(aws)

    assert (first.received, first.failed) == (1, 1)
    assert receiver.accepted() == []
    assert receiver.requests, "the worker must have tried Raindrop"
    assert _depth(aws, _retry_url(aws)) == 1  # still on the retry queue, unchanged
    assert _depth(aws, _dlq_url(aws)) == 0

    receiver.heal()
    second = run_retry_worker(aws)

    assert (second.received, second.failed) == (1, 0)
    assert_delivered_once(receiver, ["trace-1", "trace-2", "trace-3"])
    assert _depth(aws, _retry_url(aws)) == 0
    assert _depth(aws, _dlq_url(aws)) == 0


def test_a_failed_message_comes_back_after_its_back_off(
    aws: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.configure(retry_base_delay_seconds=2)  # first receive: 1 to 2 s
    put_message(aws, QueueTarget.RETRY, [se.chat(1)])
    receiver.outage()

    assert run_retry_worker(aws).failed == 1

    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=_retry_url(aws),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    # The queue's own visibility timeout is 360 s: seeing it again this soon proves the
    # worker set the visibility from the receive count.
    receiver.heal()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        run = run_retry_worker(aws)
        if run.received:
            assert run.failed == 0
            break
        time.sleep(0.2)
    else:
        pytest.fail("the message did not come back after its back-off")
    assert_delivered_once(receiver, ["trace-1"])
    assert _depth(aws, _retry_url(aws)) == 0


def test_partial_failure_requeues_only_the_failing_events(aws: Any, receiver: Any) -> None:
    events = [se.chat(1), se.identify(2), se.chat(3)]
    put_message(aws, QueueTarget.RETRY, events, attempts=3, request_id="req-42")
    receiver.outage(Fault(status=500), endpoint="users/identify")

    run = run_retry_worker(aws)

    assert (run.received, run.failed) == (1, 0)  # the original is done with
    assert_delivered_once(receiver, ["trace-1", "trace-3"])
    assert receiver.accepted("users/identify") == []
    requeued = bodies(drain_messages(aws.sqs, _retry_url(aws)))
    assert len(requeued) == 1
    message = requeued[0]
    assert message.events == [se.identify(2)]
    assert message.reason in (FailureReason.TRANSIENT, FailureReason.DEADLINE)
    assert message.status == 500
    assert message.retries == 1  # 0 before + this receive
    assert message.attempts > 3  # accumulated: 3 before + this invocation's attempts
    assert message.first_failure_at == FIRST_FAILURE
    assert message.request_id == "req-42"
    assert message.source == "retry"
    assert _depth(aws, _dlq_url(aws)) == 0

    # The re-queued message heals like any other.
    receiver.heal()
    put_message(aws, QueueTarget.RETRY, message.events, retries=message.retries)
    assert run_retry_worker(aws).failed == 0
    assert [item["user_id"] for item in receiver.accepted("users/identify")] == ["user-2"]
    assert _depth(aws, _retry_url(aws)) == 0


def test_rejected_events_go_to_the_dead_letter_queue_with_their_reason(
    aws: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse_trace_2(endpoint: str, items: list[Any]) -> str | None:
        if any(item.get("event_id") == "trace-2" for item in items):
            return "event trace-2 is refused"
        return check_raindrop_items(endpoint, items)

    receiver = receiver_factory(api_key=aws.raindrop_api_key, validator=refuse_trace_2)
    aws.configure(delivery={"raindrop_api_url": receiver.url})
    put_message(aws, QueueTarget.RETRY, [se.chat(1), se.chat(2), se.chat(3)], attempts=2)

    run = run_retry_worker(aws)

    assert run.failed == 0
    assert_delivered_once(receiver, ["trace-1", "trace-3"])
    assert _depth(aws, _retry_url(aws)) == 0
    dead = bodies(drain_messages(aws.sqs, _dlq_url(aws)))
    assert len(dead) == 1
    assert dead[0].events == [se.chat(2)]
    assert dead[0].reason is FailureReason.REJECTED
    assert dead[0].status == 400
    assert "trace-2 is refused" in (dead[0].error or "")
    assert dead[0].attempts == 3  # 2 before + 1 (a 400 is not retried)
    assert dead[0].first_failure_at == FIRST_FAILURE


def test_exhausted_messages_move_to_the_dead_letter_queue_by_redrive(
    aws: Any, receiver: Any
) -> None:
    put_message(aws, QueueTarget.RETRY, [se.chat(1), se.chat(2)])
    original = peek_messages(aws.sqs, _retry_url(aws))[0]["Body"]  # counts as receive 1
    receiver.outage()

    receives = 0
    for _ in range(20):
        run = run_retry_worker(aws)
        if not run.received:
            break
        assert run.failed == 1
        receives += 1
    # maxReceiveCount is 8; the peek above was the first receive.
    assert receives == aws.resources.retry_max_receives - 1
    assert _depth(aws, _retry_url(aws)) == 0
    dead = drain_messages(aws.sqs, _dlq_url(aws))
    assert [message["Body"] for message in dead] == [original]  # untouched
    assert receiver.accepted() == []


def test_partial_failure_with_retries_used_up_goes_to_the_dead_letter_queue(
    aws: Any, receiver: Any
) -> None:
    retries = aws.resources.retry_max_receives - 1
    put_message(aws, QueueTarget.RETRY, [se.chat(1), se.identify(2)], retries=retries)
    receiver.outage(endpoint="users/identify")

    run = run_retry_worker(aws)

    assert run.failed == 0
    assert_delivered_once(receiver, ["trace-1"])
    assert _depth(aws, _retry_url(aws)) == 0
    dead = bodies(drain_messages(aws.sqs, _dlq_url(aws)))
    assert len(dead) == 1
    assert dead[0].events == [se.identify(2)]
    assert dead[0].reason is FailureReason.TRANSIENT
    assert dead[0].retries == retries + 1
    assert dead[0].first_failure_at == FIRST_FAILURE


def test_a_message_that_is_not_ours_reaches_the_dead_letter_queue_untouched(
    aws: Any, receiver: Any
) -> None:
    good = [se.chat(1)]
    put_message(aws, QueueTarget.RETRY, good)
    aws.sqs.send_message(QueueUrl=_retry_url(aws), MessageBody='{"hello": "world"}')

    for _ in range(20):
        if not run_retry_worker(aws).received:
            break

    assert_delivered_once(receiver, ["trace-1"])
    assert _depth(aws, _retry_url(aws)) == 0
    dead = drain_messages(aws.sqs, _dlq_url(aws))
    assert [message["Body"] for message in dead] == ['{"hello": "world"}']


def test_nothing_is_lost_when_sqs_is_down_while_requeueing(
    aws: Any, receiver: Any, sqs_unreachable: str
) -> None:
    put_message(aws, QueueTarget.RETRY, [se.chat(1), se.identify(2)])
    original = peek_messages(aws.sqs, _retry_url(aws))[0]["Body"]
    receiver.outage(endpoint="users/identify")

    run = run_retry_worker(aws)

    assert (run.received, run.failed) == (1, 1)
    assert_delivered_once(receiver, ["trace-1"])  # delivered before queueing failed
    # The original is still on the retry queue (in flight until its visibility ends).
    assert _depth(aws, _retry_url(aws)) == 1
    assert _depth(aws, _dlq_url(aws)) == 0
    in_flight = aws.sqs.receive_message(
        QueueUrl=_retry_url(aws), VisibilityTimeout=0, WaitTimeSeconds=0
    ).get("Messages", [])
    assert in_flight == []  # not visible: the worker could not even change its visibility
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=_retry_url(aws), AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert json.loads(original)["events"] == [se.chat(1), se.identify(2)]


def test_a_placeholder_key_keeps_the_message(aws: Any, receiver: Any) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": "REPLACE_ME"}),
    )
    put_message(aws, QueueTarget.RETRY, [se.chat(1)])

    run = run_retry_worker(aws)

    assert (run.received, run.failed) == (1, 1)
    assert receiver.requests == []
    assert _depth(aws, _retry_url(aws)) == 1
    assert _depth(aws, _dlq_url(aws)) == 0


def test_several_messages_in_one_batch_get_their_own_verdicts(aws: Any, receiver: Any) -> None:
    put_message(aws, QueueTarget.RETRY, [se.chat(1)])
    put_message(aws, QueueTarget.RETRY, [se.identify(2)])
    put_message(aws, QueueTarget.RETRY, [se.chat(3)])
    receiver.outage(endpoint="users/identify")

    run = run_retry_worker(aws)

    assert (run.received, run.failed) == (3, 1)
    assert_delivered_once(receiver, ["trace-1", "trace-3"])
    remaining = bodies(drain_messages(aws.sqs, _retry_url(aws)))
    assert [message.events for message in remaining] == [[se.identify(2)]]


def test_a_slow_message_does_not_starve_the_others_in_its_batch(
    aws: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each record gets a share of the time left: a first message stuck on a slow endpoint
    # must not leave the next ones to fail untried (each such failure costs a receive).
    aws.configure(delivery={"budget_seconds": 3, "read_timeout_seconds": 10})
    put_message(aws, QueueTarget.RETRY, [se.chat(1)])
    put_message(aws, QueueTarget.RETRY, [se.identify(2)])
    put_message(aws, QueueTarget.RETRY, [se.identify(3)])
    receiver.outage(Fault(status=503, delay=10), endpoint="events/track")

    run = run_retry_worker(aws)

    assert (run.received, run.failed) == (3, 1)
    delivered = {item["user_id"] for item in receiver.accepted("users/identify")}
    assert len(delivered) == 2
    remaining = bodies(drain_messages(aws.sqs, _retry_url(aws)))
    assert [message.events for message in remaining] == [[se.chat(1)]]
