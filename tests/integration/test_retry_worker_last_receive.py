"""The retry worker's last receive: what still fails, for whatever reason, is dead-lettered."""

from __future__ import annotations

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.queues import drain_messages
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.support.queues import (
    assert_delivered_once,
    bodies,
    fast,
    fresh_runtimes,
    make_replayer,
    put_message,
    run_retry_worker,
)

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_an_exhausted_message_that_ran_out_of_time_is_dead_lettered_as_transient(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    # Its last receive: what still fails goes to the dead-letter queue as "transient", the
    # reason operators replay by, even when this time it was the deadline that stopped it.
    aws.configure(delivery={"max_attempts": 5})  # the 2 s budget ends the attempts first
    retries = aws.resources.retry_max_receives - 1
    put_message(aws, QueueTarget.RETRY, [se.chat(1), se.identify(2)], retries=retries)
    receiver.outage(Fault(status=503, delay=30), endpoint="users/identify")

    run = run_retry_worker(aws)

    assert run.failed == 0
    assert_delivered_once(receiver, ["trace-1"])
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
    [dead] = bodies(drain_messages(aws.sqs, aws.resources.dlq_url))
    assert dead.events == [se.identify(2)]
    assert (dead.reason, dead.error) == (FailureReason.TRANSIENT, "timeout")
