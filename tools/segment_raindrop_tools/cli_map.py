"""``segment-raindrop map``: what the forwarder would send Raindrop for some Segment events.

Reads a webhook body (one event, an array, or a ``{"batch": [...]}`` envelope) from a file or
stdin, maps it with the configuration the functions would use, and shows per event the
Raindrop items it becomes or why it is filtered or invalid, the redactions made in it
(REDACT_PII), and the Raindrop project the request goes to. Nothing is sent; no AWS is needed.
Exit status: 0, or 1 when some event is invalid (it would go to the dead-letter queue).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from segment_raindrop.core.config import ConfigError
from segment_raindrop.core.context import MAPPING_KEYS
from segment_raindrop.core.environment import read_delivery_config
from segment_raindrop.core.segment_body import BodyError, parse_body
from segment_raindrop_tools.cli_common import ExitCode, fail
from segment_raindrop_tools.mapping_preview import (
    Preview,
    mapping_config,
    parse_context,
    preview,
    request_project,
)

_OUTCOME_STYLE = {"mapped": "green", "filtered": "dim", "invalid": "bold red"}


def map_command(
    source: Annotated[
        Path | None,
        typer.Argument(
            help="File of Segment events (one event, an array, or a {batch} envelope); "
            "stdin when absent or '-'.",
            show_default=False,
        ),
    ] = None,
    *,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="A mapping setting as cdk.json names it, KEY=VALUE (lists and objects as "
            f"JSON); repeatable. Keys: {', '.join(MAPPING_KEYS)}.",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            help="Map the request as POST /segment/SLUG would: to that Raindrop project (held "
            "to the webhook's rules and RAINDROP_PROJECTS). Default: as POST /segment, to "
            "RAINDROP_PROJECT_ID or Raindrop's default project.",
            metavar="SLUG",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the Raindrop request bodies per endpoint as JSON."),
    ] = False,
) -> None:
    """Show what the forwarder would send Raindrop for some Segment events (sends nothing).

    The configuration is the functions' environment (FORWARD_EVENT_PREFIXES, FIELD_PATHS, ...)
    with any --context settings on top.
    """
    try:
        config = mapping_config(os.environ, parse_context(context or []))
        delivery = read_delivery_config(os.environ)
        target = request_project(project, delivery)
    except ConfigError as exc:
        fail(str(exc))
    raw = _read(source)
    try:
        parsed = parse_body(raw)
    except BodyError as exc:
        fail(str(exc))
    result = preview(parsed.events, config, delivery, project=target)
    if as_json:
        _print_json(result)
    else:
        _print_table(result)
    if result.count("invalid"):
        raise typer.Exit(ExitCode.INCOMPLETE)


def _read(source: Path | None) -> bytes:
    if source is None or str(source) == "-":
        return sys.stdin.buffer.read()
    try:
        return source.read_bytes()
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")


def _as_json(result: Preview) -> dict[str, Any]:
    return {
        "events": [
            {
                "index": event.index,
                "kind": event.kind,
                "outcome": event.outcome,
                **({"reason": event.reason} if event.reason else {}),
                "items": [
                    {
                        "endpoint": item.endpoint.value,
                        **({"optional": True} if item.optional else {}),
                        "item": json.loads(item.payload),
                    }
                    for item in event.items
                ],
                **(
                    {"dropped_attachments": event.dropped_attachments}
                    if event.dropped_attachments
                    else {}
                ),
                **({"redactions": event.redactions} if event.redactions else {}),
            }
            for event in result.events
        ],
        # X-Raindrop-Project-Id of every request; null: none, so Raindrop's default project.
        "project": result.project,
        # Each request's body exactly as it would be sent (a JSON array), in order.
        "requests": [
            {"endpoint": endpoint, "body": json.loads(body)} for endpoint, body in result.requests
        ],
    }


def _print_json(result: Preview) -> None:
    sys.stdout.write(json.dumps(_as_json(result), ensure_ascii=False, indent=2) + "\n")


def _print_table(result: Preview) -> None:
    console = Console(highlight=False)
    table = Table(
        title=f"What Raindrop would receive in {_project_name(result.project)} (nothing was sent)",
        show_lines=True,
    )
    table.add_column("#", justify="right")
    table.add_column("Segment event")
    table.add_column("outcome")
    table.add_column("Raindrop items", overflow="fold")
    for event in result.events:
        style = _OUTCOME_STYLE[event.outcome]
        outcome = f"[{style}]{event.outcome}[/]"
        lines = [
            f"[bold]{item.endpoint.value}[/]{' (enrichment)' if item.optional else ''}\n"
            + escape(json.dumps(json.loads(item.payload), ensure_ascii=False, indent=1))
            for item in event.items
        ]
        if event.reason:
            lines.append(escape(event.reason))
        if event.dropped_attachments:
            lines.append(
                f"[yellow]{event.dropped_attachments} attachment(s) dropped: "
                "not in Raindrop's attachment shape[/]"
            )
        if event.redactions:
            lines.append(f"[yellow]redacted: {_kinds(event.redactions)}[/]")
        table.add_row(str(event.index), escape(event.kind), outcome, "\n".join(lines))
    console.print(table)
    dropped = sum(event.dropped_attachments for event in result.events)
    redactions: Counter[str] = Counter()
    for event in result.events:
        redactions.update(event.redactions)
    console.print(
        f"{len(result.events)} events: {result.count('mapped')} mapped, "
        f"{result.count('filtered')} filtered, {result.count('invalid')} invalid; "
        f"{dropped} attachment(s) dropped; {sum(redactions.values())} redaction(s); "
        f"{len(result.requests)} request(s) would be sent to {_project_name(result.project)}.",
        soft_wrap=True,
    )


def _project_name(project: str | None) -> str:
    return f"project {escape(project)}" if project else "Raindrop's default project"


def _kinds(counts: dict[str, int]) -> str:
    """``1 email, 2 phone``: counts by kind, never what was redacted."""
    return ", ".join(f"{count} {kind}" for kind, count in counts.items())
