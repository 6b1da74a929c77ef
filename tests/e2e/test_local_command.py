"""``segment-raindrop local`` as a person runs it: a subprocess, its printed curl, Ctrl-C.

Runs the ``segment-raindrop`` console script of this environment (what ``make local`` runs).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from segment_raindrop_tools.local.state import ITEMS_FILE, STATE_FILE

pytestmark = pytest.mark.slow

READY_LINE = "Waiting for events..."
STARTUP_LIMIT_SECONDS = 15.0  # "a few seconds"; generous for a loaded CI machine
STOP_LIMIT_SECONDS = 10.0


def _command() -> list[str]:
    """The console script ``make local`` runs (or its module, if the script is not installed)."""
    script = Path(sys.executable).with_name("segment-raindrop")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "segment_raindrop_tools.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for_line(self, fragment: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if fragment in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if fragment in line:
                return line
        raise AssertionError(
            f"{fragment!r} not printed within {timeout} s; output so far:\n" + "\n".join(self.seen)
        )

    def output(self) -> str:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return "\n".join(self.seen)


def _start(data_dir: Path, *arguments: str) -> Running:
    return _spawn([*_command(), "local", "--data-dir", str(data_dir), *arguments], data_dir.parent)


def _spawn(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, *, session: bool = False
) -> Running:
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=cwd,
        start_new_session=session,
    )
    running = Running(process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return running


@pytest.fixture
def run_local(tmp_path: Path) -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(5)


def _printed_curl(output: str) -> str:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("curl "))
    end = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith("-d "))
    return "\n".join(lines[start : end + 1])


def _paste(curl_command: str) -> dict[str, object]:
    curl = subprocess.run(
        ["bash", "-c", curl_command],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert curl.returncode == 0, curl.stderr
    answer: dict[str, object] = json.loads(curl.stdout)
    return answer


ONE_FORWARDED = {"received": 1, "forwarded": 1, "filtered": 0, "queued": 0, "dead_lettered": 0}
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_local_answers_the_printed_curl_and_stops_on_ctrl_c(
    tmp_path: Path, run_local: list[Running]
) -> None:
    port = _free_port()
    data_dir = tmp_path / "local-data"
    started = time.monotonic()
    running = _start(data_dir, "--port", str(port))
    run_local.append(running)
    running.wait_for_line(READY_LINE, STARTUP_LIMIT_SECONDS)
    startup = time.monotonic() - started
    output = running.output()
    assert f"http://127.0.0.1:{port}/segment" in output
    state = json.loads((data_dir / STATE_FILE).read_text())
    assert state["webhook_token"] in output
    assert state["shared_secret"] in output

    # Paste the curl, as the README says.
    assert _paste(_printed_curl(output)) == ONE_FORWARDED
    item_line = running.wait_for_line("raindrop  events/track", 5)
    assert "ai_interaction" in item_line
    assert "user=user-123" in item_line
    [saved] = (data_dir / ITEMS_FILE).read_text().splitlines()
    assert json.loads(saved)["item"]["event"] == "ai_interaction"

    stopping = time.monotonic()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(STOP_LIMIT_SECONDS) == 0
    stop_time = time.monotonic() - stopping
    assert running.process.stderr is not None
    stderr = running.process.stderr.read()
    assert "Traceback" not in stderr, stderr
    running.wait_for_line("Stopped.", 2)
    assert not (data_dir / STATE_FILE).exists()
    print(f"startup {startup:.1f} s, stop {stop_time:.1f} s")


def test_local_stops_cleanly_on_sigterm(tmp_path: Path, run_local: list[Running]) -> None:
    running = _start(tmp_path / "local-data", "--port", str(_free_port()))
    run_local.append(running)
    running.wait_for_line(READY_LINE, STARTUP_LIMIT_SECONDS)
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(STOP_LIMIT_SECONDS) == 0
    assert running.process.stderr is not None
    assert "Traceback" not in running.process.stderr.read()
    running.wait_for_line("Stopped.", 2)


def test_local_on_a_busy_port_says_so(tmp_path: Path, run_local: list[Running]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        running = _start(tmp_path / "local-data", "--port", str(port))
        run_local.append(running)
        assert running.process.wait(STARTUP_LIMIT_SECONDS) == 2
    assert running.process.stderr is not None
    stderr = running.process.stderr.read()
    assert f"port {port} on 127.0.0.1 is already in use" in stderr
    assert "Traceback" not in stderr


REPO = Path(__file__).resolve().parents[2]


@needs_curl
@pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("uv") is None, reason="make and uv are needed"
)
def test_make_local_answers_the_printed_curl(tmp_path: Path, run_local: list[Running]) -> None:
    # The README's first command, as a newcomer runs it (port and data directory moved aside
    # so a developer's own local mode is not disturbed).
    data_dir = tmp_path / "local-data"
    env = {"SEGMENT_RAINDROP_PORT": str(_free_port()), "SEGMENT_RAINDROP_DATA_DIR": str(data_dir)}
    running = _spawn(["make", "--no-print-directory", "local"], REPO, env, session=True)
    run_local.append(running)
    running.wait_for_line(READY_LINE, STARTUP_LIMIT_SECONDS + 15)  # make also checks the venv
    assert _paste(_printed_curl(running.output())) == ONE_FORWARDED
    running.wait_for_line("raindrop  events/track", 5)
    # Ctrl-C in a terminal signals the whole process group: make, uv and the command.
    os.killpg(running.process.pid, signal.SIGINT)
    running.process.wait(STOP_LIMIT_SECONDS)
    running.wait_for_line("Stopped.", 2)
    assert running.process.stderr is not None
    assert "Traceback" not in running.process.stderr.read()
