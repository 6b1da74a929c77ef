"""``segment-raindrop replay``: through typer's CliRunner, and as a real process for Ctrl-C.

Against moto's server (SQS, Secrets Manager, CloudFormation for ``--stack``) and the receiver.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.config import ReplayConfig
from segment_raindrop.core.environment import variable_names
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop_tools import events as se
from segment_raindrop_tools.cli import app
from segment_raindrop_tools.local.queues import peek_messages
from tests.support.queues import (
    assert_delivered_once,
    fast,
    fresh_runtimes,
    operator_shell,
    put_message,
    raw_dlq,
)
from tests.support.stack import deploy_stack

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes", "shell")
__all__ = ["fast", "fresh_runtimes"]  # fixtures, imported for use by name

# Changes a test makes to the operator's environment (None: unset), and that environment's
# resources; the CLI runs with ``_shell()``, built when it starts.
SHELL: dict[str, str | None] = {}
_RESOURCES: list[Any] = []


@pytest.fixture
def shell(aws: Any) -> Iterator[None]:
    SHELL.clear()
    _RESOURCES[:] = [aws]
    yield
    SHELL.clear()
    _RESOURCES.clear()


def _shell() -> dict[str, str]:
    env = operator_shell(_RESOURCES[0])
    for name, value in SHELL.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


runner = CliRunner()


def _seed(aws: Any, messages: int, per_message: int = 2) -> list[str]:
    ids = []
    for m in range(messages):
        events = [se.chat(m * 100 + e) for e in range(per_message)]
        put_message(aws, QueueTarget.DEAD_LETTER, events)
        ids += [f"trace-{m * 100 + e}" for e in range(per_message)]
    return ids


def _replay(*args: str, long_poll: bool = False) -> Any:
    # Short polls against moto, except where the default (1 s long polls) is under test.
    polling = [] if long_poll else ["--wait-seconds", "0"]
    return runner.invoke(app, ["replay", *args, *polling], env=_shell(), catch_exceptions=False)


def _summary(result: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_dry_run_reports_what_would_be_sent_and_changes_nothing(aws: Any, receiver: Any) -> None:
    _seed(aws, 2)
    before = raw_dlq(aws)

    result = _replay("--queue-url", aws.resources.dlq_url, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "Dry run (nothing changed)" in result.stdout
    assert "events that would be forwarded" in result.stdout
    assert "items that would be sent to events/track" in result.stdout
    assert "Everything selected would be replayed." in result.stderr
    assert receiver.requests == []
    assert raw_dlq(aws) == before


def test_dry_run_exits_1_when_something_is_invalid_now(aws: Any, receiver: Any) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1), se.invalid(2)])
    before = raw_dlq(aws)

    result = _replay("--queue-url", aws.resources.dlq_url, "--dry-run", "--json")

    assert result.exit_code == 1, result.output
    summary = _summary(result)
    assert summary["dry_run"] is True
    assert summary["messages_kept"] == 1
    assert summary["events_forwarded"] == 1
    assert summary["events_failed"] == {"invalid": 1}
    assert summary["would_send"] == {"events/track": 1}
    assert receiver.requests == []
    assert raw_dlq(aws) == before


def test_dry_run_says_why_each_kept_message_stays(aws: Any, receiver: Any) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1), se.invalid(2), se.invalid(3)])
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(4)])
    (kept_id,) = [
        message["MessageId"]
        for message in peek_messages(aws.sqs, aws.resources.dlq_url)
        if "trace-2" in message["Body"]
    ]

    result = _replay("--queue-url", aws.resources.dlq_url, "--dry-run")
    as_json = _replay("--queue-url", aws.resources.dlq_url, "--dry-run", "--json")

    assert result.exit_code == 1, result.output
    assert "Messages that would be kept" in result.stdout
    lines = result.stdout.splitlines()
    at = lines.index(f"  {kept_id}  dead-lettered for transient (503)")
    assert lines[at + 1 :] == ["    2 events: event has no userId or anonymousId"]
    assert _summary(as_json)["kept"] == [
        {
            "message_id": kept_id,
            "dead_lettered_for": "transient (503)",
            "reasons": {"event has no userId or anonymousId": 2},
        }
    ]
    assert receiver.requests == []


def test_replay_says_what_the_receiver_answered_for_each_kept_message(
    aws: Any, receiver: Any
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)])
    receiver.outage()

    result = _replay("--queue-url", aws.resources.dlq_url, "--yes")

    assert result.exit_code == 1, result.output
    flat = " ".join(result.stdout.split())
    assert "Messages kept" in flat
    assert "Raindrop still failing:" in flat


def test_replay_with_yes_delivers_everything_and_exits_0(aws: Any, receiver: Any) -> None:
    ids = _seed(aws, 3)

    result = _replay("--queue-url", aws.resources.dlq_url, "--yes", long_poll=True)

    assert result.exit_code == 0, result.output
    assert "messages replayed and deleted" in result.stdout
    assert "Everything selected was replayed." in result.stderr
    assert_delivered_once(receiver, ids)
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_filters_and_json_summary(aws: Any, receiver: Any) -> None:
    _seed(aws, 2)
    put_message(
        aws, QueueTarget.DEAD_LETTER, [se.chat(9)], reason=FailureReason.REJECTED, status=400
    )

    result = _replay(
        "--queue-url",
        aws.resources.dlq_url,
        "--yes",
        "--json",
        "--reason",
        "rejected",
        "--since",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-12-01",
        "--rate",
        "1000",
    )

    assert result.exit_code == 0, result.output
    summary = _summary(result)
    assert summary["messages_selected"] == summary["messages_deleted"] == 1
    assert summary["messages_skipped"] == 2
    assert_delivered_once(receiver, ["trace-9"])
    assert aws.queue_depth(aws.resources.dlq_url) == 2


def test_replay_during_an_outage_exits_1_and_keeps_everything(aws: Any, receiver: Any) -> None:
    _seed(aws, 2)
    before = raw_dlq(aws)
    receiver.outage()

    result = _replay("--queue-url", aws.resources.dlq_url, "--yes", "--json")

    assert result.exit_code == 1, result.output
    summary = _summary(result)
    assert summary["messages_kept"] == 2
    assert summary["messages_deleted"] == 0
    assert "Not everything selected was replayed" in result.stderr
    assert receiver.accepted() == []
    assert raw_dlq(aws) == before


def test_refuses_without_yes_when_stdin_is_not_a_terminal(aws: Any, receiver: Any) -> None:
    _seed(aws, 1)
    before = raw_dlq(aws)

    result = _replay("--queue-url", aws.resources.dlq_url)

    assert result.exit_code == 2
    assert "refusing to replay without confirmation" in result.stderr
    assert "--yes" in result.stderr
    assert receiver.requests == []
    assert raw_dlq(aws) == before


def test_a_placeholder_key_refuses_to_start(aws: Any, receiver: Any) -> None:
    _seed(aws, 1)
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": "REPLACE_ME"}),
    )

    result = _replay("--queue-url", aws.resources.dlq_url, "--yes")

    assert result.exit_code == 2
    assert "placeholder" in result.stderr
    assert receiver.requests == []
    assert aws.queue_depth(aws.resources.dlq_url) == 1


def test_usage_problems_exit_2(aws: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bad_time = _replay("--queue-url", aws.resources.dlq_url, "--since", "last tuesday")
    assert bad_time.exit_code == 2
    assert "ISO 8601" in bad_time.output

    backwards = _replay(
        "--queue-url", aws.resources.dlq_url, "--since", "2026-11-02", "--until", "2026-11-01"
    )
    assert backwards.exit_code == 2
    assert "since must be earlier than until" in backwards.stderr

    SHELL["DLQ_URL"] = None
    no_queue = _replay("--yes")
    assert no_queue.exit_code == 2
    assert "--queue-url" in no_queue.stderr

    missing = _replay("--queue-url", aws.resources.dlq_url + "-missing", "--dry-run")
    assert missing.exit_code == 2
    assert "cannot read the queue" in missing.stderr


def test_stack_outputs_give_the_queue_and_the_secret(
    aws: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _seed(aws, 2)
    deploy_stack(aws, "segment-raindrop-test")
    for name in variable_names(ReplayConfig):
        SHELL[name] = None

    result = _replay("--stack", "segment-raindrop-test", "--region", "us-east-1", "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert _summary(result)["queue_url"] == aws.resources.dlq_url
    assert_delivered_once(receiver, ids)
    assert aws.queue_depth(aws.resources.dlq_url) == 0

    unknown = _replay("--stack", "no-such-stack", "--region", "us-east-1", "--dry-run")
    assert unknown.exit_code == 2
    assert "cannot read the outputs of stack 'no-such-stack'" in unknown.stderr


# A real process, a real SIGINT


def _start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "segment_raindrop_tools.cli", "replay", *args],
        env={**_shell(), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_a_second_run_finishes_the_job(aws: Any, receiver: Any) -> None:
    ids = _seed(aws, 6)
    # Two events per message at 4 events/s: half a second between messages, time to interrupt.
    process = _start_cli(
        "--queue-url",
        aws.resources.dlq_url,
        "--yes",
        "--json",
        "--rate",
        "4",
        "--wait-seconds",
        "0",
    )
    try:
        assert receiver.wait_for_items(2, timeout=30), "the replay never delivered anything"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert "Stopping after the current message" in stderr
    first = json.loads(stdout)
    assert first["stopped"] is True
    assert 1 <= first["messages_deleted"] < 6
    assert len(receiver.accepted("events/track")) == 2 * first["messages_deleted"]
    # What was not replayed is visible again at once.
    assert aws.queue_depth(aws.resources.dlq_url) == 6 - first["messages_deleted"]

    second = _replay("--queue-url", aws.resources.dlq_url, "--yes", "--json")

    assert second.exit_code == 0, second.output
    assert first["messages_deleted"] + _summary(second)["messages_deleted"] == 6
    assert_delivered_once(receiver, ids)
    assert aws.queue_depth(aws.resources.dlq_url) == 0


class _StderrLines:
    """The process's stderr, read line by line as it comes, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._done = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for(self, text: str, *, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: self._done or any(text in line for line in self._lines), timeout
            ) and any(text in line for line in self._lines)

    def text(self, *, timeout: float = 30) -> str:
        self._reader.join(timeout)
        with self._changed:
            return "".join(self._lines)


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_and_loses_nothing(
    aws: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(aws, 3)
    before = raw_dlq(aws)
    receiver.set_latency(2)  # the first delivery hangs while we press Ctrl-C twice
    SHELL.update(DELIVERY_BUDGET_SECONDS="10", RAINDROP_READ_TIMEOUT_SECONDS="10")
    process = _start_cli("--queue-url", aws.resources.dlq_url, "--yes")
    try:
        deadline = time.monotonic() + 30
        while receiver.connections_accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.connections_accepted, "the replay never reached the receiver"
        stderr_lines = _StderrLines(process)
        process.send_signal(signal.SIGINT)
        # The second Ctrl-C once the first one has been handled, not after a guessed pause.
        assert stderr_lines.wait_for("Stopping after the current message", timeout=30)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        stderr = stderr_lines.text()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Aborted." in stderr
    # Nothing deleted: every message is still there, released for the next run.
    assert raw_dlq(aws) == before
