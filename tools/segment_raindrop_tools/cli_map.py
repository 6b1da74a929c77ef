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
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.text import Text

from segment_raindrop.core.config import ConfigError
from segment_raindrop.core.context import MAPPING_KEYS
from segment_raindrop.core.environment import read_delivery_config
from segment_raindrop.core.mapping.items import MappedItem
from segment_raindrop.core.segment_body import BodyError, parse_body
from segment_raindrop_tools.cli_common import ExitCode, fail
from segment_raindrop_tools.item_summary import summarise_item
from segment_raindrop_tools.mapping_preview import (
    EventPreview,
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

    Configuration: the functions' environment, with any --context settings on top.
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
        _print_events(result)
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


def _print_events(result: Preview) -> None:
    """Per event a heading, then each Raindrop item: a line naming it, and its JSON indented,
    a line of ``json.dumps`` per line. Prose wraps at spaces only; a JSON line is never broken
    (the terminal may fold it, nothing is inserted), so the items read back as JSON."""
    console = Console(highlight=False, soft_wrap=True)
    say = _Writer(console)
    say(Text(f"What Raindrop would receive in {_project_name(result.project)} (nothing was sent)"))
    for event in result.events:
        console.print()
        say(_heading(event))
        for item in event.items:
            say(_item_line(item), indent=2)
            for line in _json_lines(item):
                console.print(Text("    ") + _JSON(Text(line)))
        for note in _notes(event):
            say(Text(note, style="yellow"), indent=2)
    console.print()
    dropped = sum(event.dropped_attachments for event in result.events)
    redactions: Counter[str] = Counter()
    for event in result.events:
        redactions.update(event.redactions)
    # One line whatever the width: scripts and the docs look for it.
    console.print(
        Text(
            f"{len(result.events)} events: {result.count('mapped')} mapped, "
            f"{result.count('filtered')} filtered, {result.count('invalid')} invalid; "
            f"{dropped} attachment(s) dropped; {sum(redactions.values())} redaction(s); "
            f"{len(result.requests)} request(s) would be sent to {_project_name(result.project)}."
        )
    )


_JSON = JSONHighlighter()


def _heading(event: EventPreview) -> Text:
    """``#1 track "AI Chat Completed": mapped``, the reason after a filtered or invalid one."""
    heading = Text.assemble(
        (f"#{event.index}", "bold"),
        f" {event.kind}: ",
        (event.outcome, _OUTCOME_STYLE[event.outcome]),
    )
    if event.reason:
        heading.append(f" ({event.reason})")
    return heading


def _item_line(item: MappedItem) -> Text:
    label, details = summarise_item(item.endpoint.value, json.loads(item.payload))
    line = Text(item.endpoint.value, style="bold")
    if item.optional:
        line.append(" (enrichment)")
    line.append(f": {label}")
    if details:
        line.append(f"  {details}")
    return line


def _json_lines(item: MappedItem) -> list[str]:
    """The item as sent, pretty-printed: joined again, the lines are its JSON."""
    return json.dumps(json.loads(item.payload), ensure_ascii=False, indent=2).split("\n")


def _notes(event: EventPreview) -> list[str]:
    notes = []
    if event.dropped_attachments:
        notes.append(
            f"{event.dropped_attachments} attachment(s) dropped: not in Raindrop's attachment shape"
        )
    if event.redactions:
        notes.append(f"redacted: {_kinds(event.redactions)}")
    return notes


class _Writer:
    """Prints styled prose wrapped at spaces to the console's width, never inside a word (a
    word longer than a line stays whole on its own line)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def __call__(self, text: Text, *, indent: int = 0) -> None:
        # Continuation lines hang 2 further in than the first.
        width = self._console.width - indent
        for number, line in enumerate(text.divide(_breaks(text.plain, width, width - 2))):
            line.rstrip()
            self._console.print(Text(" " * (indent + (2 if number else 0))) + line)


def _breaks(plain: str, first: int, rest: int) -> list[int]:
    """Offsets at which to start a new line so that the first line fits ``first`` cells and
    the others ``rest``, breaking only before a word (after whitespace)."""
    breaks: list[int] = []
    start, width = 0, first
    for word in re.finditer(r"\S+", plain):
        if word.start() > start and cell_len(plain[start : word.end()]) > width:
            breaks.append(word.start())
            start, width = word.start(), rest
    return breaks


def _project_name(project: str | None) -> str:
    return f"project {project}" if project else "Raindrop's default project"


def _kinds(counts: dict[str, int]) -> str:
    """``1 email, 2 phone``: counts by kind, never what was redacted."""
    return ", ".join(f"{count} {kind}" for kind, count in counts.items())
