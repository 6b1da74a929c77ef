"""Reading the forwarder's queues the way a test or an operator looks at them.

Draining, peeking and counting; each receive counts towards a redrive policy, as on AWS.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = [
    "drain_messages",
    "drain_queue",
    "peek_messages",
    "peek_queue",
    "queue_depth",
]


def _receive(client: SQSClient, queue_url: str, visibility_timeout: int) -> list[MessageTypeDef]:
    response = client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        VisibilityTimeout=visibility_timeout,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return response.get("Messages", [])


def drain_messages(client: SQSClient, queue_url: str) -> list[MessageTypeDef]:
    """Receive and delete every visible message; returns them with all their attributes.

    Each receive counts towards a redrive policy: draining a queue that has one (the retry
    queue) moves messages already at ``maxReceiveCount`` to the dead-letter queue instead.
    """
    drained: list[MessageTypeDef] = []
    while batch := _receive(client, queue_url, visibility_timeout=30):
        result = client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(batch)
            ],
        )
        if result.get("Failed"):
            raise RuntimeError(f"could not delete drained messages: {result['Failed']}")
        drained.extend(batch)
    return drained


def peek_messages(client: SQSClient, queue_url: str) -> list[MessageTypeDef]:
    """Every visible message, left on the queue and visible again afterwards.

    SQS has no read-only peek: this receives each message (hidden meanwhile, so every one is
    seen once; repeated receives with VisibilityTimeout=0 would return the same first ten in
    moto) and then makes them visible again. Each peek therefore adds one to every message's
    ApproximateReceiveCount and counts towards a redrive policy, exactly like a real receive.
    """
    seen: list[MessageTypeDef] = []
    try:
        while batch := _receive(client, queue_url, visibility_timeout=60):
            seen.extend(batch)
    finally:
        for start in range(0, len(seen), 10):
            with contextlib.suppress(ClientError):
                client.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {
                            "Id": str(index),
                            "ReceiptHandle": message["ReceiptHandle"],
                            "VisibilityTimeout": 0,
                        }
                        for index, message in enumerate(seen[start : start + 10])
                    ],
                )
    return seen


def _body(message: MessageTypeDef) -> dict[str, Any]:
    parsed = json.loads(message["Body"])
    if not isinstance(parsed, dict):
        raise TypeError(f"message {message.get('MessageId')} is not a JSON object")
    return parsed


def drain_queue(client: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Like :func:`drain_messages`, returning the parsed JSON bodies."""
    return [_body(message) for message in drain_messages(client, queue_url)]


def peek_queue(client: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Like :func:`peek_messages`, returning the parsed JSON bodies."""
    return [_body(message) for message in peek_messages(client, queue_url)]


def queue_depth(client: SQSClient, queue_url: str) -> int:
    """Messages visible, in flight or delayed: everything still on the queue."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())
