"""One line per Raindrop item (local mode's console, ``map``): names and sizes, never text."""

from __future__ import annotations

from typing import Any

import pytest

from segment_raindrop_tools.item_summary import describe_item, summarise_item
from segment_raindrop_tools.local.console import Console

PROMPT = "How do I rotate my API key?"
ANSWER = "Go to Settings, API keys, and choose Rotate."
BEGIN = {
    "event_id": "int-1",
    "user_id": "usr_1",
    "event": "ai_interaction",
    "ai_data": {"model": "gpt-4o", "input": PROMPT},
    "is_pending": True,
}
UPDATE = {"event_id": "int-1", "properties": {"tool": "search", "step": 2}, "is_pending": True}
FINISH = {"event_id": "int-1", "ai_data": {"output": ANSWER}, "is_pending": False}


@pytest.mark.parametrize(
    ("item", "label", "details"),
    [
        (
            BEGIN,
            "ai_interaction (pending)",
            f"user=usr_1  event_id=int-1  model=gpt-4o  input={len(PROMPT)} chars",
        ),
        (UPDATE, "(patch) (pending)", "event_id=int-1  2 properties"),
        (FINISH, "(patch) (finished)", f"event_id=int-1  output={len(ANSWER)} chars"),
        (
            {**FINISH, "attachments": [{"type": "text", "value": "x"}]},
            "(patch) (finished)",
            f"event_id=int-1  output={len(ANSWER)} chars  1 attachment",
        ),
    ],
)
def test_a_partial_event_is_described_by_what_it_holds(
    item: dict[str, Any], label: str, details: str
) -> None:
    assert summarise_item("events/track_partial", item) == (label, details)
    line = describe_item("events/track_partial", item)
    assert "traits" not in line
    assert PROMPT not in line
    assert ANSWER not in line


@pytest.mark.parametrize(
    ("endpoint", "item", "label"),
    [
        ("users/identify", {"user_id": "u", "traits": {"a": 1, "b": "x"}}, "2 traits"),
        ("users/identify", {"user_id": "u", "traits": {"plan": "pro"}}, "1 trait"),
        ("traces", {"resourceSpans": [{}, {}]}, "2 resource spans"),
        ("signals/track", {"event_id": "e", "signal_name": "thumbs"}, "thumbs (default)"),
        ("events/track", {"event_id": "e", "event": "ai_interaction"}, "ai_interaction"),
    ],
)
def test_every_endpoint_has_its_own_label(endpoint: str, item: dict[str, Any], label: str) -> None:
    assert summarise_item(endpoint, item)[0] == label


def test_the_console_keeps_its_columns_for_partial_events() -> None:
    lines: list[str] = []
    console = Console(echo=lines.append)
    console.accepted("events/track_partial", [FINISH])
    console.accepted("users/identify", [{"user_id": "u", "traits": {"a": 1}}])
    console.mirrored([{"type": "track", "event": "AI Chat Completed", "userId": "u"}])
    # Source, endpoint (or Segment call), then the label: in the same columns on every line.
    labels = ["(patch) (finished)", "1 trait", "AI Chat Completed"]
    assert len({line.index(label) for line, label in zip(lines, labels, strict=True)}) == 1
