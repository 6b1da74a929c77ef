"""Replay at its edges: a rest that cannot be re-queued, the rate limit, and the time window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.service.replay.options import ReplayOptions
from segment_raindrop.service.replay.replayer import Replayer
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.aws import sqs_client
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import REGION, AwsEnv
from tests.support.queues import (
    FIRST_FAILURE,
    assert_delivered_once,
    fast,
    fresh_runtimes,
    make_replayer,
    peek_dlq,
    put_message,
    raw_dlq,
)

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


class _RequeueGoesNowhere:
    """A real moto SQS client whose SendMessageBatch is sent to a queue that does not exist,
    so moto itself refuses it (``QueueDoesNotExist``); receives and deletes are untouched."""

    def __init__(self, real: Any, missing_queue_url: str) -> None:
        self._real = real
        self._missing = missing_queue_url
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.refused += 1
        return self._real.send_message_batch(**{**kwargs, "QueueUrl": self._missing})


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_replay_keeps_the_original_when_the_failing_rest_cannot_be_requeued(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1), se.invalid(2)])
    before = raw_dlq(aws)
    rt = aws.runtime("replay")
    sqs = _RequeueGoesNowhere(
        sqs_client(aws.endpoint_url, REGION), aws.resources.dlq_url + "-missing"
    )
    replayer = Replayer(
        sqs=cast(Any, sqs),
        queue_url=aws.resources.dlq_url,
        channels=rt.channels,
        options=ReplayOptions(wait_seconds=0),
    )
    try:
        summary = replayer.run()
    finally:
        rt.close()
    assert sqs.refused >= 1
    assert_delivered_once(receiver, ["trace-1"])
    assert summary.messages_kept == 1
    assert summary.messages_deleted == 0
    assert any("could not be re-queued" in error for error in summary.errors)
    # The invalid event exists only in the original: it must still be there.
    assert raw_dlq(aws) == before


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_replay_rate_spaces_the_messages_out(
    aws: AwsEnv, receiver: RaindropReceiver, make_replayer: Callable[..., Replayer]
) -> None:
    for m in range(3):
        put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(10 * m), se.chat(10 * m + 1)])
    # 2 events per message at 2 events per second: a message a second, so the third message's
    # request comes at least ~2 s after the first. (A lower bound: a slow machine only adds.)
    summary = make_replayer(rate=2).run()
    assert summary.ok
    assert summary.messages_deleted == 3
    sent = [request.received_at for request in receiver.requests_to("events/track")]
    assert len(sent) == 3
    assert sent[-1] - sent[0] >= 1.5


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_since_is_inclusive_and_until_exclusive(
    aws: AwsEnv, receiver: RaindropReceiver, make_replayer: Callable[..., Replayer]
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)], first_failure_at=FIRST_FAILURE)

    before = make_replayer(until=FIRST_FAILURE).run()
    assert (before.messages_selected, before.messages_skipped) == (0, 1)
    assert receiver.requests == []

    since = make_replayer(since=FIRST_FAILURE, reason=FailureReason.TRANSIENT).run()
    assert (since.messages_selected, since.messages_deleted) == (1, 1)
    assert_delivered_once(receiver, ["trace-1"])


def test_replay_keeps_messages_whose_events_its_mapping_now_filters(
    aws: AwsEnv, receiver: RaindropReceiver, make_replayer: Any
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)])
    # The operator's replay lacks the deployment's settings: "AI Chat Completed" is not
    # forwarded by this mapping.
    aws.configure(mapping={"forward_event_prefixes": ("LLM ",), "event_renames": {}})
    summary = make_replayer().run()
    assert summary.messages_kept == 1
    assert "would now be filtered" in summary.errors[0]
    assert receiver.requests == []
    assert len(peek_dlq(aws)) == 1
    # Asked explicitly, the replay deletes them.
    dropped = make_replayer(drop_filtered=True).run()
    assert dropped.messages_replayed == 1
    assert peek_dlq(aws) == []
