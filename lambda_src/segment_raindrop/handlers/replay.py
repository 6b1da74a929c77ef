"""Dead-letter replay: push what waits in the dead-letter queue back through the pipeline.

Shared by the replay Lambda (:func:`handler`) and the CLI (``segment-raindrop replay``).

A :class:`Replayer` receives messages from the dead-letter queue and, for each one it selects
(``reason``, ``since``/``until`` on the message's first failure), re-runs the pipeline with
the configuration in force now:

- every event forwarded or filtered → the message is deleted;
- no event delivered (every one failed) → the message is left as it is;
- some delivered → a new dead-letter message holds only the still-failing events (their new
  reason, status and error, attempts accumulated, first failure kept), and only once it is
  queued is the original deleted.

A message is held invisible (its *lease*, renewed while the run lasts) from its receive until
it is deleted or the run ends; messages not selected, kept, unparseable or not reached are
made visible again at the end of the run, not before, so one run never sees a message twice.
Two runs at once therefore never handle the same message, and a run stopped with
:meth:`Replayer.stop` finishes the message in hand and releases the rest, so running it again
delivers every event and deletes every message once.

A dry run maps and validates each selected message with the current configuration, counts what
would be sent per Raindrop endpoint and what is invalid now, and changes nothing.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from segment_raindrop.handlers.loading import handler_loading

# In Lambda the rest loads with the garbage collector paused, and is then frozen (loading.py).
with handler_loading():
    from botocore.exceptions import BotoCoreError, ClientError
    from pydantic import (
        BaseModel,
        ConfigDict,
        Field,
        ValidationError,
        field_validator,
        model_validator,
    )

    from segment_raindrop.adapters.http_delivery import SegmentClient
    from segment_raindrop.adapters.observability import count, logger, metrics, traced_handler
    from segment_raindrop.adapters.queue_writer import (
        FailedEventsMessage,
        FailureReason,
        QueueWriter,
        parse_message,
    )
    from segment_raindrop.adapters.secrets import RaindropKeyNotSet, SecretStore, SecretUnavailable
    from segment_raindrop.core.config import ConfigError, describe_errors
    from segment_raindrop.core.contract import Metric
    from segment_raindrop.core.mapping import map_events
    from segment_raindrop.core.timing import deadline_within
    from segment_raindrop.service.forwarding import Forwarder
    from segment_raindrop.service.relay import CannotDeliver, deliver_message, is_mirror_message
    from segment_raindrop.service.runtime import LazyRuntime, Runtime
    from segment_raindrop.service.settlement import Routing, Tally, settle

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

# A message's delivery budget when neither the options nor a smaller DELIVERY_BUDGET_SECONDS
# set one: a Raindrop outage is recognised in seconds, and a hung one must not hold a run.
DEFAULT_MESSAGE_BUDGET_SECONDS = 60.0
# Kept back from the Lambda's remaining time to release the leases and return the summary.
LAMBDA_RESERVE_SECONDS = 20.0
# A message is not started with less time than this left (Lambda).
_MIN_MESSAGE_SECONDS = 5.0
# Time a message may need beyond its delivery budget (thread hand-off, queueing, delete).
_MESSAGE_GRACE_SECONDS = 10.0
_RECEIVE_MAX = 10
_BATCH_MAX = 10
_PACE_STEP_SECONDS = 0.5

runtime = LazyRuntime(source="replay")


class ReplayRefused(Exception):
    """The replay cannot start. The message is safe to show and log."""


class Outcome(StrEnum):
    """What happened to one message."""

    REPLAYED = "replayed"  # every event forwarded or filtered; the message is deleted
    PARTLY_REPLAYED = "partly_replayed"  # the rest is in a replacement message; original deleted
    KEPT = "kept"  # nothing delivered, or it cannot be replayed: left on the queue
    SKIPPED = "skipped"  # not selected by the filters
    UNPARSEABLE = "unparseable"  # not one of ours: left on the queue
    WOULD_REPLAY = "would_replay"  # dry run: every event would be sent or filtered
    WOULD_KEEP = "would_keep"  # dry run: some event is invalid now (or cannot be replayed)


class ReplayOptions(BaseModel):
    """What to replay and how; also the replay Lambda's event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_messages: int | None = Field(default=None, ge=1)  # None: every message
    dry_run: bool = False
    # An event of a rejected, transient or deadline message was mapped when it failed; if the
    # mapping in force now filters it, the replay most likely runs with other settings than the
    # deployment (a CLI without its FORWARD_EVENT_* variables). Such messages are kept unless
    # this is set. (Invalid events filtered now are a fixed rule healing them: deleted.)
    drop_filtered: bool = False
    reason: FailureReason | None = None
    # Compared with the message's first failure: since <= first_failure_at < until.
    since: datetime | None = None
    until: datetime | None = None
    rate: float | None = Field(default=None, gt=0)  # events per second; None: unlimited
    visibility_timeout: int = Field(default=300, ge=30, le=43_000)
    # Delivery budget per message; None: DELIVERY_BUDGET_SECONDS, at most 60 s.
    message_budget_seconds: float | None = Field(default=None, gt=0, le=900)
    # Long polling per receive: short polls can come back empty while messages remain.
    wait_seconds: int = Field(default=1, ge=0, le=20)

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be earlier than until")
        return self


@dataclass(slots=True)
class ReplaySummary:
    """What a run did.

    ``messages_received`` counts the messages examined (received messages not reached because
    of a stop or ``max_messages`` are released unexamined and not counted); ``selected`` are
    those the filters chose, ``skipped`` those they did not. Each selected message ends as
    replayed (deleted), partly replayed (the rest re-queued, original deleted) or kept.
    ``events_failed`` counts, by reason, the events still failing in selected messages.

    In a dry run, ``messages_replayed`` counts messages that would be replayed,
    ``messages_kept`` those that would be kept, ``events_forwarded`` events that would be
    forwarded, ``events_failed`` the events invalid now, and ``would_send`` the Raindrop items
    per endpoint.
    """

    queue_url: str
    dry_run: bool
    messages_received: int = 0
    messages_selected: int = 0
    messages_replayed: int = 0
    messages_partly_replayed: int = 0
    messages_kept: int = 0
    messages_skipped: int = 0
    messages_unparseable: int = 0
    # The events' outcomes, counted as every entry point counts them.
    tally: Tally = field(default_factory=Tally)
    # Events too large for SQS, recorded only by their identifying fields: not replayable.
    events_omitted: int = 0
    would_send: Counter[str] = field(default_factory=Counter)
    unparseable_message_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped: bool = False
    stop_reason: str | None = None

    @property
    def events_forwarded(self) -> int:
        return self.tally.events["forwarded"]

    @property
    def events_filtered(self) -> int:
        return self.tally.events["filtered"]

    @property
    def events_failed(self) -> Counter[str]:
        return self.tally.failed_by_reason

    @property
    def raindrop_requests(self) -> int:
        return self.tally.delivery.requests

    @property
    def messages_deleted(self) -> int:
        return 0 if self.dry_run else self.messages_replayed + self.messages_partly_replayed

    @property
    def ok(self) -> bool:
        """Everything selected was replayed (dry run: would be), and nothing needs a look."""
        return (
            not self.stopped
            and not self.errors
            and self.messages_unparseable == 0
            and self.messages_replayed == self.messages_selected
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "queue_url": self.queue_url,
            "messages_received": self.messages_received,
            "messages_selected": self.messages_selected,
            "messages_replayed": self.messages_replayed,
            "messages_partly_replayed": self.messages_partly_replayed,
            "messages_deleted": self.messages_deleted,
            "messages_kept": self.messages_kept,
            "messages_skipped": self.messages_skipped,
            "messages_unparseable": self.messages_unparseable,
            "events_forwarded": self.events_forwarded,
            "events_filtered": self.events_filtered,
            "events_failed": dict(self.events_failed),
            "events_omitted": self.events_omitted,
            "would_send": dict(self.would_send),
            "raindrop_requests": self.raindrop_requests,
            "unparseable_message_ids": list(self.unparseable_message_ids),
            "errors": list(self.errors),
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
        }


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Passed to the progress callback after each message is examined."""

    message_id: str
    outcome: Outcome
    events: int
    summary: ReplaySummary


ProgressCallback = Callable[[ReplayProgress], None]
TimeLeft = Callable[[], float]


@dataclass(slots=True)
class _Lease:
    receipt_handle: str
    renewed_at: float


class Replayer:
    """One replay run over one dead-letter queue. ``run`` once; ``stop`` from any thread."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        forwarder: Forwarder,
        secrets: SecretStore,
        options: ReplayOptions | None = None,
        on_progress: ProgressCallback | None = None,
        segment: SegmentClient | None = None,
    ) -> None:
        self._sqs = sqs
        # Delivers the mirror's messages for Segment (None: they are kept on the queue).
        self._segment = segment
        self._queue_url = queue_url
        self._forwarder = forwarder
        self._secrets = secrets
        self.options = options or ReplayOptions()
        self._on_progress = on_progress
        # Replacement messages go back to the queue being replayed.
        self._writer = QueueWriter(sqs, retry_queue_url=None, dlq_url=queue_url, source="replay")
        self._stop = threading.Event()
        # Oldest renewal first, so renewing looks only at the head.
        self._leases: OrderedDict[str, _Lease] = OrderedDict()
        self._seen: set[str] = set()
        self._next_send = 0.0
        self._started = False
        self._key: str | None = None
        # Replacement messages this run wrote: received again, they are left for the next run.
        self._written: set[str] = set()

    @classmethod
    def from_runtime(
        cls,
        rt: Runtime,
        options: ReplayOptions | None = None,
        *,
        queue_url: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Replayer:
        return cls(
            sqs=rt.sqs,
            queue_url=queue_url or rt.config.dlq_url,
            forwarder=rt.forwarder,
            secrets=rt.secrets,
            options=options,
            on_progress=on_progress,
            segment=rt.segment,
        )

    @property
    def queue_url(self) -> str:
        return self._queue_url

    @property
    def message_budget_seconds(self) -> float:
        if self.options.message_budget_seconds is not None:
            return self.options.message_budget_seconds
        return min(self._forwarder.delivery.budget_seconds, DEFAULT_MESSAGE_BUDGET_SECONDS)

    def set_progress(self, on_progress: ProgressCallback | None) -> None:
        """Called after each message is examined, on the thread running :meth:`run`."""
        self._on_progress = on_progress

    def stop(self) -> None:
        """Finish the message in hand, release the rest and return the summary."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def queue_depth(self) -> int:
        """Messages visible on the queue now (approximate); raises :class:`ReplayRefused`."""
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            raise ReplayRefused(
                f"cannot read the queue {self._queue_url}: {_error_name(exc)}"
            ) from None
        return int(attributes.get("ApproximateNumberOfMessages", "0"))

    def preflight(self) -> int:
        """Check that the run can start; returns the queue's depth.

        Raises :class:`ReplayRefused` when the visibility timeout cannot cover the delivery
        budget, the queue cannot be read, or (real runs) the Raindrop key is missing or a
        placeholder. Touches no message.
        """
        budget = self.message_budget_seconds
        if budget + _MESSAGE_GRACE_SECONDS > self.options.visibility_timeout * 2 / 3:
            raise ReplayRefused(
                f"the visibility timeout ({self.options.visibility_timeout} s) is too short for "
                f"a delivery budget of {budget:g} s per message: make it at least "
                f"{int((budget + _MESSAGE_GRACE_SECONDS) * 3 / 2) + 1} s"
            )
        if not self.options.dry_run:
            self._key = self._api_key()
        return self.queue_depth()

    def run(self, *, time_left: TimeLeft | None = None) -> ReplaySummary:
        """Replay until the queue is drained, ``max_messages`` is reached or a stop is asked.

        ``time_left`` (seconds) bounds the run, as in a Lambda. Raises :class:`ReplayRefused`
        (see :meth:`preflight`) before touching any message when the run cannot start.
        """
        if self._started:
            raise RuntimeError("a Replayer runs once; make a new one")
        self._started = True
        self.preflight()
        summary = ReplaySummary(queue_url=self._queue_url, dry_run=self.options.dry_run)
        try:
            self._loop(summary, self._key, time_left)
        finally:
            self._release_all()
        logger.info("replay finished", extra=summary.as_dict())
        return summary

    # The loop

    def _loop(
        self, summary: ReplaySummary, api_key: str | None, time_left: TimeLeft | None
    ) -> None:
        limit = self.options.max_messages
        while True:
            if self._stopping(summary, time_left):
                return
            wanted = (
                _RECEIVE_MAX
                if limit is None
                else min(_RECEIVE_MAX, limit - summary.messages_selected)
            )
            if wanted <= 0:
                return
            batch = self._receive(wanted, summary)
            fresh = [message for message in batch if self._take(message)]
            if not fresh:
                # Empty, or only messages this run already handled: the queue has been drained.
                return
            for message in fresh:
                if self._stopping(summary, time_left):
                    return
                if limit is not None and summary.messages_selected >= limit:
                    return
                self._renew_leases()
                self._examine(message, summary, api_key, time_left)

    def _stopping(self, summary: ReplaySummary, time_left: TimeLeft | None) -> bool:
        if self._stop.is_set():
            summary.stopped = True
            summary.stop_reason = summary.stop_reason or "stop requested"
            return True
        if time_left is not None and time_left() < LAMBDA_RESERVE_SECONDS + _MIN_MESSAGE_SECONDS:
            summary.stopped = True
            summary.stop_reason = "time limit"
            return True
        return False

    def _take(self, message: MessageTypeDef) -> bool:
        """Record the lease; False when this run has seen the message already."""
        message_id = message["MessageId"]
        self._leases[message_id] = _Lease(message["ReceiptHandle"], time.monotonic())
        self._leases.move_to_end(message_id)
        if message_id in self._seen:
            return False
        self._seen.add(message_id)
        return True

    def _receive(self, wanted: int, summary: ReplaySummary) -> list[MessageTypeDef]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=self.options.wait_seconds,
                VisibilityTimeout=self.options.visibility_timeout,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except (BotoCoreError, ClientError) as exc:
            summary.errors.append(f"receiving from the queue failed: {_error_name(exc)}")
            logger.error("receive failed", extra={"error": _error_name(exc)})
            return []
        return response.get("Messages", [])

    def _examine(
        self,
        message: MessageTypeDef,
        summary: ReplaySummary,
        api_key: str | None,
        time_left: TimeLeft | None,
    ) -> None:
        message_id = message["MessageId"]
        try:
            parsed = parse_message(message.get("Body", ""))
        except ValueError:
            summary.messages_received += 1
            summary.messages_unparseable += 1
            summary.unparseable_message_ids.append(message_id)
            logger.warning("not a forwarder message; left on the queue", extra={"id": message_id})
            self._progress(message_id, Outcome.UNPARSEABLE, 0, summary)
            return
        if message_id in self._written:
            return  # a replacement this run wrote: the next run takes it (released at the end)
        if not self._selected(parsed):
            summary.messages_received += 1
            summary.messages_skipped += 1
            self._progress(message_id, Outcome.SKIPPED, len(parsed.events), summary)
            return
        if api_key is not None and not self._pace(len(parsed.events), time_left):
            return  # stopped while waiting for the rate limit: released untouched
        summary.messages_received += 1
        summary.messages_selected += 1
        if api_key is None:
            outcome = self._dry_run(parsed, summary)
        else:
            outcome = self._replay(message_id, parsed, summary, api_key, time_left)
        counter = {
            Outcome.REPLAYED: "messages_replayed",
            Outcome.WOULD_REPLAY: "messages_replayed",
            Outcome.PARTLY_REPLAYED: "messages_partly_replayed",
        }.get(outcome, "messages_kept")
        setattr(summary, counter, getattr(summary, counter) + 1)
        logger.info(
            "message replayed" if api_key is not None else "message checked",
            extra={"id": message_id, "outcome": outcome.value, "events": len(parsed.events)},
        )
        self._progress(message_id, outcome, len(parsed.events), summary)

    def _selected(self, message: FailedEventsMessage) -> bool:
        options = self.options
        if options.reason is not None and message.reason != options.reason:
            return False
        if options.since is None and options.until is None:
            return True
        first = _parse_time(message.first_failure_at)
        if first is None:
            return False
        if options.since is not None and first < options.since:
            return False
        return options.until is None or first < options.until

    def _dry_run(self, message: FailedEventsMessage, summary: ReplaySummary) -> Outcome:
        if is_mirror_message(message):
            # Sent as they are, unmapped: to Raindrop's endpoint, or Segment's batch endpoint.
            target = "segment/batch" if message.destination.value == "segment" else "raindrop/"
            summary.would_send[target + (message.endpoint or "")] += len(message.events)
            summary.tally.events["forwarded"] += len(message.events)
            return Outcome.WOULD_REPLAY
        mapped = map_events(message.events, self._forwarder.mapping)
        for item in mapped.items:
            summary.would_send[item.endpoint.value] += 1
        summary.tally.events["forwarded"] += len(mapped.mapped)
        summary.tally.events["filtered"] += len(mapped.filtered)
        if mapped.invalid:
            summary.tally.failed_by_reason[FailureReason.INVALID.value] += len(mapped.invalid)
        summary.events_omitted += len(message.omitted)
        kept_filtered = mapped.filtered and self._guards_filtered(message)
        if kept_filtered:
            summary.errors.append(_filtered_now(message, len(mapped.filtered)))
        keep = mapped.invalid or message.omitted or kept_filtered
        return Outcome.WOULD_KEEP if keep else Outcome.WOULD_REPLAY

    def _guards_filtered(self, message: FailedEventsMessage) -> bool:
        """Whether events filtered now keep ``message`` (see ReplayOptions.drop_filtered)."""
        return (
            not self.options.drop_filtered
            and message.reason is not FailureReason.INVALID
            and not is_mirror_message(message)  # its events are not mapped: nothing filters
        )

    def _replay(
        self,
        message_id: str,
        message: FailedEventsMessage,
        summary: ReplaySummary,
        api_key: str,
        time_left: TimeLeft | None,
    ) -> Outcome:
        if message.omitted:
            # Only summaries of events too large for SQS: nothing to send, nothing to delete.
            summary.events_omitted += len(message.omitted)
            return Outcome.KEPT
        if self._guards_filtered(message):
            filtered = map_events(message.events, self._forwarder.mapping).filtered
            if filtered:
                summary.errors.append(_filtered_now(message, len(filtered), message_id))
                return Outcome.KEPT
        deadline = deadline_within(
            time.monotonic(),
            budget=self.message_budget_seconds,
            remaining=float("inf") if time_left is None else time_left(),
            reserve=LAMBDA_RESERVE_SECONDS,
        )
        if is_mirror_message(message):
            try:
                result = deliver_message(
                    message,
                    raindrop=self._forwarder.client,
                    segment=self._segment,
                    secrets=self._secrets,
                    deadline=deadline,
                )
            except CannotDeliver as exc:
                summary.errors.append(f"message {message_id}: {exc}; kept")
                return Outcome.KEPT
        else:
            result = self._forwarder.forward(
                message.events,
                api_key=api_key,
                deadline=deadline,
                refresh_key=self._secrets.fresh_raindrop_key,
                project=message.project,
            )
        summary.tally.forwarded(result)
        failures = result.failures
        if not failures:
            return Outcome.REPLAYED if self._delete(message_id, summary) else Outcome.KEPT
        if len(failures) == len(message.events):
            return Outcome.KEPT
        settlement = settle(
            result, self._writer, Routing.replay(message), request_id=message.request_id
        )
        self._written.update(settlement.message_ids)
        if settlement.unqueued or settlement.dead_letter.omitted:
            summary.errors.append(
                f"message {message_id}: the events still failing could not be re-queued; "
                "the original is kept (its delivered events will be sent again next time)"
            )
            return Outcome.KEPT
        if not self._delete(message_id, summary):
            return Outcome.KEPT
        return Outcome.PARTLY_REPLAYED

    # Pacing, secrets and progress

    def _pace(self, events: int, time_left: TimeLeft | None) -> bool:
        """Wait for the rate limit; False when a stop was requested or time ran out meanwhile."""
        rate = self.options.rate
        if rate is None:
            return not self._stop.is_set()
        while (wait := self._next_send - time.monotonic()) > 0:
            if self._stop.wait(min(wait, _PACE_STEP_SECONDS)):
                return False
            if (
                time_left is not None
                and time_left() < LAMBDA_RESERVE_SECONDS + _MIN_MESSAGE_SECONDS
            ):
                return False
            self._renew_leases()
        if self._stop.is_set():
            return False
        self._next_send = max(self._next_send, time.monotonic()) + events / rate
        return True

    def _api_key(self) -> str:
        try:
            return self._secrets.ready_key()
        except RaindropKeyNotSet:
            raise ReplayRefused(
                "cannot replay: the Raindrop API key in the forwarder's secret is missing or "
                "still a placeholder; set raindrop_api_key in the secret first"
            ) from None
        except SecretUnavailable as exc:
            raise ReplayRefused(f"cannot replay: {exc}") from None

    def _progress(
        self, message_id: str, outcome: Outcome, events: int, summary: ReplaySummary
    ) -> None:
        if self._on_progress is not None:
            self._on_progress(ReplayProgress(message_id, outcome, events, summary))

    # Leases

    def _delete(self, message_id: str, summary: ReplaySummary) -> bool:
        lease = self._leases[message_id]
        try:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=lease.receipt_handle)
        except (BotoCoreError, ClientError) as exc:
            summary.errors.append(
                f"message {message_id}: delivered but could not be deleted ({_error_name(exc)}); "
                "a later replay will send its events again"
            )
            logger.error("delete failed", extra={"id": message_id, "error": _error_name(exc)})
            return False
        del self._leases[message_id]
        return True

    def _renew_leases(self) -> None:
        limit = time.monotonic() - self.options.visibility_timeout / 3
        stale = list(
            itertools.takewhile(lambda item: item[1].renewed_at < limit, self._leases.items())
        )
        self._change_visibility(
            [message_id for message_id, _ in stale], self.options.visibility_timeout
        )

    def _release_all(self) -> None:
        self._change_visibility(list(self._leases), 0)
        self._leases.clear()

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
                            "ReceiptHandle": self._leases[message_id].receipt_handle,
                            "VisibilityTimeout": timeout,
                        }
                        for number, message_id in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as exc:
                # Not fatal: the message becomes visible again when its lease runs out.
                logger.warning("changing visibility failed", extra={"error": _error_name(exc)})
                continue
            failed = {item["Id"] for item in response.get("Failed", [])}
            for number, message_id in enumerate(chunk):
                if str(number) in failed:
                    logger.warning("lease lost", extra={"id": message_id, "timeout": timeout})
                else:
                    self._leases[message_id].renewed_at = now
                    self._leases.move_to_end(message_id)


def _filtered_now(message: FailedEventsMessage, count: int, message_id: str = "") -> str:
    where = f"message {message_id}: " if message_id else ""
    return (
        f"{where}{count} of its {len(message.events)} events would now be filtered, although "
        f"they were forwarded when they failed ({message.reason.value}): is this replay "
        "configured as the deployment (FORWARD_EVENT_PREFIXES, FORWARD_EVENT_NAMES, "
        "FEEDBACK_EVENT_NAMES, FORWARD_IDENTIFY)? Kept; pass --drop-filtered (drop_filtered) "
        "to delete such events instead"
    )


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


# The replay Lambda


def _failure(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


@logger.inject_lambda_context
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    """Event: :class:`ReplayOptions` as JSON (``{}`` replays everything); returns the summary."""
    result = _replay_from_lambda(event, context)
    # Always one data point, so failed and dry runs show on the dashboard as zero.
    count(Metric.MESSAGES_REPLAYED, result.get("messages_deleted", 0))
    return result


def _replay_from_lambda(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    try:
        options = ReplayOptions.model_validate(event or {})
    except ValidationError as exc:
        problems = describe_errors(exc)
        logger.error("invalid replay event", extra={"problem": problems})
        return _failure(f"invalid event: {problems}")
    try:
        rt = runtime.get()
    except ConfigError as exc:
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        return _failure(f"forwarder configuration is invalid: {exc}")
    replayer = Replayer.from_runtime(rt, options)
    try:
        summary = replayer.run(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    except ReplayRefused as exc:
        logger.error("replay refused", extra={"problem": str(exc)})
        return _failure(str(exc))
    if not summary.dry_run:
        summary.tally.publish("forwarded", "filtered")
    return summary.as_dict()
