"""``segment-raindrop map`` on narrow terminals: the items' JSON reads back whole, prose wraps
at spaces only, and each item is named by what it holds (typer's CliRunner, fixed COLUMNS)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from segment_raindrop_tools.cli import app

FIXTURES = Path(__file__).parent.parent / "fixtures"
BODIES = sorted(
    path.name
    for path in FIXTURES.glob("*.json")
    if path.name != "classic_webhook_delete.json"  # a delete maps to nothing to show
)
SUMMARY = re.compile(r"^\d+ events: ")

runner = CliRunner()


def run_map(body: bytes, *, columns: int, args: tuple[str, ...] = ()) -> Any:
    return runner.invoke(app, ["map", *args], input=body, env={"COLUMNS": str(columns)})


def json_blocks(output: str) -> tuple[list[Any], list[str]]:
    """The JSON blocks (from a line ``    {`` to its ``    }``), parsed, and the other lines."""
    blocks: list[Any] = []
    prose: list[str] = []
    block: list[str] | None = None
    for line in output.split("\n"):
        if block is None and line == "    {":
            block = [line]
        elif block is not None:
            block.append(line)
            if line == "    }":
                blocks.append(json.loads("\n".join(block)))
                block = None
        else:
            prose.append(line)
    assert block is None, "a JSON block never closed"
    return blocks, prose


@pytest.mark.parametrize("columns", [80, 40])
@pytest.mark.parametrize("fixture", BODIES)
def test_every_item_reads_back_as_the_json_that_would_be_sent(fixture: str, columns: int) -> None:
    body = (FIXTURES / fixture).read_bytes()
    document = json.loads(run_map(body, columns=240, args=("--json",)).stdout)
    sent = [item["item"] for event in document["events"] for item in event["items"]]
    assert sent, fixture

    result = run_map(body, columns=columns)
    assert result.exit_code == 0, result.output
    blocks, _ = json_blocks(result.output)
    # Every item, in order, exactly: no line of it was broken or cut, whatever the width.
    assert blocks == sent


@pytest.mark.parametrize("columns", [80, 40])
@pytest.mark.parametrize("fixture", BODIES)
def test_prose_wraps_at_spaces_and_keeps_every_word_whole(fixture: str, columns: int) -> None:
    body = (FIXTURES / fixture).read_bytes()
    wide = json_blocks(run_map(body, columns=1000).output)[1]
    narrow = json_blocks(run_map(body, columns=columns).output)[1]
    # The same words in the same order: a wrapped line only moved words to the next line.
    assert " ".join(narrow).split() == " ".join(wide).split()
    for line in narrow:
        if SUMMARY.match(line):
            continue  # one line whatever the width: scripts and the docs look for it
        assert cell_len(line) <= columns or len(line.split()) == 1, line


def test_each_event_is_headed_and_each_item_named_by_what_it_holds() -> None:
    result = run_map((FIXTURES / "ai_conversation.json").read_bytes(), columns=40)
    _, prose = json_blocks(result.output)
    text = " ".join(" ".join(prose).split())
    for shown in (
        "What Raindrop would receive in Raindrop's default project (nothing was sent)",
        "#0 identify: mapped users/identify: 5 traits user=usr_ada",
        '#1 track "AI Chat Completed": mapped events/track: ai_interaction user=usr_ada '
        "event_id=tr_conv_1",
        "1 attachment(s) dropped: not in Raindrop's attachment shape",
        "signals/track: feedback (feedback, NEGATIVE) event_id=tr_conv_1",
        "#5 page: filtered (page calls are not forwarded)",
        "7 events: 5 mapped, 2 filtered, 0 invalid",
    ):
        assert shown in text, shown
    assert "0 traits" not in text


def test_enrichment_is_marked_and_the_summary_stays_on_one_line() -> None:
    body = (FIXTURES / "actions_single_ai_chat_completed.json").read_bytes()
    lines = run_map(body, columns=40).output.split("\n")
    assert any(line.startswith("  users/identify (enrichment): 7 traits") for line in lines)
    [summary] = [line for line in lines if SUMMARY.match(line)]
    assert summary.endswith("would be sent to Raindrop's default project.")


def test_a_long_project_slug_or_reason_is_never_split() -> None:
    event = {
        "type": "track",
        "event": "AI Feedback Submitted",
        "userId": "u",
        "properties": {"trace_id": "t", "signal_type": "edit"},
    }
    result = runner.invoke(
        app,
        ["map", "--project", "a-very-long-project-slug-for-a-narrow-terminal"],
        input=json.dumps(event),
        env={"COLUMNS": "20"},
    )
    assert result.exit_code == 1
    lines = result.output.split("\n")
    assert "  a-very-long-project-slug-for-a-narrow-terminal" in lines
    assert "properties.after)" in " ".join(lines)
