"""``segment-raindrop status`` against a running local mode, with nothing to pass.

Local mode runs in this process (``start_local``); the command runs through typer's CliRunner,
and once as the console script from the directory holding ``local-data/``, as after
``make local``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from segment_raindrop_tools import events as se
from segment_raindrop_tools.cli import app
from segment_raindrop_tools.local.state import STATE_FILE
from tests.e2e.conftest import Local, wait_for
from tests.support.auth import bearer

runner = CliRunner()


def _status(data_dir: Path, *args: str) -> Any:
    return runner.invoke(
        app,
        ["status", "--data-dir", str(data_dir), *args],
        # The webhook answering --ping runs in this process: its metrics would print here.
        env={"POWERTOOLS_METRICS_DISABLED": "true"},
        catch_exceptions=False,
    )


def _data_dir(local: Local) -> Path:
    return Path(local.endpoints.state_file).parent


def test_a_fresh_local_mode_is_healthy_and_says_what_it_cannot_know(start_local: Any) -> None:
    local = start_local()

    result = _status(_data_dir(local), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["target"]["kind"] == "local"
    assert report["target"]["webhook_url"] == local.endpoints.webhook_url
    assert report["secret"]["ready"] is True
    assert report["retry_queue"]["total"] == report["dead_letter_queue"]["total"] == 0
    assert report["alarms"]["available"] is False
    assert report["counts"]["available"] is False
    assert report["counts"]["received"] is None
    assert "not available locally" in report["counts"]["note"]
    assert local.token not in result.stdout
    assert local.endpoints.shared_secret not in result.stdout


def test_ping_reaches_the_local_raindrop(start_local: Any) -> None:
    local = start_local()

    result = _status(_data_dir(local), "--ping")

    assert result.exit_code == 0, result.output
    assert "HTTP 200: received 1, forwarded 1" in " ".join(result.stdout.split())
    (item,) = local.receiver.accepted("events/track")
    assert item["event_id"].startswith("status-ping-")
    assert item["event_id"] in " ".join(result.stdout.split())


def test_dead_letters_need_attention(start_local: Any) -> None:
    local = start_local()
    answer = local.post(se.invalid(1), headers=bearer(local.token))
    assert answer.json()["dead_lettered"] == 1
    assert wait_for(lambda: local.queue_depth(local.endpoints.dlq_url) == 1)

    result = _status(_data_dir(local), "--json")

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["dead_letter_queue"]["total"] == 1
    assert report["dead_letters"]["peeked"] == 1
    assert report["dead_letters"]["oldest_failure_at"] is not None
    assert report["problems"] == [
        "the dead-letter queue holds 1 message(s): read why (docs/runbook.md), fix the cause, "
        "then `segment-raindrop replay`"
    ]


def test_without_a_running_local_mode_it_cannot_start(tmp_path: Path) -> None:
    missing = _status(tmp_path)
    assert missing.exit_code == 2
    assert "no running local mode found" in missing.stderr

    # A state file left by a local mode that has exited (killed, say): its process is gone.
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    (tmp_path / STATE_FILE).write_text(json.dumps({"pid": exited.pid, "webhook_url": "x"}))
    stale = _status(tmp_path)
    assert stale.exit_code == 2
    assert "local mode is not running any more" in stale.stderr


def test_the_console_script_finds_local_mode_with_nothing_to_pass(
    start_local: Any, tmp_path: Path
) -> None:
    local = start_local(data_dir=tmp_path / "local-data")
    script = Path(sys.executable).with_name("segment-raindrop")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "segment_raindrop_tools.cli"]
    )

    result = subprocess.run(
        [*command, "status"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"local mode (local-data/{STATE_FILE})" in result.stdout
    assert local.endpoints.webhook_url in result.stdout
    assert "Healthy: nothing needs attention." in result.stdout
