"""The runbook's outage drill (docs/runbook.md §5), run as written, against its transcripts.

Local mode forwards to a Raindrop that is down (nothing listens on its port), exactly as the
drill's step 1 starts it (default delivery settings, the drill's key). The drill's own blocks
run through bash as a reader pastes them: send-sample, the dry run and the peek at the
dead-letter message, the replay while Raindrop is down, then (Raindrop back: the local stand-in
on that port) the replay that empties the queue.

Waiting for the eight retries (two to four minutes) is the one shortcut: the retry queue's
redrive policy is set to one receive, so SQS moves the message to the dead-letter queue on the
retry worker's second receive, unchanged, as it does after the eighth.

Each command's output is compared with the runbook's transcript of it (the ```text block
between ``<!-- transcript: NAME -->`` and ``<!-- end transcript -->``) after normalising what
differs from run to run: ports, message ids, timestamps and elapsed times.
``UPDATE_TRANSCRIPTS=1`` writes the outputs into the runbook instead (then review the diff).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from segment_raindrop.core.config import DeliveryConfig
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.e2e.conftest import Local, wait_for
from tests.e2e.test_doc_commands import DRILL_TERMINAL_2, ROOT, _bash, shell_blocks

pytestmark = pytest.mark.slow

RUNBOOK = ROOT / "docs/runbook.md"
DRILL_KEY = "drill-key"
_TRANSCRIPT = re.compile(
    r"<!-- transcript: (?P<name>[\w-]+) -->\n(?P<indent>[ \t]*)```text\n(?P<body>.*?)"
    r"^(?P=indent)```\n(?P=indent)<!-- end transcript -->",
    re.DOTALL | re.MULTILINE,
)

# What differs between runs, and what stands for it in the runbook.
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<message id>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"\(\d+ ms\)"), "(<n> ms)"),
)


def normalise(text: str) -> str:
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


_REASON_LINE = re.compile(r"^(?P<indent>\s+)(?P<events>\d+) events?: (?P<reason>.+)$")


def comparable(text: str) -> str:
    """:func:`normalise`, and the one thing timing decides: which of the forwarder's
    concurrent requests to the dead Raindrop were refused a connection (``ConnectError``) and
    which found its circuit breaker open already (``circuit open``). Both read as the latter,
    a queued message's errors that then read the same as one, and a kept message's reasons
    that then read the same are added up. How many attempts a request made before the
    breaker opened is timing too: the message's ``attempts`` (its events' most) is not compared."""
    lines: list[str] = []
    text = normalise(text).replace("ConnectError", "circuit open")
    text = re.sub(r'"attempts": \d+', '"attempts": <n>', text)
    for line in text.replace("circuit open; circuit open", "circuit open").splitlines():
        this, last = _REASON_LINE.match(line), _REASON_LINE.match(lines[-1]) if lines else None
        if this and last and this["reason"] == last["reason"]:
            total = int(this["events"]) + int(last["events"])
            lines[-1] = f"{this['indent']}{total} events: {this['reason']}"
        else:
            lines.append(line)
    return "\n".join(lines)


def transcripts(text: str) -> dict[str, str]:
    """The runbook's transcripts by name, dedented."""
    found = {}
    for match in _TRANSCRIPT.finditer(text):
        indent = match.group("indent")
        body = match.group("body")
        found[match.group("name")] = "\n".join(
            line.removeprefix(indent) for line in body.splitlines()
        )
    return found


def _write_transcripts(outputs: dict[str, str]) -> None:
    text = RUNBOOK.read_text(encoding="utf-8")

    def replace(match: re.Match[str]) -> str:
        name, indent = match.group("name"), match.group("indent")
        if name not in outputs:
            return match.group(0)
        body = "".join(
            f"{indent}{line}\n".replace(f"{indent}\n", "\n")
            for line in normalise(outputs[name]).splitlines()
        )
        return (
            f"<!-- transcript: {name} -->\n{indent}```text\n{body}{indent}```\n"
            f"{indent}<!-- end transcript -->"
        )

    RUNBOOK.write_text(_TRANSCRIPT.sub(replace, text), encoding="utf-8")


def _block(first_line: str, occurrence: int = 0) -> str:
    (block,) = [
        block
        for block in shell_blocks("docs/runbook.md")
        if block.key[1:] == (first_line, occurrence)
    ]
    return block.text


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(script: str, cwd: Path, env: dict[str, str], *, echoed: int | None = None) -> str:
    """Run ``script`` as a reader's terminal shows it: stdout and stderr in one stream."""
    status, output = _bash("exec 2>&1\n" + script, cwd=cwd, env=env, errexit=echoed is None)
    assert status == 0, output
    if echoed is not None:
        assert re.findall(r"^exit (\d+)$", output, flags=re.MULTILINE) == [str(echoed)], output
    return output


def test_the_outage_drill_prints_what_the_runbook_shows(
    start_local: Callable[..., Local], tmp_path: Path
) -> None:
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    port = _closed_port()
    local = start_local(
        data_dir=cwd / "local-data",
        raindrop_url=f"http://127.0.0.1:{port}/v1",
        raindrop_api_key=DRILL_KEY,
        delivery=DeliveryConfig(),  # the drill's local mode: default delivery settings
    )
    ep = local.endpoints
    sqs = local.mode.resources.sqs_client()
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=ep.retry_queue_url, AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    sqs.set_queue_attributes(
        QueueUrl=ep.retry_queue_url,
        Attributes={"RedrivePolicy": json.dumps({**redrive, "maxReceiveCount": 1})},
    )
    env = {
        **os.environ,
        "UV_PROJECT": str(ROOT),
        "UV_OFFLINE": "1",
        "UV_NO_PROGRESS": "1",
        "COLUMNS": "100",
        "PYTHONUNBUFFERED": "1",  # each line when printed, as on a terminal
    }
    env.pop("SEGMENT_RAINDROP_DATA_DIR", None)
    outputs: dict[str, Any] = {}

    # 2. Send traffic.
    outputs["drill-send-sample"] = _run(
        _block("uv run --extra cli segment-raindrop send-sample"), cwd, env
    )
    # 3. The retry worker fails, SQS moves the message to the dead-letter queue.
    assert wait_for(
        lambda: local.queue_depth(ep.dlq_url) == 1 and local.queue_depth(ep.retry_queue_url) == 0,
        timeout=60,
    )
    # 4. Inspect the dead-letter queue.
    outputs["drill-dry-run"] = _run(_block("set -a; source local-data/local.env; set +a"), cwd, env)
    # 5. Replay while Raindrop is still down.
    step_5 = (
        'uv run --extra cli segment-raindrop replay --queue-url "$DLQ_URL" --yes; echo "exit $?"'
    )
    outputs["drill-replay-down"] = _run(DRILL_TERMINAL_2 + _block(step_5), cwd, env, echoed=1)
    # 6. Heal Raindrop: the stand-in on the port the forwarder uses, with the drill's key.
    with RaindropReceiver(port=port, api_key=DRILL_KEY) as raindrop:
        outputs["drill-replay"] = _run(DRILL_TERMINAL_2 + _block(step_5, 1), cwd, env, echoed=0)
        counts: dict[str, int] = {}
        for endpoint in ("events/track", "signals/track", "users/identify"):
            counts[endpoint] = len(raindrop.accepted(endpoint))
    outputs["drill-raindrop-items"] = "\n".join(
        f"{count} {endpoint}" for endpoint, count in counts.items()
    )

    if os.environ.get("UPDATE_TRANSCRIPTS"):
        _write_transcripts(outputs)
    documented = transcripts(RUNBOOK.read_text(encoding="utf-8"))
    assert sorted(documented) == sorted(outputs)
    for name, output in outputs.items():
        assert comparable(documented[name]) == comparable(output), f"{name}:\n{output}"
