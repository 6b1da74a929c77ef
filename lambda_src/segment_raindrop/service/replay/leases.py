"""The dead-letter messages a replay run holds: each invisible to others (its *lease*) from its
receive until it is deleted or the run ends, renewed while the run lasts.

Messages not deleted are made visible again when the run ends, not before, so one run never
sees a message twice and two runs at once never handle the same message.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.adapters.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

_BATCH_MAX = 10


@dataclass(slots=True)
class _Lease:
    receipt_handle: str
    renewed_at: float


class Leases:
    def __init__(self, sqs: SQSClient, queue_url: str, *, visibility_timeout: int) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._timeout = visibility_timeout
        # Oldest renewal first, so renewing looks only at the head.
        self._held: OrderedDict[str, _Lease] = OrderedDict()
        self._seen: set[str] = set()

    def take(self, message: MessageTypeDef) -> bool:
        """Hold ``message``; False when this run has seen it already."""
        message_id = message["MessageId"]
        self._held[message_id] = _Lease(message["ReceiptHandle"], time.monotonic())
        self._held.move_to_end(message_id)
        if message_id in self._seen:
            return False
        self._seen.add(message_id)
        return True

    def delete(self, message_id: str) -> str | None:
        """Delete the message; the error's name when SQS would not."""
        lease = self._held[message_id]
        try:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=lease.receipt_handle)
        except (BotoCoreError, ClientError) as exc:
            logger.error("delete failed", extra={"id": message_id, "error": error_name(exc)})
            return error_name(exc)
        del self._held[message_id]
        return None

    def renew(self) -> None:
        """Extend the leases that have used a third of their time."""
        limit = time.monotonic() - self._timeout / 3
        stale = list(
            itertools.takewhile(lambda item: item[1].renewed_at < limit, self._held.items())
        )
        self._change_visibility([message_id for message_id, _ in stale], self._timeout)

    def release_all(self) -> None:
        self._change_visibility(list(self._held), 0)
        self._held.clear()

    def _change_visibility(self, message_ids: list[str], timeout: int) -> None:
        for start in range(0, len(message_ids), _BATCH_MAX):
            chunk = message_ids[start : start + _BATCH_MAX]
            now = time.monotonic()
            try:
                response = self._sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {
                            "Id": str(number),
                            "ReceiptHandle": self._held[message_id].receipt_handle,
                            "VisibilityTimeout": timeout,
                        }
                        for number, message_id in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as exc:
                # Not fatal: the message becomes visible again when its lease runs out.
                logger.warning("changing visibility failed", extra={"error": error_name(exc)})
                continue
            failed = {item["Id"] for item in response.get("Failed", [])}
            for number, message_id in enumerate(chunk):
                if str(number) in failed:
                    logger.warning("lease lost", extra={"id": message_id, "timeout": timeout})
                else:
                    self._held[message_id].renewed_at = now
                    self._held.move_to_end(message_id)


def error_name(exc: BaseException) -> str:
    """An AWS error's code (``AccessDenied``...), or the exception's class: never its message."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
