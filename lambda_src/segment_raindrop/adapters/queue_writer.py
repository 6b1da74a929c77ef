"""Getting queue messages into SQS (limits: docs/wire.md §5.3).

Each outgoing message is a :class:`~segment_raindrop.core.queue_message.QueueMessage` header and
the events it is for, by their indices. Events are packed into as many messages as SQS's size
limit needs; entries that SendMessageBatch refuses are retried; whatever still cannot be queued
is reported back, so the caller can tell its client to resend instead of dropping it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.core import codec
from segment_raindrop.core.contract import SQS_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.core.queue_message import FORMAT_VERSION, QueueMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# SQS allows 1 MiB per message and per SendMessageBatch call, attributes included; the margin
# covers the attributes and the entry framing.
_MESSAGE_BUDGET = SQS_MAX_MESSAGE_BYTES - 8_192
_SEND_ROUNDS = 3
# What a summary keeps of an event too large for SQS (Segment's fields, then Raindrop's); the
# message it is in names the job's kind, endpoint and project.
_SUMMARY_KEYS = (
    "type",
    "event",
    "messageId",
    "userId",
    "anonymousId",
    "timestamp",
    "event_id",
    "user_id",
)

# A message's header and the events it is for, each with the index its caller tracks it by.
Outgoing = tuple[QueueMessage, list[tuple[int, Any]]]


class QueueTarget(StrEnum):
    RETRY = "retry"
    DEAD_LETTER = "dead-letter"


@dataclass(slots=True)
class QueueResult:
    queued: set[int] = field(default_factory=set)
    # Too large for any SQS message: recorded by their identifying fields in the dead-letter
    # queue, whatever the target was, since no retry could deliver them.
    omitted: set[int] = field(default_factory=set)
    unqueued: set[int] = field(default_factory=set)
    messages: int = 0
    message_ids: list[str] = field(default_factory=list)  # SQS's ids of the messages sent

    def merge(self, other: QueueResult) -> None:
        self.queued |= other.queued
        self.omitted |= other.omitted
        self.unqueued |= other.unqueued
        self.messages += other.messages
        self.message_ids += other.message_ids


@dataclass(slots=True)
class _Entry:
    url: str
    body: str
    reason: FailureReason
    indices: list[int]
    delay_seconds: int = 0
    omitted: bool = False


class QueueWriter:
    def __init__(
        self,
        sqs: SQSClient,
        *,
        retry_queue_url: str | None,
        dlq_url: str,
        source: str,
        max_message_bytes: int = _MESSAGE_BUDGET,
    ) -> None:
        self._sqs = sqs
        # Replay has no retry queue: it only ever writes back to the dead-letter queue.
        self._urls = {QueueTarget.DEAD_LETTER: dlq_url}
        if retry_queue_url is not None:
            self._urls[QueueTarget.RETRY] = retry_queue_url
        # Who writes (webhook, mirror, retry, replay): every message says so.
        self.source = source
        self._max_bytes = max_message_bytes
        # SQS calls run here so that a caller's deadline bounds them, whatever botocore's own
        # timeouts and retries would add up to against an SQS that hangs.
        self._calls = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqs")

    @property
    def has_retry_queue(self) -> bool:
        return QueueTarget.RETRY in self._urls

    def send(
        self,
        target: QueueTarget,
        messages: Iterable[Outgoing],
        *,
        delay_seconds: int = 0,
        deadline: float | None = None,
    ) -> QueueResult:
        """Send ``messages``; after ``deadline`` (``time.monotonic()``) no batch is started or
        resent, and what is left is reported ``unqueued`` for the caller to answer for."""
        result = QueueResult()
        entries: list[_Entry] = []
        for header, events in messages:
            entries.extend(self._pack(target, header, events, delay_seconds, result))
        for url in {entry.url for entry in entries}:
            self._send_entries(
                url, [entry for entry in entries if entry.url == url], result, deadline
            )
        return result

    def _pack(
        self,
        target: QueueTarget,
        header: QueueMessage,
        events: list[tuple[int, Any]],
        delay_seconds: int,
        result: QueueResult,
    ) -> list[_Entry]:
        head = header.header_text()
        url = self._urls[target]
        entries: list[_Entry] = []

        def entry(packed: list[tuple[int, str]]) -> _Entry:
            body = _body(head, [text for _, text in packed], [])
            return _Entry(url, body, header.reason, [i for i, _ in packed], delay_seconds)

        current: list[tuple[int, str]] = []
        omitted: list[tuple[int, dict[str, Any]]] = []
        base = codec.utf8_size(_body(head, [], []))
        size = base
        for index, event in events:
            text = codec.dumps(event)
            length = codec.utf8_size(text)
            if base + length > self._max_bytes:
                if header.kind.summarised_when_oversized:
                    omitted.append((index, _summary(event, length)))
                else:
                    # Its sender still holds it whole: it is told to send it again.
                    result.unqueued.add(index)
                continue
            if current and size + length + 1 > self._max_bytes:
                entries.append(entry(current))
                current, size = [], base
            current.append((index, text))
            size += length + 1
        if current:
            entries.append(entry(current))
        if omitted:
            # Nothing could retry an event SQS cannot hold: record it where operators look.
            body = _body(head, [], [summary for _, summary in omitted])
            indices = [index for index, _ in omitted]
            dead = self._urls[QueueTarget.DEAD_LETTER]
            entries.append(_Entry(dead, body, header.reason, indices, 0, omitted=True))
        return entries

    def _send_entries(
        self, url: str, entries: Sequence[_Entry], result: QueueResult, deadline: float | None
    ) -> None:
        for batch in _batches(entries):
            pending = {f"m{number}": entry for number, entry in enumerate(batch)}
            for round_number in range(_SEND_ROUNDS):
                pause = 0.1 * 2**round_number if round_number else 0.0
                if deadline is not None and time.monotonic() + pause > deadline:
                    break
                time.sleep(pause)
                pending = self._send_batch(url, pending, result, deadline)
                if not pending:
                    break
            for entry in pending.values():
                result.unqueued.update(entry.indices)

    def _send_batch(
        self, url: str, pending: dict[str, _Entry], result: QueueResult, deadline: float | None
    ) -> dict[str, _Entry]:
        """Send one batch; returns the entries still to send."""
        call = self._calls.submit(
            self._sqs.send_message_batch, QueueUrl=url, Entries=self._request(pending)
        )
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            response = call.result(timeout=wait)
        except FutureTimeout:
            # No answer in the time left: these events are answered for now (unqueued). Should
            # the call still succeed, they arrive twice, never zero times.
            return pending
        except (BotoCoreError, ClientError):
            return pending
        for success in response.get("Successful", []):
            entry = pending.pop(success["Id"], None)
            if entry is not None:
                (result.omitted if entry.omitted else result.queued).update(entry.indices)
                result.messages += 1
                result.message_ids.append(success["MessageId"])
        # Whatever SQS did not confirm is still to send (even an entry it failed to mention),
        # except a sender fault (a malformed entry), which will not heal by resending.
        for item in response.get("Failed", []):
            if item.get("SenderFault") and item["Id"] in pending:
                result.unqueued.update(pending.pop(item["Id"]).indices)
        return pending

    def _request(self, pending: dict[str, _Entry]) -> list[SendMessageBatchRequestEntryTypeDef]:
        return [
            {
                "Id": entry_id,
                "MessageBody": entry.body,
                "DelaySeconds": entry.delay_seconds,
                "MessageAttributes": {
                    "reason": {"DataType": "String", "StringValue": entry.reason.value},
                    "format": {"DataType": "Number", "StringValue": str(FORMAT_VERSION)},
                    "source": {"DataType": "String", "StringValue": self.source},
                },
            }
            for entry_id, entry in pending.items()
        ]


def _batches(entries: Sequence[_Entry]) -> Iterable[list[_Entry]]:
    batch: list[_Entry] = []
    size = 0
    for entry in entries:
        length = codec.utf8_size(entry.body) + 1_024
        if batch and (len(batch) >= SQS_BATCH_ENTRIES or size + length > SQS_MAX_MESSAGE_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += length
    if batch:
        yield batch


def _body(head: str, events: list[str], omitted: list[dict[str, Any]]) -> str:
    # Events are serialised once each by codec.dumps (UTF-8 text with escapes only for what SQS
    # refuses and lone surrogates) and spliced in.
    return f'{head[:-1]},"omitted":{codec.dumps(omitted)},"events":[{",".join(events)}]}}'


def _summary(event: Any, size: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"bytes": size}
    if isinstance(event, dict):
        summary.update(
            {key: event[key] for key in _SUMMARY_KEYS if isinstance(event.get(key), str)}
        )
    return summary
