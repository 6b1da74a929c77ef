"""What ``segment-raindrop status`` found, and what of it needs attention.

Plain values only: the secret appears as booleans (is the key set, is a token there), never as
its values, so the report can be printed, logged or piped as JSON without care.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "AlarmsState",
    "CountsState",
    "DeadLetterState",
    "FiringAlarm",
    "PingResult",
    "QueueState",
    "SecretState",
    "StatusReport",
    "Target",
]

NOT_AVAILABLE_LOCALLY = "not available locally (local mode publishes no CloudWatch metrics)"


@dataclass(frozen=True)
class Target:
    """What is inspected: a deployed stack (from its outputs) or a running local mode (from its
    state file). ``endpoint_url`` is local mode's moto server; ``alarm_prefix`` is None
    locally, where there are no alarms; ``stage`` is the stage dimension of the stack's metrics.
    ``mirror_to_segment`` is whether the stack mirrors Raindrop's SDK traffic into Segment (so
    the secret needs a Segment write key); None when the stack does not say."""

    kind: Literal["stack", "local"]
    name: str
    region: str | None
    webhook_url: str | None
    secret_id: str | None
    retry_queue_url: str | None
    dlq_url: str | None
    alarm_prefix: str | None = None
    endpoint_url: str | None = None
    stage: str | None = None
    mirror_to_segment: bool | None = None
    # The EventBridge intake's queue and its own dead-letter queue (None: no intake).
    intake_queue_url: str | None = None
    intake_dlq_url: str | None = None


@dataclass(frozen=True)
class SecretState:
    readable: bool
    raindrop_key_configured: bool = False
    webhook_token: bool = False
    webhook_token_previous: bool = False
    segment_shared_secret: bool = False
    # Raindrop -> Segment: whether the stack mirrors (so the key is needed), and whether it is set.
    segment_write_key_needed: bool = False
    segment_write_key_configured: bool = False
    error: str | None = None

    @property
    def ready(self) -> bool:
        mirror_ready = self.segment_write_key_configured or not self.segment_write_key_needed
        return (
            self.readable and self.raindrop_key_configured and self.webhook_token and mirror_ready
        )


@dataclass(frozen=True)
class QueueState:
    """Messages visible, in flight and delayed; ``error`` when the queue could not be read."""

    url: str | None
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    error: str | None = None

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True)
class DeadLetterState:
    """The oldest ``first_failure_at`` among the dead-letter messages peeked at (``peeked`` of
    them; all of them when ``peeked`` equals the queue's depth)."""

    oldest_failure_at: datetime | None = None
    peeked: int = 0
    error: str | None = None


@dataclass(frozen=True)
class FiringAlarm:
    name: str
    since: datetime | None
    reason: str


@dataclass(frozen=True)
class AlarmsState:
    """``available`` False: not looked at (local mode), with ``note`` saying why."""

    available: bool
    prefix: str | None = None
    total: int = 0
    in_alarm: tuple[FiringAlarm, ...] = ()
    error: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CountsState:
    """The forwarder's event counts over the last ``window_minutes`` (CloudWatch sums), and the
    oldest failure the retry worker handled in that window (RetryFailureAge, seconds)."""

    available: bool
    window_minutes: int = 60
    # None when not available (or unreadable): a script must not read "no traffic" into it.
    received: int | None = None
    forwarded: int | None = None
    filtered: int | None = None
    queued: int | None = None
    dead_lettered: int | None = None
    # Counted from API Gateway's access log, most answered before any function ran: 413 (too
    # large for Lambda's payload; Segment drops them), 429 (the stage's throttle; Raindrop's
    # SDK drops them after about 1.5 s) and 5xx API Gateway answered itself.
    too_large: int | None = None
    throttled: int | None = None
    gateway_errors: int | None = None
    retry_failure_age_seconds: float | None = None
    error: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class PingResult:
    url: str | None
    trace_id: str
    status: int | None = None
    answer: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Answered 200 and the event reached Raindrop (not queued, not dead-lettered)."""
        answer = self.answer or {}
        return self.status == 200 and answer.get("forwarded") == answer.get("received") == 1


@dataclass(frozen=True)
class StatusReport:
    target: Target
    secret: SecretState
    retry_queue: QueueState
    dead_letter_queue: QueueState
    dead_letters: DeadLetterState
    alarms: AlarmsState
    counts: CountsState
    ping: PingResult | None = None
    checked_at: datetime | None = None
    # The EventBridge intake's queues, when the target has the intake.
    intake_queue: QueueState | None = None
    intake_dead_letter_queue: QueueState | None = None

    def problems(self) -> list[str]:
        """Each thing that needs attention, as one sentence; empty when healthy."""
        problems: list[str] = []
        problems += _secret_problems(self.secret)
        for label, queue in (("retry", self.retry_queue), ("dead-letter", self.dead_letter_queue)):
            if queue.error:
                problems.append(f"the {label} queue could not be read: {queue.error}")
        if not self.dead_letter_queue.error and self.dead_letter_queue.total:
            problems.append(
                f"the dead-letter queue holds {self.dead_letter_queue.total} message(s): read why "
                "(docs/runbook.md), fix the cause, then `segment-raindrop replay`"
            )
        problems += _intake_problems(self.intake_queue, self.intake_dead_letter_queue)
        problems += _alarm_problems(self.alarms)
        problems += _count_problems(self.counts)
        if self.ping is not None and not self.ping.ok:
            problems.append(f"the test event did not get through: {describe_ping(self.ping)}")
        return problems

    @property
    def ok(self) -> bool:
        return not self.problems()

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (times as ISO 8601 UTC)."""
        data: dict[str, Any] = _jsonable(asdict(self))
        data["secret"]["ready"] = self.secret.ready
        for name, queue in (
            ("retry_queue", self.retry_queue),
            ("dead_letter_queue", self.dead_letter_queue),
            ("intake_queue", self.intake_queue),
            ("intake_dead_letter_queue", self.intake_dead_letter_queue),
        ):
            if queue is not None:
                data[name]["total"] = queue.total
        if self.ping is not None:
            data["ping"]["ok"] = self.ping.ok
        data["problems"] = self.problems()
        data["ok"] = self.ok
        return data


def _intake_problems(queue: QueueState | None, dead: QueueState | None) -> list[str]:
    problems: list[str] = []
    for label, state in (("EventBridge intake", queue), ("EventBridge intake's dead-letter", dead)):
        if state is not None and state.error:
            problems.append(f"the {label} queue could not be read: {state.error}")
    if dead is not None and not dead.error and dead.total:
        problems.append(
            f"the EventBridge intake's dead-letter queue holds {dead.total} record(s) the "
            "forwarder could not take: fix the cause, then redrive them to the intake queue "
            "(docs/runbook.md)"
        )
    return problems


def _alarm_problems(alarms: AlarmsState) -> list[str]:
    if not alarms.available:
        return []
    if alarms.error:
        return [f"the alarms could not be read: {alarms.error}"]
    if alarms.total == 0:
        return [f"no alarms named {alarms.prefix}* were found (another region or stage?)"]
    return [f"alarm {alarm.name} is in ALARM" for alarm in alarms.in_alarm]


def _count_problems(counts: CountsState) -> list[str]:
    if not counts.available:
        return []
    if counts.error:
        return [f"the forwarder's metrics could not be read: {counts.error}"]
    problems = []
    if counts.too_large:
        problems.append(
            f"{counts.too_large} request(s) were too large for Lambda and answered 413, which "
            "Segment drops: lower the Webhooks batch size (stack output SegmentBatchSize)"
        )
    if counts.throttled:
        problems.append(
            f"{counts.throttled} request(s) were answered 429 by API Gateway's throttle "
            "(Raindrop's SDK drops them): raise the route limits within the Lambda concurrency "
            "(docs/deploy.md, Throttling and Lambda concurrency)"
        )
    if counts.gateway_errors:
        problems.append(
            f"API Gateway answered {counts.gateway_errors} request(s) with 5xx itself (no Lambda "
            "concurrency left, a crashed function or a timeout): see errorResponseType in the "
            "access log"
        )
    return problems


def _secret_problems(secret: SecretState) -> list[str]:
    if not secret.readable:
        return [f"the secret could not be read: {secret.error}"]
    problems = []
    if not secret.raindrop_key_configured:
        problems.append(
            "the Raindrop key in the secret is missing or a placeholder: set raindrop_api_key "
            "(docs/deploy.md, section 4)"
        )
    if not secret.webhook_token:
        problems.append("the secret has no webhook_token: Segment's requests cannot authenticate")
    if secret.segment_write_key_needed and not secret.segment_write_key_configured:
        problems.append(
            "the mirror is on but the secret has no segment_write_key (or a placeholder): "
            "Raindrop's SDK traffic reaches Raindrop, not Segment (docs/deploy.md, section 4)"
        )
    return problems


def describe_ping(ping: PingResult) -> str:
    if ping.error is not None:
        return ping.error
    answer = ping.answer or {}
    if "received" in answer:
        counts = ", ".join(
            f"{key.replace('_', '-')} {answer[key]}"
            for key in ("received", "forwarded", "filtered", "queued", "dead_lettered")
            if key in answer
        )
        return f"HTTP {ping.status}: {counts}"
    detail = answer.get("error") or answer.get("message") or ""
    return f"HTTP {ping.status}" + (f": {detail}" if detail else "")


def iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
