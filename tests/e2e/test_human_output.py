"""What the commands print for people holds no JSON log line (issue 22).

The forwarder's code logs Powertools JSON to stdout. The operator commands run it in their own
process (replay delivers, status reads the secret) and local mode runs the functions: their
human output must not be interleaved with those lines. The commands print the forwarder's
warnings and errors as one line each on stderr; local mode writes its JSON to ``forwarder.log``
with one console line per warning, and prints the JSON only with ``--verbose``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from segment_raindrop_tools import events as se
from segment_raindrop_tools.cli import app
from segment_raindrop_tools.local.logs import LOG_FILE
from segment_raindrop_tools.local.state import STATE_FILE
from tests.e2e.conftest import Local

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def json_log_lines(text: str) -> list[str]:
    """The lines that are a Powertools log record or a CloudWatch metrics document."""
    found = []
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and ({"level", "message"} <= parsed.keys() or "_aws" in parsed):
            found.append(line)
    return found


def _invoke(local: Local, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(
        app,
        list(args),
        input=stdin,
        env=local.endpoints.replay_environment(),
        catch_exceptions=False,
    )


def test_the_commands_print_no_json_log_line_on_stdout(
    start_local: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local mode runs in this process here: as `segment-raindrop local` does for itself, its
    # functions' metrics are off (they would print into the captured stdout of send-sample).
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    local = start_local()
    data_dir = str(Path(local.endpoints.state_file).parent)
    sqs = local.mode.resources.sqs_client()
    # Not a forwarder message: the replay logs a warning about it (on stderr).
    sqs.send_message(QueueUrl=local.endpoints.dlq_url, MessageBody="not ours")
    local.receiver.outage()  # the replay's deliveries fail: more warnings
    conversation = (ROOT / "tests/fixtures/ai_conversation.json").read_text()

    runs = {
        "send-sample": _invoke(local, "send-sample", "--data-dir", data_dir),
        "send-sdk-sample": _invoke(local, "send-sdk-sample", "--data-dir", data_dir),
        "status": _invoke(local, "status", "--data-dir", data_dir),
        "map": _invoke(local, "map", stdin=conversation),
        "replay --dry-run": _invoke(
            local, "replay", "--queue-url", local.endpoints.dlq_url, "--dry-run"
        ),
        "replay --yes": _invoke(
            local, "replay", "--queue-url", local.endpoints.dlq_url, "--yes", "--json"
        ),
    }

    for command, result in runs.items():
        assert json_log_lines(result.stdout) == [], f"{command}:\n{result.stdout}"
    replayed = runs["replay --yes"]
    json.loads(replayed.stdout)  # --json: stdout is the summary alone
    # Its warnings went to stderr, one line each, no JSON.
    assert json_log_lines(replayed.stderr) == [], replayed.stderr
    assert "forwarder warning: not a forwarder message; left on the queue" in replayed.stderr


def _command() -> list[str]:
    script = Path(sys.executable).with_name("segment-raindrop")
    return (
        [str(script)] if script.exists() else [sys.executable, "-m", "segment_raindrop_tools.cli"]
    )


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _local_with_raindrop_down(data_dir: Path, *extra: str) -> str:
    """Run ``segment-raindrop local`` against a Raindrop that refuses connections, post chats
    until its circuit breaker opens, stop it; returns what it printed on stdout."""
    process = subprocess.Popen(
        [
            *_command(),
            "local",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--raindrop-url",
            f"http://127.0.0.1:{_closed_port()}/v1",
            "--retry-base-delay",
            "900",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "RAINDROP_API_KEY": "down-key"},
    )
    try:
        state_file = data_dir / STATE_FILE
        deadline = time.monotonic() + 30
        while not state_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        state = json.loads(state_file.read_text())
        for request in range(3):  # 3 attempts each: the breaker opens after 5 failures
            answer = httpx.post(
                state["webhook_url"],
                json=[se.chat(request * 10 + n) for n in range(2)],
                headers={"Authorization": f"Bearer {state['webhook_token']}"},
                timeout=30,
                trust_env=False,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["queued"] == 2
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr
    return stdout


def test_local_modes_console_holds_no_json_unless_verbose(tmp_path: Path) -> None:
    quiet = _local_with_raindrop_down(tmp_path / "quiet")
    verbose = _local_with_raindrop_down(tmp_path / "verbose", "--verbose")

    assert json_log_lines(quiet) == [], quiet
    # The breaker opened: a warning, said in one line, its JSON in the log file.
    assert "log       warning: circuit breaker changed state" in quiet, quiet
    logged = json_log_lines((tmp_path / "quiet" / LOG_FILE).read_text())
    assert any("circuit breaker" in line for line in logged)
    assert any("circuit breaker" in line for line in json_log_lines(verbose)), verbose
    assert any('"_aws"' in line for line in json_log_lines(verbose)), verbose
