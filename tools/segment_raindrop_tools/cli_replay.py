"""``segment-raindrop replay``: replay the dead-letter queue from an operator's machine.

Exit status (:class:`~segment_raindrop_tools.cli_common.ExitCode`): 0 when everything selected
was replayed (dry run: would be), 1 when something was kept, unparseable or interrupted, 2 when
the replay could not start, 130 when aborted.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Annotated

import typer
from botocore.config import Config
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from segment_raindrop.adapters.aws import aws_clients
from segment_raindrop.adapters.partials import PartialStore
from segment_raindrop.adapters.secrets import SecretStore
from segment_raindrop.core.config import ReplayConfig, describe_errors
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.service.replay.options import ReplayOptions
from segment_raindrop.service.replay.replayer import Replayer, ReplayRefused
from segment_raindrop.service.replay.summary import ReplayProgress, ReplaySummary
from segment_raindrop.service.runtime import build_channels
from segment_raindrop_tools.cli_common import (
    ExitCode,
    fail,
    interrupts,
    stderr,
)
from segment_raindrop_tools.replay_settings import replay_config

_AWS_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 5}
)

err = stderr


def _timestamp(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"not an ISO 8601 time: {value!r} (e.g. 2026-11-27T09:00:00Z)", param_hint=option
        ) from None


def build_replayer(config: ReplayConfig, options: ReplayOptions, *, region: str | None) -> Replayer:
    table = config.mirror.partials_table
    clients = aws_clients(region=region, config=_AWS_CONFIG, dynamodb=bool(table))
    # A dry run reads no secret: without an id, a real run was refused above.
    secrets = SecretStore(
        config.secret_id or "",
        max_age_seconds=config.secret_max_age_seconds,
        client=clients.secretsmanager,
    )
    # Raindrop, and Segment for the mirror's messages, as the functions send to them; queued
    # partial patches merged in the deployment's partials table, as the replay function does.
    partials = None
    if table and clients.dynamodb is not None:
        partials = PartialStore(
            clients.dynamodb, table, ttl_seconds=config.mirror.partials_ttl_seconds
        )
    channels, _ = build_channels(config, secrets, partials=partials)
    return Replayer(
        sqs=clients.sqs,
        queue_url=config.dlq_url,
        channels=channels,
        options=options,
        retry_queue_url=config.retry_queue_url,
    )


def _confirm(config: ReplayConfig, depth: int, options: ReplayOptions) -> None:
    if not sys.stdin.isatty():
        fail(
            "refusing to replay without confirmation: stdin is not a terminal. "
            "Pass --yes to replay, or --dry-run to only look."
        )
    count = depth if options.max_messages is None else min(depth, options.max_messages)
    typer.confirm(
        f"Replay up to {count} message(s) from {config.dlq_url} "
        f"to {config.delivery.raindrop_api_url}?",
        abort=True,
        err=True,
    )


def _interrupts(replayer: Replayer) -> AbstractContextManager[None]:
    """First Ctrl-C: graceful stop after the current message. Second: abort."""

    def graceful() -> None:
        replayer.stop()
        err.print(
            "[yellow]Stopping after the current message; the rest is released. "
            "Press Ctrl-C again to abort.[/]"
        )

    def abort() -> None:
        raise KeyboardInterrupt

    return interrupts(graceful=graceful, abort=abort)


def summary_table(summary: ReplaySummary) -> Table:
    dry = summary.dry_run
    table = Table(title="Dry run (nothing changed)" if dry else "Replay", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    rows: list[tuple[str, int]] = [
        ("messages received", summary.messages_received),
        ("messages selected", summary.messages_selected),
        (
            "messages that would be replayed" if dry else "messages replayed and deleted",
            summary.messages_replayed,
        ),
    ]
    if not dry:
        rows.append(("messages partly replayed (rest re-queued)", summary.messages_partly_replayed))
    rows += [
        ("messages that would be kept" if dry else "messages kept", summary.messages_kept),
        ("messages skipped by the filters", summary.messages_skipped),
        ("messages not readable (not ours)", summary.messages_unparseable),
        ("events that would be forwarded" if dry else "events forwarded", summary.events_forwarded),
        ("events filtered", summary.events_filtered),
    ]
    rows += [
        (f"events {'invalid now' if dry else 'failed: ' + reason}", count)
        for reason, count in sorted(summary.events_failed.items())
    ]
    if summary.events_omitted:
        rows.append(("events too large for SQS (not replayable)", summary.events_omitted))
    if dry:
        rows += [
            (f"items that would be sent to {endpoint}", count)
            for endpoint, count in sorted(summary.would_send.items())
        ]
    for label, value in rows:
        table.add_row(label, str(value))
    return table


def kept_lines(summary: ReplaySummary) -> list[str]:
    """Why each kept message stays: its id and recorded reason, then each reason with the
    number of its events (lines, not a table: message ids and receivers' answers are long)."""
    if not summary.kept:
        return []
    title = "Messages that would be kept" if summary.dry_run else "Messages kept"
    if summary.kept_unlisted:
        title += f" (the first {len(summary.kept)}; {summary.kept_unlisted} more not listed)"
    lines = [f"{title}:"]
    for message in summary.kept:
        lines.append(f"  {message.message_id}  dead-lettered for {message.dead_lettered_for}")
        lines += [
            f"    {events} event{'s' if events != 1 else ''}: {reason}"
            for reason, events in sorted(message.reasons.items())
        ]
    return lines


def _report(summary: ReplaySummary, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        Console().print(summary_table(summary))
        for line in kept_lines(summary):
            typer.echo(line)
    for problem in summary.errors:
        err.print(f"[red]problem:[/] {escape(problem)}", highlight=False)
    if summary.unparseable_message_ids:
        err.print(
            "[yellow]not forwarder messages (left on the queue):[/] "
            + escape(", ".join(summary.unparseable_message_ids)),
            highlight=False,
        )
    if summary.stopped:
        err.print(
            f"[yellow]Stopped early ({summary.stop_reason}); what was not replayed is back on "
            "the queue. Run the same command again to continue.[/]"
        )
    elif summary.ok:
        err.print(
            "[green]Everything selected "
            + ("would be" if summary.dry_run else "was")
            + " replayed.[/]"
        )
    else:
        err.print("[yellow]Not everything selected was replayed; see the table.[/]")


def replay(
    *,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", help="The dead-letter queue's URL.")
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            help="Replay with this stack's settings: its replay function's mapping, "
            "redaction, project, URLs, queues and secret.",
        ),
    ] = None,
    override_deployment: Annotated[
        bool,
        typer.Option(
            "--override-deployment",
            help="With --stack: replay with settings from your shell or options where they "
            "differ from the deployment's (each is printed). Refused without it.",
        ),
    ] = False,
    region: Annotated[str | None, typer.Option("--region", help="AWS region.")] = None,
    secret_id: Annotated[
        str | None,
        typer.Option(
            "--secret-id",
            help="Secret with the Raindrop key (default: the stack's SecretArn, then "
            "RAINDROP_SECRET_ID).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Map and validate only; report what would be sent."),
    ] = False,
    drop_filtered: Annotated[
        bool,
        typer.Option(
            "--drop-filtered",
            help="Delete events that the current mapping filters (kept by default: a replay "
            "configured differently from the deployment would otherwise lose them).",
        ),
    ] = False,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=1, help="Replay at most N messages.")
    ] = None,
    reason: Annotated[
        FailureReason | None,
        typer.Option("--reason", case_sensitive=False, help="Only messages with this reason."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only messages that first failed at or after.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only messages that first failed before.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.001, help="At most this many events/s.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    wait_seconds: Annotated[
        int,
        typer.Option(
            "--wait-seconds",
            min=0,
            max=20,
            hidden=True,
            help="Long polling per receive (0: short polls, for local endpoints).",
        ),
    ] = 1,
) -> None:
    """Replay the dead-letter queue into Raindrop.

    A message is deleted only once every one of its events is delivered or filtered.

    What still fails stays on the queue. Safe to interrupt (Ctrl-C) and run again.

    Exit status: 0 all replayed, 1 something kept or interrupted, 2 could not start.
    """
    # The forwarder's warnings and errors go to stderr meanwhile (see cli._root): stdout is for
    # the summary, which holds every problem already.
    _replay(
        queue_url=queue_url,
        stack=stack,
        region=region,
        secret_id=secret_id,
        override_deployment=override_deployment,
        max_messages=max_messages,
        reason=reason,
        since=since,
        until=until,
        rate=rate,
        dry_run=dry_run,
        drop_filtered=drop_filtered,
        yes=yes,
        as_json=as_json,
        wait_seconds=wait_seconds,
    )


def _replay(
    *,
    queue_url: str | None,
    stack: str | None,
    region: str | None,
    secret_id: str | None,
    override_deployment: bool,
    max_messages: int | None,
    reason: FailureReason | None,
    since: str | None,
    until: str | None,
    rate: float | None,
    dry_run: bool,
    drop_filtered: bool,
    yes: bool,
    as_json: bool,
    wait_seconds: int,
) -> None:
    try:
        options = ReplayOptions(
            max_messages=max_messages,
            dry_run=dry_run,
            drop_filtered=drop_filtered,
            reason=reason,
            since=_timestamp(since, "--since"),
            until=_timestamp(until, "--until"),
            rate=rate,
            wait_seconds=wait_seconds,
        )
    except ValidationError as exc:
        fail(describe_errors(exc))
    config = replay_config(
        shell=os.environ,
        queue_url=queue_url,
        stack=stack,
        region=region,
        secret_id=secret_id,
        dry_run=dry_run,
        override_deployment=override_deployment,
        say=lambda line: err.print(f"[yellow]{escape(line)}[/]", highlight=False),
    )
    replayer = build_replayer(config, options, region=region)
    try:
        depth = replayer.preflight()
        if not dry_run and not yes:
            _confirm(config, depth, options)
        summary = _run(replayer, depth, options)
    except ReplayRefused as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print(
            "[red]Aborted.[/] Messages in hand return to the queue when their visibility "
            "timeout ends; a message being delivered may be sent again by the next replay."
        )
        raise typer.Exit(ExitCode.ABORTED) from None
    _report(summary, as_json=as_json)
    raise typer.Exit(ExitCode.OK if summary.ok else ExitCode.INCOMPLETE)


def _run(replayer: Replayer, depth: int, options: ReplayOptions) -> ReplaySummary:
    total = depth
    if (
        options.max_messages is not None
        and options.reason is None
        and options.since is None
        and options.until is None
    ):
        total = min(depth, options.max_messages)
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress,
        _interrupts(replayer),
    ):
        task = progress.add_task(
            "checking" if options.dry_run else "replaying", total=max(total, 1)
        )

        def on_progress(update: ReplayProgress) -> None:
            summary = update.summary
            progress.update(
                task,
                advance=1,
                description=(
                    f"{'checking' if options.dry_run else 'replaying'}: "
                    f"{summary.messages_replayed} ok, {summary.messages_kept} kept"
                ),
            )

        replayer.set_progress(on_progress)
        return replayer.run()
