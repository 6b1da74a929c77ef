"""The retry and dead-letter queues: the message format and getting messages into SQS
(limits: docs/wire.md §5.3).

A message carries the *original Segment events* (not mapped items), so a retry or a replay
re-runs the whole pipeline with the configuration in force then: a fixed mapping rule heals
what it had marked invalid. Messages are packed to stay under SQS's size limit; entries that
SendMessageBatch refuses are retried; whatever still cannot be queued is reported back, so the
caller can tell Segment to resend instead of dropping it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from segment_raindrop.core import codec
from segment_raindrop.core.contract import SQS_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

FORMAT_VERSION = 1
# SQS allows 1 MiB per message and per SendMessageBatch call, attributes included; the margin
# covers the attributes and the entry framing.
SQS_MAX_BYTES = SQS_MAX_MESSAGE_BYTES
_MESSAGE_BUDGET = SQS_MAX_BYTES - 8_192
_BATCH_ENTRIES = SQS_BATCH_ENTRIES
_SEND_ROUNDS = 3
_SUMMARY_KEYS = ("type", "event", "messageId", "userId", "anonymousId", "timestamp")


class FailureReason(StrEnum):
    INVALID = "invalid"  # the event cannot be mapped to anything Raindrop accepts
    REJECTED = "rejected"  # Raindrop refused it for good (a 4xx)
    TRANSIENT = "transient"  # Raindrop kept failing (5xx, 429, timeouts) through all attempts
    DEADLINE = "deadline"  # the time budget ran out before it could be delivered

    @property
    def permanent(self) -> bool:
        return self in (FailureReason.INVALID, FailureReason.REJECTED)


class Destination(StrEnum):
    """Where a queued message's events are to be delivered."""

    RAINDROP = "raindrop"
    SEGMENT = "segment"


class MessageKind(StrEnum):
    """What a queued message's ``events`` are.

    - ``segment_events`` to Raindrop: Segment events, mapped again when retried (the webhook);
    - ``segment_events`` to Segment: events the mirror built, sent to Segment's batch endpoint
      as they are (their messageId lets Segment drop a resend);
    - ``raindrop_items`` to Raindrop: items of a Raindrop SDK request, sent as they are to
      ``endpoint`` (``events/track_partial`` and ``traces``: one object per item).
    """

    SEGMENT_EVENTS = "segment_events"
    RAINDROP_ITEMS = "raindrop_items"


@dataclass(frozen=True, slots=True)
class Payload:
    """Where a message's events go and what they are (defaults: the webhook's messages)."""

    destination: Destination = Destination.RAINDROP
    kind: MessageKind = MessageKind.SEGMENT_EVENTS
    endpoint: str | None = None  # for raindrop_items: the Raindrop endpoint, e.g. events/track

    def describe(self) -> dict[str, str]:
        """The message fields that say so: none for the webhook's own messages (so they read
        as before), both for the mirror's, and the endpoint of Raindrop items."""
        if self == Payload():
            return {}
        fields = {"destination": self.destination.value, "kind": self.kind.value}
        if self.endpoint is not None:
            fields["endpoint"] = self.endpoint
        return fields


class QueueTarget(StrEnum):
    RETRY = "retry"
    DEAD_LETTER = "dead-letter"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FailedEventsMessage(BaseModel):
    """The body of every message on the retry and dead-letter queues (format version 1)."""

    # Built on first use: a webhook that delivers everything never queues, and this schema
    # was ~5 ms of its import.
    model_config = ConfigDict(extra="ignore", defer_build=True)

    format: Literal[1] = 1
    reason: FailureReason
    status: int | None = None
    error: str | None = None
    attempts: int = Field(default=1, ge=0)
    # Receives by the retry worker before this message was written (0: first time queued).
    retries: int = Field(default=0, ge=0)
    first_failure_at: str
    last_failure_at: str
    request_id: str | None = None
    source: str = "webhook"
    events: list[Any]
    # Events too large for any SQS message: only their identifying fields are kept.
    omitted: list[dict[str, Any]] = Field(default_factory=list)
    # The Raindrop project the events were sent to (POST /segment/{project}), so a retry or a
    # replay delivers them to the same one. Absent: the configured default. Optional, so the
    # format stays 1 and older messages read as before.
    project: str | None = None
    # Which destination the events are for and what they are (see MessageKind). Absent: a
    # webhook message (Segment events for Raindrop), as before these fields.
    destination: Destination = Destination.RAINDROP
    kind: MessageKind = MessageKind.SEGMENT_EVENTS
    endpoint: str | None = None

    @property
    def payload(self) -> Payload:
        return Payload(self.destination, self.kind, self.endpoint)


@dataclass(slots=True)
class FailureGroup:
    """Events that failed the same way, with the indices their caller tracks them by."""

    reason: FailureReason
    events: list[tuple[int, Any]]
    status: int | None = None
    error: str | None = None
    attempts: int = 1
    first_failure_at: str | None = None
    retries: int = 0
    project: str | None = None
    payload: Payload = field(default_factory=Payload)


@dataclass(slots=True)
class QueueResult:
    queued: set[int] = field(default_factory=set)
    # Too large for any SQS message: recorded by their identifying fields in the dead-letter
    # queue, whatever the target was, since no retry could deliver them.
    omitted: set[int] = field(default_factory=set)
    unqueued: set[int] = field(default_factory=set)
    messages: int = 0
    message_ids: list[str] = field(default_factory=list)  # SQS's ids of the messages sent


@dataclass(slots=True)
class _Entry:
    url: str
    body: str
    reason: FailureReason
    indices: list[int]
    delay_seconds: int = 0
    omitted: bool = False


def _entry(
    url: str,
    header: dict[str, Any],
    reason: FailureReason,
    events: list[tuple[int, str]],
    delay_seconds: int,
) -> _Entry:
    body = _body(header, [text for _, text in events], [])
    return _Entry(url, body, reason, [index for index, _ in events], delay_seconds)


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
        self._source = source
        self._max_bytes = max_message_bytes
        # SQS calls run here so that a caller's deadline bounds them, whatever botocore's own
        # timeouts and retries would add up to against an SQS that hangs.
        self._calls = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqs")

    def send(
        self,
        target: QueueTarget,
        groups: Iterable[FailureGroup],
        *,
        request_id: str | None,
        delay_seconds: int = 0,
        deadline: float | None = None,
    ) -> QueueResult:
        """Send ``groups``; after ``deadline`` (``time.monotonic()``) no batch is started or
        resent, and what is left is reported ``unqueued`` for the caller to answer for."""
        result = QueueResult()
        entries: list[_Entry] = []
        now = utc_now()
        for group in groups:
            entries.extend(self._pack(target, group, request_id, now, delay_seconds))
        for url in {entry.url for entry in entries}:
            self._send_entries(
                url, [entry for entry in entries if entry.url == url], result, deadline
            )
        return result

    def _pack(
        self,
        target: QueueTarget,
        group: FailureGroup,
        request_id: str | None,
        now: str,
        delay_seconds: int,
    ) -> list[_Entry]:
        header = FailedEventsMessage(
            reason=group.reason,
            status=group.status,
            error=group.error,
            attempts=group.attempts,
            retries=group.retries,
            first_failure_at=group.first_failure_at or now,
            last_failure_at=now,
            request_id=request_id,
            source=self._source,
            events=[],
            project=group.project,
        ).model_dump(mode="json", exclude={"destination", "kind", "endpoint"})
        if header["project"] is None:
            del header["project"]  # absent means the default project, as before the field
        header |= group.payload.describe()
        url = self._urls[target]
        entries: list[_Entry] = []
        current: list[tuple[int, str]] = []
        omitted: list[tuple[int, dict[str, Any]]] = []
        base = len(_body(header, [], []))
        size = base
        for index, event in group.events:
            text = codec.dumps(event)
            if base + len(text) > self._max_bytes:
                omitted.append((index, _summary(event, len(text))))
                continue
            if current and size + len(text) + 1 > self._max_bytes:
                entries.append(_entry(url, header, group.reason, current, delay_seconds))
                current, size = [], base
            current.append((index, text))
            size += len(text) + 1
        if current:
            entries.append(_entry(url, header, group.reason, current, delay_seconds))
        if omitted:
            # Nothing could retry an event SQS cannot hold: record it where operators look.
            body = _body(header, [], [summary for _, summary in omitted])
            indices = [index for index, _ in omitted]
            entries.append(
                _Entry(self._urls[QueueTarget.DEAD_LETTER], body, group.reason, indices, 0, True)
            )
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
        request: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": entry_id,
                "MessageBody": entry.body,
                "DelaySeconds": entry.delay_seconds,
                "MessageAttributes": {
                    "reason": {"DataType": "String", "StringValue": entry.reason.value},
                    "format": {"DataType": "Number", "StringValue": str(FORMAT_VERSION)},
                    "source": {"DataType": "String", "StringValue": self._source},
                },
            }
            for entry_id, entry in pending.items()
        ]
        call = self._calls.submit(self._sqs.send_message_batch, QueueUrl=url, Entries=request)
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


def _batches(entries: Sequence[_Entry]) -> Iterable[list[_Entry]]:
    batch: list[_Entry] = []
    size = 0
    for entry in entries:
        length = len(entry.body) + 1_024
        if batch and (len(batch) >= _BATCH_ENTRIES or size + length > SQS_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += length
    if batch:
        yield batch


def _body(header: dict[str, Any], events: list[str], omitted: list[dict[str, Any]]) -> str:
    # Events are serialised once each by codec.dumps (ASCII-only: SQS refuses some code points,
    # lone surrogates survive as escapes, and sizes then equal lengths) and spliced in.
    fields = dict(header)
    fields.pop("events", None)
    fields["omitted"] = omitted
    head = codec.dumps(fields)
    return head[:-1] + ',"events":[' + ",".join(events) + "]}"


def _summary(event: Any, size: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"bytes": size}
    if isinstance(event, dict):
        summary.update(
            {key: event[key] for key in _SUMMARY_KEYS if isinstance(event.get(key), str)}
        )
    return summary


def parse_message(body: str) -> FailedEventsMessage:
    """A queue message's body; raises ``ValueError`` when it is not one of ours.

    Read by codec.loads, the reader the webhook uses, so whatever the webhook accepted reads
    back (pydantic's own JSON mode refuses lone surrogates and nesting past 201 levels).
    An event the webhook could not read travels as its raw text, a JSON string, and maps as
    invalid ("event is not a JSON object") when retried or replayed.
    """
    return FailedEventsMessage.model_validate(codec.loads(body))
