"""The files local mode leaves for the operator and the other commands, in its data directory.

- ``local.json``: the endpoints and credentials (what ``send-sample`` reads), owner-only;
- ``local.env``: ``export`` lines pointing AWS tools and ``segment-raindrop replay`` at the
  running instance, owner-only; the only environment local mode writes, and only to this file;
- ``raindrop-items.jsonl``: every item the Raindrop stand-in accepted, appended across runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from segment_raindrop_tools.local.options import LocalEndpoints

__all__ = [
    "ENV_FILE",
    "ITEMS_FILE",
    "SEGMENT_EVENTS_FILE",
    "STATE_FILE",
    "ItemsLog",
    "read_state",
    "remove_state_files",
    "write_state_files",
]

STATE_FILE: Final = "local.json"
ENV_FILE: Final = "local.env"
ITEMS_FILE: Final = "raindrop-items.jsonl"
# What the Segment stand-in took from the mirror, beside what Raindrop's took.
SEGMENT_EVENTS_FILE: Final = "segment-events.jsonl"


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The state a running local mode wrote into ``data_dir``, or None."""
    try:
        parsed = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def write_state_files(ep: LocalEndpoints) -> None:
    """Write ``local.json`` and ``local.env`` for the instance at ``ep``."""
    state = Path(ep.state_file)
    _write_private(state, json.dumps(asdict(ep), indent=2) + "\n")
    exports = "".join(
        f"export {name}={shlex.quote(value)}\n" for name, value in ep.replay_environment().items()
    )
    _write_private(
        Path(ep.env_file),
        "# segment-raindrop local mode: `source` this to point AWS tools and\n"
        "# `segment-raindrop replay` at the running instance.\n" + exports,
    )


def remove_state_files(ep: LocalEndpoints) -> None:
    """Remove the state files, unless another local mode has taken the directory over since."""
    state = read_state(Path(ep.state_file).parent)
    ours = state is not None and (state.get("pid"), state.get("started_at")) == (
        ep.pid,
        ep.started_at,
    )
    if ours:
        for path in (ep.state_file, ep.env_file):
            with contextlib.suppress(OSError):
                Path(path).unlink()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (it holds the local credentials)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    temporary.replace(path)


class ItemsLog:
    """Appends what a stand-in accepted to a JSON Lines file (``raindrop-items.jsonl``: the
    Raindrop stand-in's items by endpoint; ``segment-events.jsonl``: the Segment stand-in's
    events, endpoint ``batch``); thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, endpoint: str, items: Sequence[dict[str, Any]]) -> None:
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = "".join(
            json.dumps({"received_at": at, "endpoint": endpoint, "item": item}) + "\n"
            for item in items
        )
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(lines)
