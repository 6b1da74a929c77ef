"""The human summary of a :class:`StatusReport` (``--json`` prints ``as_dict()`` instead)."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from segment_raindrop_tools.status.queues import PEEK_LIMIT
from segment_raindrop_tools.status.report import (
    AlarmsState,
    CountsState,
    DeadLetterState,
    PingResult,
    QueueState,
    SecretState,
    StatusReport,
    describe_ping,
    iso,
)

__all__ = ["render"]

_GOOD, _BAD, _INFO = "[green]✓[/]", "[red]✗[/]", "[dim]·[/]"


def render(report: StatusReport, console: Console) -> None:
    target = report.target
    where = (
        f"stack {target.name}" + (f" ({target.region})" if target.region else "")
        if target.kind == "stack"
        else f"local mode ({target.name})"
    )
    console.print(f"[bold]segment-raindrop status[/]: {escape(where)}", highlight=False)
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    for row in _rows(report):
        table.add_row(*row)
    console.print(table)
    problems = report.problems()
    console.print()
    if problems:
        console.print("[bold yellow]Needs attention:[/]")
        listing = Table.grid(padding=(0, 1))
        listing.add_column(no_wrap=True)
        listing.add_column()
        for problem in problems:
            listing.add_row("  -", escape(problem))
        console.print(listing, highlight=False)
    else:
        console.print("[bold green]Healthy:[/] nothing needs attention.")


def _rows(report: StatusReport) -> list[tuple[str, str, str]]:
    target = report.target
    rows = [
        (_INFO, "Webhook", escape(target.webhook_url or "(no WebhookUrl output)")),
        _secret(report.secret),
        _queue("Retry queue", report.retry_queue, attention_if_any=False),
        _queue("Dead-letter queue", report.dead_letter_queue, attention_if_any=True),
    ]
    if report.dead_letter_queue.total and not report.dead_letter_queue.error:
        rows.append(
            ("", "", _oldest(report.dead_letters, report.dead_letter_queue, report.checked_at))
        )
    rows += _intake_rows(report)
    rows += [_alarms(report.alarms), _counts(report.counts)]
    if report.counts.available and not report.counts.error:
        rows.append(_refusals(report.counts))
    if report.ping is not None:
        rows.append(_ping(report.ping))
    return rows


def _secret(secret: SecretState) -> tuple[str, str, str]:
    if not secret.readable:
        return _BAD, "Secret", escape(f"unreadable: {secret.error}")
    parts = [
        "Raindrop key set" if secret.raindrop_key_configured else "Raindrop key NOT set",
        "webhook token set" if secret.webhook_token else "no webhook token",
        "shared secret set" if secret.segment_shared_secret else "no shared secret",
    ]
    if secret.segment_write_key_needed:
        parts.append(
            "Segment write key set (mirror on)"
            if secret.segment_write_key_configured
            else "Segment write key NOT set (mirror on)"
        )
    if secret.webhook_token_previous:
        parts.append("a previous token still accepted (rotation in progress)")
    state = "ready" if secret.ready else "not ready"
    return (_GOOD if secret.ready else _BAD), "Secret", f"{state} ({', '.join(parts)})"


def _intake_rows(report: StatusReport) -> list[tuple[str, str, str]]:
    """The EventBridge intake's queues, when the target has the intake."""
    rows = []
    if report.intake_queue is not None:
        rows.append(_queue("EventBridge intake", report.intake_queue, attention_if_any=False))
    if report.intake_dead_letter_queue is not None:
        dead = report.intake_dead_letter_queue
        rows.append(_queue("Intake dead letters", dead, attention_if_any=True))
    return rows


def _queue(label: str, queue: QueueState, *, attention_if_any: bool) -> tuple[str, str, str]:
    if queue.error:
        return _BAD, label, escape(f"unreadable: {queue.error}")
    text = (
        f"{queue.total} message(s) ({queue.visible} visible, {queue.in_flight} in flight, "
        f"{queue.delayed} delayed)"
    )
    mark = _BAD if attention_if_any and queue.total else (_INFO if queue.total else _GOOD)
    return mark, label, text


def _oldest(dead: DeadLetterState, queue: QueueState, now: datetime | None) -> str:
    if dead.error:
        return escape(f"oldest failure unknown: could not peek ({dead.error})")
    if dead.oldest_failure_at is None:
        return "oldest failure unknown (no visible message to peek at: a replay may be running)"
    age = f", {_ago(now - dead.oldest_failure_at)}" if now else ""
    scope = (
        f"of all {dead.peeked} peeked"
        if dead.peeked >= queue.visible
        else f"of {dead.peeked} peeked (at most {PEEK_LIMIT})"
    )
    return (
        f"oldest failure {iso(dead.oldest_failure_at)}{age} ({scope}; each peek counts as a "
        "receive, which changes nothing on this queue)"
    )


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _alarms(alarms: AlarmsState) -> tuple[str, str, str]:
    if not alarms.available:
        return _INFO, "Alarms", escape(alarms.note or "not available")
    if alarms.error:
        return _BAD, "Alarms", escape(f"unreadable: {alarms.error}")
    if alarms.total == 0:
        return _BAD, "Alarms", escape(f"none named {alarms.prefix}* found")
    if not alarms.in_alarm:
        return _GOOD, "Alarms", f"none of {alarms.total} in ALARM"
    names = ", ".join(
        alarm.name.removeprefix(alarms.prefix or "")
        + (f" (since {iso(alarm.since)})" if alarm.since else "")
        for alarm in alarms.in_alarm
    )
    return _BAD, "Alarms", escape(f"{len(alarms.in_alarm)} of {alarms.total} in ALARM: {names}")


def _counts(counts: CountsState) -> tuple[str, str, str]:
    label = "Last hour" if counts.window_minutes == 60 else f"Last {counts.window_minutes} min"
    if not counts.available:
        return _INFO, label, escape(counts.note or "not available")
    if counts.error:
        return _BAD, label, escape(f"unreadable: {counts.error}")
    text = (
        f"received {counts.received}, forwarded {counts.forwarded}, queued {counts.queued}, "
        f"dead-lettered {counts.dead_lettered} (filtered {counts.filtered})"
    )
    if counts.retry_failure_age_seconds is not None:
        text += (
            f"; the retry worker handled events failing for up to "
            f"{_ago_minutes(counts.retry_failure_age_seconds)}"
        )
    return _INFO, label, text


def _refusals(counts: CountsState) -> tuple[str, str, str]:
    """What API Gateway answered itself in the window, before any function ran."""
    refused = (counts.too_large or 0, counts.throttled or 0, counts.gateway_errors or 0)
    text = (
        f"{refused[0]} request(s) too large (413, dropped by Segment), {refused[1]} throttled "
        f"(429), {refused[2]} answered 5xx by API Gateway itself"
    )
    return (_BAD if any(refused) else _GOOD), "API Gateway", text


def _ago_minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _ping(ping: PingResult) -> tuple[str, str, str]:
    text = f"{describe_ping(ping)} (trace id {ping.trace_id})"
    return (_GOOD if ping.ok else _BAD), "Ping", escape(text)
