"""Queues, the retry worker and replay, as the tests drive them.

Everything is real: messages are written with the forwarder's own ``QueueWriter`` into moto's
queues over HTTP, the retry worker is driven from moto's retry queue by the same emulation of
Lambda's SQS event source that local mode runs (receive, invoke, delete what succeeded), and
deliveries are read back from the receiver's recordings.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget, QueueWriter
from segment_raindrop.core.environment import to_environment
from segment_raindrop.core.jobs import JobKind
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.core.queue_message import QueueMessage
from segment_raindrop.handlers import replay, retry_worker
from segment_raindrop.service.replay.options import ReplayOptions
from segment_raindrop.service.replay.replayer import Replayer
from segment_raindrop.service.replay.summary import ReplaySummary
from segment_raindrop_tools.local.event_source import BatchRun, SqsEventSource
from segment_raindrop_tools.local.queues import peek_messages
from segment_raindrop_tools.local.receiver import RaindropReceiver

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

# Small budgets and back-offs keep the suite fast; the logic under test is the same.
FAST_DELIVERY = {
    "budget_seconds": 2,
    "max_attempts": 2,
    "backoff_base_seconds": 0.01,
    "backoff_cap_seconds": 0.02,
    "retry_after_cap_seconds": 0.05,
    "read_timeout_seconds": 1,
    "connect_timeout_seconds": 1,
}
FIRST_FAILURE = "2026-11-20T10:00:00.000Z"


@pytest.fixture
def fast(aws: Any) -> None:
    # 0: a failed retry-queue message is visible again at once (no waiting in tests).
    aws.configure(delivery=FAST_DELIVERY, retry_base_delay_seconds=0)


@pytest.fixture
def fresh_runtimes() -> Iterator[None]:
    """The handlers' per-process runtimes rebuilt for each test."""
    retry_worker.runtime.reset()
    replay.runtime.reset()
    yield
    retry_worker.runtime.reset()
    replay.runtime.reset()


def operator_shell(aws: Any) -> dict[str, str]:
    """The environment an operator runs ``segment-raindrop replay`` in against these resources:
    the forwarder's variables (the same contract the functions read) and moto's endpoint."""
    return {
        **os.environ,
        **to_environment(aws.config),
        "AWS_ENDPOINT_URL": aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


# Segment events


def event_ids(events: Iterable[dict[str, Any]]) -> list[str]:
    """What each forwarded AI event is delivered as (``event_id``)."""
    return [event["properties"]["trace_id"] for event in events]


# Queues


def writer(aws: Any, source: str = "webhook") -> QueueWriter:
    resources = aws.resources
    return QueueWriter(
        aws.sqs,
        retry_queue_url=resources.retry_queue_url,
        dlq_url=resources.dlq_url,
        source=source,
    )


def message_header(
    reason: FailureReason,
    *,
    kind: JobKind = JobKind.SEGMENT_TO_RAINDROP,
    endpoint: str | None = None,
    status: int | None = None,
    error: str | None = None,
    attempts: int = 1,
    retries: int = 0,
    first_failure_at: str = FIRST_FAILURE,
    request_id: str | None = "req-1",
    project: str | None = None,
    source: str = "webhook",
) -> QueueMessage:
    """A message's header, for ``QueueWriter.send`` to pack the events under."""
    return QueueMessage(
        reason=reason,
        status=status,
        error=error,
        attempts=attempts,
        retries=retries,
        first_failure_at=first_failure_at,
        last_failure_at=first_failure_at,
        request_id=request_id,
        source=source,
        kind=kind,
        endpoint=endpoint,
        project=project,
        events=[],
    )


def put_message(
    aws: Any,
    target: QueueTarget,
    events: Sequence[Any],
    *,
    reason: FailureReason = FailureReason.TRANSIENT,
    status: int | None = 503,
    error: str | None = "HTTP 503: Service Unavailable",
    attempts: int = 3,
    retries: int = 0,
    first_failure_at: str = FIRST_FAILURE,
    request_id: str = "req-1",
    project: str | None = None,
) -> None:
    """One message in the forwarder's own format, written by the forwarder's own writer."""
    header = message_header(
        reason,
        status=status,
        error=error,
        attempts=attempts,
        first_failure_at=first_failure_at,
        retries=retries,
        request_id=request_id,
        project=project,
    )
    result = writer(aws).send(target, [(header, list(enumerate(events)))])
    assert result.messages == 1
    assert result.queued == set(range(len(events)))


def bodies(messages: Iterable[MessageTypeDef]) -> list[QueueMessage]:
    return [QueueMessage.model_validate_json(message["Body"]) for message in messages]


def queued_events(messages: Iterable[QueueMessage]) -> list[Any]:
    return [event for message in messages for event in message.events]


def peek_dlq(aws: Any) -> list[QueueMessage]:
    return bodies(peek_messages(aws.sqs, aws.resources.dlq_url))


def raw_dlq(aws: Any) -> list[str]:
    return sorted(message["Body"] for message in peek_messages(aws.sqs, aws.resources.dlq_url))


# The receiver


def delivered_ids(receiver: RaindropReceiver) -> Counter[str]:
    """``event_id`` of every accepted ``events/track`` item, with how often it arrived."""
    return Counter(item["event_id"] for item in receiver.accepted("events/track"))


def assert_delivered_once(receiver: RaindropReceiver, expected: Iterable[str]) -> None:
    delivered = delivered_ids(receiver)
    assert delivered == Counter(expected), delivered
    assert all(count == 1 for count in delivered.values())


# Lambda


def run_retry_worker(aws: Any, *, timeout: float = 60.0) -> BatchRun:
    """One poll of the retry queue by the SQS event source: receive, invoke, delete successes."""
    source = SqsEventSource(
        aws.sqs,
        aws.resources.retry_queue_url,
        retry_worker.handler,
        region=aws.resources.region,
        timeout_seconds=timeout,
    )
    run = source.poll_once()
    if run.error is not None:
        raise run.error
    assert run.delete_error is None, run.delete_error
    return run


# Replay


@pytest.fixture
def make_replayer(aws: Any) -> Iterator[Any]:
    """``make_replayer(**ReplayOptions)`` → a Replayer built from ``aws.config``, as the replay
    Lambda builds it (short polls unless told otherwise); closed after the test."""
    runtimes: list[Any] = []

    def factory(*, on_progress: Any = None, **options: Any) -> Replayer:
        options.setdefault("wait_seconds", 0)
        rt = aws.runtime("replay")
        runtimes.append(rt)
        return Replayer.from_runtime(rt, ReplayOptions(**options), on_progress=on_progress)

    yield factory
    for rt in runtimes:
        rt.close()


def summary_counts(summary: ReplaySummary) -> dict[str, Any]:
    return json.loads(json.dumps(summary.as_dict()))
