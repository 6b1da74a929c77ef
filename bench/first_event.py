"""From a fresh clone to the first event local mode accepts: the figures of docs/local-mode.md.

``python -m bench.first_event [--cold-cache] [REPO]`` clones REPO (default: this checkout's
committed HEAD) into a temporary directory, starts ``make local`` there, waits for the curl it
prints, sends that curl, and stops local mode once its console shows the webhook's 200. It
prints the seconds from ``make local`` to that 200 and the disk the installed environment takes
(as ``du -sh .venv`` gives it). ``--cold-cache`` gives uv an empty cache, so every package is
downloaded from the registry as on a new machine; without it uv's cache on this machine serves
them. Nothing listens anywhere but 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACCEPTED = "POST /segment -> 200"
TIMEOUT_SECONDS = 900


def _size_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            entry = Path(root) / name
            if not entry.is_symlink():
                total += entry.stat().st_blocks * 512
    return total


def _printed_curl(lines: list[str]) -> str:
    """The curl command local mode prints, its continuation lines joined."""
    start = next(i for i, line in enumerate(lines) if line.startswith("curl "))
    command = []
    for line in lines[start:]:
        command.append(line.rstrip("\\").rstrip())
        if not line.endswith("\\"):
            break
    return " ".join(command)


def run(repo: Path, *, cold_cache: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="first-event-") as scratch:
        clone = Path(scratch) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
        env = dict(os.environ)
        if cold_cache:
            env["UV_CACHE_DIR"] = str(Path(scratch) / "uv-cache")
        started = time.perf_counter()
        make = subprocess.Popen(
            ["make", "local"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        accepted = threading.Event()
        curl_ready = threading.Event()

        def read() -> None:
            assert make.stdout is not None
            in_curl = False
            for raw in make.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                in_curl = in_curl or line.startswith("curl ")
                if in_curl and not line.endswith("\\"):
                    in_curl = False
                    curl_ready.set()
                if ACCEPTED in line:
                    accepted.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not curl_ready.wait(TIMEOUT_SECONDS):
                raise SystemExit("local mode printed no curl:\n" + "\n".join(lines[-30:]))
            subprocess.run(
                ["bash", "-c", _printed_curl(lines)], check=True, capture_output=True, timeout=60
            )
            if not accepted.wait(60):
                raise SystemExit("no accepted event:\n" + "\n".join(lines[-30:]))
            seconds = time.perf_counter() - started
        finally:
            os.killpg(make.pid, signal.SIGTERM)
            make.wait(timeout=30)
        return seconds, _size_bytes(clone / ".venv")


def main(argv: list[str]) -> int:
    cold = "--cold-cache" in argv
    paths = [arg for arg in argv if not arg.startswith("--")]
    repo = Path(paths[0]) if paths else REPO
    seconds, size = run(repo, cold_cache=cold)
    cache = "empty uv cache" if cold else "warm uv cache"
    print(f"{repo}: first event accepted {seconds:.1f} s after `make local` ({cache});")
    print(f"environment installed: {size / 2**20:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
