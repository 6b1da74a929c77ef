"""Every check of ``segment-raindrop status``, run against one target."""

from __future__ import annotations

from datetime import datetime

from segment_raindrop.core.contract import StackOutput
from segment_raindrop_tools.status.alarms import alarms_state
from segment_raindrop_tools.status.metrics import counts_state
from segment_raindrop_tools.status.ping import ping
from segment_raindrop_tools.status.queues import oldest_dead_letter, queue_state
from segment_raindrop_tools.status.report import (
    NOT_AVAILABLE_LOCALLY,
    AlarmsState,
    CountsState,
    StatusReport,
    Target,
)
from segment_raindrop_tools.status.secret import read_secret, secret_state
from segment_raindrop_tools.status.target import Clients

__all__ = ["inspect"]


def inspect(target: Target, clients: Clients, *, send_ping: bool, now: datetime) -> StatusReport:
    """Read everything (a check that fails is reported, never raised); ``send_ping`` also
    sends the test event."""
    secret, secret_error = read_secret(clients.secretsmanager, target.secret_id)
    retry = queue_state(clients.sqs, target.retry_queue_url, StackOutput.RETRY_QUEUE_URL)
    dlq = queue_state(clients.sqs, target.dlq_url, StackOutput.DEAD_LETTER_QUEUE_URL)
    if clients.cloudwatch is not None and target.alarm_prefix is not None:
        alarms = alarms_state(clients.cloudwatch, target.alarm_prefix)
        counts = counts_state(clients.cloudwatch, now, stage=target.stage)
    else:
        alarms = AlarmsState(available=False, note="not available locally (no CloudWatch)")
        counts = CountsState(available=False, note=NOT_AVAILABLE_LOCALLY)
    intake = dead = None
    if target.intake_queue_url is not None:
        intake = queue_state(
            clients.sqs, target.intake_queue_url, StackOutput.SEGMENT_EVENTS_QUEUE_URL
        )
        dead = queue_state(
            clients.sqs, target.intake_dlq_url, StackOutput.SEGMENT_EVENTS_DEAD_LETTER_QUEUE_URL
        )
    return StatusReport(
        target=target,
        secret=secret_state(secret, secret_error, mirror_to_segment=bool(target.mirror_to_segment)),
        retry_queue=retry,
        dead_letter_queue=dlq,
        dead_letters=oldest_dead_letter(clients.sqs, dlq),
        alarms=alarms,
        counts=counts,
        ping=ping(target.webhook_url, secret, now) if send_ping else None,
        checked_at=now,
        intake_queue=intake,
        intake_dead_letter_queue=dead,
    )
