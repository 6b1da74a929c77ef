"""Queue depths, and the oldest failure on the dead-letter queue.

SQS has no read-only peek, and its age of the oldest message leaves out any message received
three times or more (every dry run and peek of the dead-letter queue). So the oldest failure is
read from the messages themselves (``first_failure_at``, kept through retries and replays):
a bounded number of them is received with a short visibility timeout and made visible again at
once. Each peek adds one to a message's receive count; the dead-letter queue has no redrive
policy and its alarms count depth, so nothing else changes.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop_tools.status.report import DeadLetterState, QueueState

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["PEEK_LIMIT", "oldest_dead_letter", "queue_state"]

# At most this many dead-letter messages are looked at: five receives.
PEEK_LIMIT: Final = 50
# Long enough for the five receives to see different messages, short enough that a replay
# starting meanwhile misses nothing for long (and they are made visible again right after).
_PEEK_VISIBILITY_SECONDS: Final = 10


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__


def queue_state(client: SQSClient, url: str | None, output: str) -> QueueState:
    """Messages visible, in flight and delayed; ``output`` names the stack output for a
    missing URL."""
    if not url:
        return QueueState(url=None, error=f"no queue URL (the stack has no {output} output)")
    try:
        attributes = client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
    except (BotoCoreError, ClientError) as exc:
        return QueueState(url=url, error=_reason(exc))
    return QueueState(
        url=url,
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def oldest_dead_letter(client: SQSClient, queue: QueueState) -> DeadLetterState:
    """The oldest failure among up to :data:`PEEK_LIMIT` visible dead-letter messages."""
    if queue.error or not queue.url or not queue.visible:
        return DeadLetterState()
    seen: dict[str, MessageTypeDef] = {}
    try:
        while len(seen) < PEEK_LIMIT:
            batch = client.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=_PEEK_VISIBILITY_SECONDS,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            fresh = [m for m in batch if m.get("MessageId") not in seen]
            if not fresh:
                break
            seen |= {str(m.get("MessageId")): m for m in fresh}
    except (BotoCoreError, ClientError) as exc:
        return DeadLetterState(peeked=len(seen), error=_reason(exc))
    finally:
        _release(client, queue.url, list(seen.values()))
    times = [when for m in seen.values() if (when := _first_failure(m)) is not None]
    return DeadLetterState(oldest_failure_at=min(times, default=None), peeked=len(seen))


def _release(client: SQSClient, url: str, messages: list[MessageTypeDef]) -> None:
    """Visible again at once; if this fails, they come back after the short timeout anyway."""
    for start in range(0, len(messages), 10):
        with contextlib.suppress(BotoCoreError, ClientError):
            client.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages[start : start + 10])
                ],
            )


def _first_failure(message: MessageTypeDef) -> datetime | None:
    """``first_failure_at`` of a forwarder message; when it was sent, for anything else."""
    try:
        body = json.loads(message.get("Body", ""))
        value = body.get("first_failure_at") if isinstance(body, dict) else None
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        pass
    sent = message.get("Attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(sent) / 1000, UTC) if sent and sent.isdigit() else None
