"""Lambda's SQS event source, emulated: receive from a queue, invoke a function with the SQS
event, delete what it did not report as failed (``ReportBatchItemFailures``).

Local mode's retry worker and the tests that drive
``segment_raindrop.handlers.retry_worker.handler`` both go through :class:`SqsEventSource`,
so what the handler is given, and what happens to the messages afterwards, is written once.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.core.contract import RETRY_BATCH_SIZE, RETRY_TIMEOUT_SECONDS
from segment_raindrop_tools.local.apigw import LocalContext
from segment_raindrop_tools.local.invocations import StoppedError

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

__all__ = ["BatchRun", "SqsEventSource", "failed_ids", "sqs_lambda_event"]

SHORT_POLL_PAUSE_SECONDS: Final = 0.2

# A Lambda handler: (event, context) -> response.
Handler = Callable[[dict[str, Any], Any], Any]
# Runs the handler for the event source: how local mode serialises its invocations.
Invoke = Callable[[Handler, dict[str, Any], LocalContext], Any]


def sqs_lambda_event(
    messages: list[MessageTypeDef], *, queue_arn: str, region: str
) -> dict[str, Any]:
    """SQS messages as Lambda's SQS event source hands them to a function."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message.get("Body", ""),
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: _lambda_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _lambda_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


def failed_ids(response: Any, batch_ids: set[str]) -> set[str]:
    """The messages to keep, read as Lambda reads a ``ReportBatchItemFailures`` response.

    A malformed response, or one naming a message not in the batch, fails the whole batch.
    """
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return set(batch_ids)
    failures = response.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return set(batch_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(identifier)
    return failed


@dataclass(frozen=True)
class BatchRun:
    """One invocation for one received batch.

    ``error`` is what the handler raised (the whole batch then comes back after the queue's
    visibility timeout); ``delete_error`` a failure to delete the settled messages.
    """

    received: int
    failed: int
    deleted: int
    response: Any = None
    error: BaseException | None = None
    delete_error: BaseException | None = None


def _direct(handler: Handler, event: dict[str, Any], context: LocalContext) -> Any:
    return handler(event, context)


class SqsEventSource:
    """One function fed from one queue, in batches of at most ``batch_size`` messages."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        handler: Handler,
        *,
        region: str,
        function_name: str = "segment-raindrop-retry",
        timeout_seconds: float = RETRY_TIMEOUT_SECONDS,
        batch_size: int = RETRY_BATCH_SIZE,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self._handler = handler
        self._region = region
        self._function_name = function_name
        self._timeout_seconds = timeout_seconds
        self._batch_size = batch_size
        self._queue_arn: str | None = None

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            self._queue_arn = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        return self._queue_arn

    def receive(self, wait_seconds: int = 0) -> list[MessageTypeDef]:
        """One ReceiveMessage, long-polling up to ``wait_seconds`` (0: return at once)."""
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def deliver(self, messages: list[MessageTypeDef], invoke: Invoke = _direct) -> BatchRun:
        """Invoke the function with ``messages`` and delete those it did not report failed.

        The function's clock starts here, as Lambda's does. ``invoke`` runs the handler (local
        mode passes one that takes its turn with the webhook).
        """
        event = sqs_lambda_event(messages, queue_arn=self.queue_arn, region=self._region)
        context = LocalContext(
            function_name=self._function_name, timeout_seconds=self._timeout_seconds
        )
        try:
            response = invoke(self._handler, event, context)
        except Exception as exc:
            return BatchRun(len(messages), len(messages), 0, error=exc)
        failed = failed_ids(response, {message["MessageId"] for message in messages})
        done = [message for message in messages if message["MessageId"] not in failed]
        deleted, delete_error = 0, None
        if done:
            try:
                result = self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(done)
                    ],
                )
                deleted = len(result.get("Successful", []))
            except (BotoCoreError, ClientError) as exc:
                delete_error = exc
        return BatchRun(len(messages), len(failed), deleted, response, delete_error=delete_error)

    def run_until(
        self,
        stopping: threading.Event,
        *,
        wait_seconds: int,
        invoke: Invoke,
        on_run: Callable[[BatchRun], None],
        on_poll_error: Callable[[BaseException], None],
    ) -> None:
        """Poll and deliver until ``stopping`` is set, as Lambda's poller does.

        ``wait_seconds`` is the long poll (SQS allows 0..20); 0 polls every
        ``SHORT_POLL_PAUSE_SECONDS`` instead. A failed receive is reported and retried after a
        second. An invocation refused because local mode stops ends the loop without a run: its
        messages come back after their visibility timeout.
        """
        while not stopping.is_set():
            try:
                messages = self.receive(wait_seconds)
            except (BotoCoreError, ClientError) as exc:
                if stopping.is_set():
                    return
                on_poll_error(exc)
                stopping.wait(1.0)
                continue
            if messages and not stopping.is_set():
                run = self.deliver(messages, invoke)
                if isinstance(run.error, StoppedError):
                    return
                on_run(run)
            elif not messages and wait_seconds == 0:
                stopping.wait(SHORT_POLL_PAUSE_SECONDS)

    def poll_once(self, wait_seconds: int = 0) -> BatchRun:
        """Receive one batch and deliver it; a run of nothing when the queue has none."""
        messages = self.receive(wait_seconds)
        return self.deliver(messages) if messages else BatchRun(0, 0, 0)
