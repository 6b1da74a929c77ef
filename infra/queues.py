"""The retry queue and the dead-letter queue.

The webhook puts what Raindrop did not take in time on the retry queue; the retry worker takes
it from there and, after `retryMaxReceives` receives, SQS moves it to the dead-letter queue,
where it waits (14 days) for a replay.
"""

from __future__ import annotations

from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StackConfig
from infra.retention import data_removal_policy, pin_logical_id

# SQS's largest message (raised from 256 KiB in 2025; aws-cdk-lib 2.275 accepts it). The
# forwarder packs up to this many bytes of events into one message.
MAX_MESSAGE_BYTES: Final = 1_048_576
DLQ_RETENTION: Final = cdk.Duration.days(14)  # the SQS maximum: the most time to replay
# A message keeps its original enqueue time when moved to the dead-letter queue, so the retry
# queue must keep messages for less time than the dead-letter queue does.
RETRY_RETENTION: Final = cdk.Duration.days(4)
# AWS's guidance for SQS event sources: at least six times the function timeout, so a batch
# that is retried by Lambda after throttling is not visible again while still in flight.
VISIBILITY_TO_TIMEOUT_RATIO: Final = 6
# The id CloudFormation has always known the dead-letter queue by (infra/retention.py): a new
# id would mean a new, empty queue. Never change it.
DEAD_LETTER_QUEUE_LOGICAL_ID: Final = "QueuesDeadLetterQueue82AA3FB7"


class ForwarderQueues(Construct):
    """Exposes `retry_queue` and `dead_letter_queue`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        retry_worker_timeout: cdk.Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        # No visibility timeout of its own: replay sets a lease on every receive.
        self.dead_letter_queue = dead_letter_queue(
            self,
            "DeadLetterQueue",
            config=config,
            max_message_size_bytes=MAX_MESSAGE_BYTES,
        )
        pin_logical_id(self.dead_letter_queue, DEAD_LETTER_QUEUE_LOGICAL_ID)
        self.retry_queue = consumed_queue(
            self,
            "RetryQueue",
            consumer_timeout_seconds=retry_worker_timeout.to_seconds(),
            dead_letter=self.dead_letter_queue,
            max_receives=config.retry_max_receives,
            retention_period=RETRY_RETENTION,
            max_message_size_bytes=MAX_MESSAGE_BYTES,
        )


def dead_letter_queue(
    scope: Construct, construct_id: str, *, config: StackConfig, **props: Any
) -> sqs.Queue:
    """An encrypted, TLS-only queue of events waiting for an operator (14 days): it outlives
    the stack unless retainData is false, and so does its TLS-only policy, since a queue
    retained without it would take plain-HTTP requests after the stack is gone."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
        removal_policy=data_removal_policy(config),
        **props,
    )
    policy = queue.node.find_child("Policy")
    assert isinstance(policy, sqs.QueuePolicy)
    policy.apply_removal_policy(data_removal_policy(config))
    return queue


def consumed_queue(
    scope: Construct,
    construct_id: str,
    *,
    consumer_timeout_seconds: float,
    dead_letter: sqs.IQueue,
    max_receives: int,
    **props: Any,
) -> sqs.Queue:
    """An encrypted, TLS-only queue a Lambda function consumes through an SQS event source:
    visible again only after ``VISIBILITY_TO_TIMEOUT_RATIO`` times the function's timeout, and
    moved to ``dead_letter`` after ``max_receives`` receives."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=cdk.Duration.seconds(
            consumer_timeout_seconds * VISIBILITY_TO_TIMEOUT_RATIO
        ),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter, max_receive_count=max_receives),
        **props,
    )
