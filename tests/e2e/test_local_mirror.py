"""Local mode shows the mirror: ``make sample``'s second half (``send-sdk-sample``, Raindrop's
own SDK in its own process) goes through local mode's SDK endpoint, and the console prints what
Raindrop and Segment received, the answers' ``mirrored`` counts, and saves Segment's events
beside Raindrop's items."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Local, wait_for

StartLocal = Callable[..., Local]
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_sdk_sample_is_mirrored_and_shown(start_local: StartLocal) -> None:
    local = start_local()
    data_dir = Path(local.endpoints.state_file).parent
    done = subprocess.run(
        [sys.executable, "-m", "segment_raindrop_tools.cli", "send-sdk-sample",
         "--data-dir", str(data_dir), "--user-id", "usr-sample"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "events/track_partial" in done.stdout
    segment = local.mode.segment
    assert segment is not None
    # The AI event, the finished interaction, the signal and the identify.
    assert wait_for(lambda: len(segment.accepted_events()) >= 4, timeout=10)

    printed = "\n".join(local.lines)
    assert "mirrored=" in printed
    mirrored = [line for line in local.lines if "  segment   " in line]
    assert len(mirrored) == 4
    assert sum("AI Chat Completed" in line for line in mirrored) == 2
    assert sum("AI Feedback Submitted" in line for line in mirrored) == 1
    assert sum("identify" in line for line in mirrored) == 1
    # Names and ids only: no prompt, answer, comment or trait value.
    for secretish in ("incident", "Sorry for the wait", "Clear and short", "team"):
        assert secretish not in printed

    saved_file = local.endpoints.segment_events_file
    assert saved_file is not None
    saved = [json.loads(line) for line in Path(saved_file).read_text().splitlines()]
    assert [entry["item"] for entry in saved] == segment.accepted_events()
    attachments = [
        event["properties"].get("attachments")
        for event in segment.accepted_events()
        if event.get("event") == "AI Chat Completed"
    ]
    assert sorted(len(found or []) for found in attachments) == [1, 2]
