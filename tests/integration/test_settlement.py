"""Forward and settle, directly: the pipeline against the real receiver and moto's SQS.

Each entry point differs only in its ``Routing``; these tests drive ``Forwarder.forward`` and
``settle`` without a handler around them and read back what reached Raindrop and each queue.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from segment_raindrop.core.jobs import Job, JobKind
from segment_raindrop.core.outcomes import FailureReason, ForwardResult
from segment_raindrop.core.queue_message import QueueMessage, parse_message
from segment_raindrop.service.delivery import deliver
from segment_raindrop.service.runtime import Runtime
from segment_raindrop.service.settlement import Routing, settle
from segment_raindrop.service.tally import Count, Tally
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.receiver import Fault, RaindropReceiver
from tests.conftest import AwsEnv


@pytest.fixture
def rt(aws: AwsEnv, receiver: RaindropReceiver) -> Any:
    aws.configure(delivery={"budget_seconds": 2, "max_attempts": 1, "breaker_failure_threshold": 0})
    runtime = aws.runtime("webhook")
    yield runtime
    runtime.close()


def _job(events: list[Any]) -> Job:
    return Job(JobKind.SEGMENT_TO_RAINDROP, events)


def _forward(rt: Runtime, events: list[Any]) -> ForwardResult:
    return deliver(_job(events), rt.channels, deadline=time.monotonic() + 2)


def _messages(aws: AwsEnv, queue_url: str) -> list[QueueMessage]:
    return [parse_message(body) for body in _bodies(aws, queue_url)]


def _bodies(aws: AwsEnv, queue_url: str) -> list[str]:
    response = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [message["Body"] for message in response.get("Messages", [])]


def _history(events: list[Any], *, retries: int) -> QueueMessage:
    return QueueMessage(
        reason=FailureReason.TRANSIENT,
        status=503,
        error="HTTP 503",
        attempts=4,
        retries=retries,
        first_failure_at="2026-11-20T10:00:00.000Z",
        last_failure_at="2026-11-20T10:05:00.000Z",
        request_id="req-original",
        source="webhook",
        events=events,
    )


def test_a_first_failure_dead_letters_invalid_and_queues_transient(
    aws: AwsEnv, receiver: RaindropReceiver, rt: Runtime
) -> None:
    receiver.outage(Fault(status=503), endpoint="signals/track")
    events = [se.chat(0), se.invalid(1), se.feedback(2, about=0), se.noise(3)]
    result = _forward(rt, events)
    routing = Routing.first_failure(request_id="req-1", retry_delay_seconds=0)
    settlement = settle(result, _job(events), rt.writer, routing)

    assert result.forwarded == {0}
    assert set(result.filtered) == {3}
    assert settlement.queued == 1
    assert settlement.dead_lettered == 1
    assert settlement.unqueued == set()
    assert dict(settlement.dead_by_reason()) == {"invalid": 1}
    (dead,) = _messages(aws, aws.resources.dlq_url)
    assert (dead.reason, dead.events, dead.request_id) == ("invalid", [events[1]], "req-1")
    (retry,) = _messages(aws, aws.resources.retry_queue_url)
    assert (retry.reason, retry.status, retry.events) == ("transient", 503, [events[2]])
    assert retry.retries == 0

    tally = Tally()
    tally.add(_job(events), result, settlement)
    ledger = tally.raindrop
    assert ledger.of(Count.FORWARDED, Count.FILTERED, Count.QUEUED, Count.DEAD_LETTERED) == {
        "forwarded": 1,
        "filtered": 1,
        "queued": 1,
        "dead_lettered": 1,
    }
    assert ledger.failed_by_reason == {"invalid": 1, "transient": 1}


def test_one_requests_transient_failures_make_one_message_whatever_each_chunk_met_last(
    aws: AwsEnv, receiver: RaindropReceiver, rt: Runtime
) -> None:
    # Which chunk meets which error is timing (a refused connection, a timeout, the breaker
    # open): the queue gets one message all the same, naming every error met.
    receiver.inject(Fault(drop=True), endpoint="events/track")
    receiver.inject(Fault(delay=1.0), endpoint="signals/track")
    aws.configure(delivery={"read_timeout_seconds": 0.3})
    runtime = aws.runtime("webhook")
    try:
        events = [se.chat(0), se.feedback(1, about=0)]
        result = _forward(runtime, events)
        routing = Routing.first_failure(request_id="req-1", retry_delay_seconds=0)
        settlement = settle(result, _job(events), runtime.writer, routing)
    finally:
        runtime.close()

    errors = {failure.error for failure in result.failures.values()}
    assert len(errors) == 2, errors  # the two chunks did meet different errors
    assert settlement.queued == 2
    (retry,) = _messages(aws, aws.resources.retry_queue_url)
    assert (retry.reason, retry.status, retry.events) == ("transient", None, events)
    assert retry.error == "; ".join(sorted(errors))


def test_permanent_failures_stay_apart_by_their_error(
    aws: AwsEnv, receiver: RaindropReceiver, rt: Runtime
) -> None:
    receiver.inject(Fault(status=400, body='{"error": "bad event"}'), endpoint="events/track")
    receiver.inject(Fault(status=400, body='{"error": "bad signal"}'), endpoint="signals/track")
    events = [se.chat(0), se.feedback(1, about=0)]
    result = _forward(rt, events)
    settle(
        result,
        _job(events),
        rt.writer,
        Routing.first_failure(request_id="r", retry_delay_seconds=0),
    )

    dead = _messages(aws, aws.resources.dlq_url)
    assert sorted(len(message.events) for message in dead) == [1, 1]
    assert len({message.error for message in dead}) == 2


def test_retry_routing_keeps_the_messages_history(
    aws: AwsEnv, receiver: RaindropReceiver, rt: Runtime
) -> None:
    receiver.outage(Fault(status=503), endpoint="signals/track")
    events = [se.chat(0), se.feedback(1, about=0)]
    message = _history(events, retries=2)
    result = _forward(rt, events)
    routing = Routing.retry_worker(message, receive_count=1, max_receives=8, base_delay_seconds=0)
    settlement = settle(result, _job(events), rt.writer, routing)

    assert settlement.queued == 1
    (requeued,) = _messages(aws, aws.resources.retry_queue_url)
    assert requeued.events == [events[1]]
    assert requeued.retries == 3  # two before, plus this receive
    assert requeued.attempts == 5  # four before, plus this one
    assert requeued.first_failure_at == "2026-11-20T10:00:00.000Z"
    assert requeued.request_id == "req-original"


def test_retry_routing_dead_letters_transient_failures_on_the_last_receive(
    aws: AwsEnv, receiver: RaindropReceiver, rt: Runtime
) -> None:
    receiver.outage(Fault(status=503), endpoint="signals/track")
    events = [se.chat(0), se.feedback(1, about=0)]
    message = _history(events, retries=7)
    result = _forward(rt, events)
    routing = Routing.retry_worker(message, receive_count=1, max_receives=8, base_delay_seconds=30)
    assert routing.exhausted
    settlement = settle(result, _job(events), rt.writer, routing)

    assert settlement.queued == 0
    assert dict(settlement.dead_by_reason()) == {"transient": 1}
    assert _bodies(aws, aws.resources.retry_queue_url) == []
    (dead,) = _messages(aws, aws.resources.dlq_url)
    assert (dead.reason, dead.events, dead.retries) == ("transient", [events[1]], 8)


def test_replay_routing_puts_what_still_fails_back_on_the_dead_letter_queue(
    aws: AwsEnv, receiver: RaindropReceiver, rt: Runtime
) -> None:
    receiver.outage(Fault(status=400, body='{"error": "no"}'), endpoint="signals/track")
    events = [se.chat(0), se.feedback(1, about=0)]
    message = _history(events, retries=8)
    result = _forward(rt, events)
    settlement = settle(result, message.job, rt.writer, Routing.replay(message))

    assert settlement.dead_lettered == 1
    (dead,) = _messages(aws, aws.resources.dlq_url)
    assert (dead.reason, dead.status, dead.events) == ("rejected", 400, [events[1]])
    assert dead.retries == 8
    assert dead.request_id == "req-original"
    assert settlement.message_ids  # SQS's id of the replacement, so a replay can skip it


def test_what_cannot_be_queued_is_reported_unqueued(
    aws: AwsEnv, receiver: RaindropReceiver, sqs_unreachable: str
) -> None:
    runtime = aws.runtime("webhook")
    try:
        events = [se.chat(0), se.invalid(1)]
        result = _forward(runtime, events)
        settlement = settle(
            result,
            _job(events),
            runtime.writer,
            Routing.first_failure(request_id="req-1", retry_delay_seconds=0),
            deadline=time.monotonic() + 1,
        )
    finally:
        runtime.close()
    assert result.forwarded == {0}
    assert settlement.unqueued == {1}
    assert settlement.dead_lettered == 0
