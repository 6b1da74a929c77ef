"""Figures the docs state that come from code: each is read from the doc's sentence and compared
with the constant it comes from, so a doc that drifts from the code fails here (issue 22).

The runbook's outage-drill transcripts are checked by tests/e2e/test_outage_drill.py, the
capacity figures by test_capacity_doc.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.core.contract import (
    LAMBDA_MAX_INVOKE_BYTES,
    REPLAY_TIMEOUT_SECONDS,
    RETRY_TIMEOUT_SECONDS,
    SEGMENT_TIMEOUT_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
)

ROOT = Path(__file__).resolve().parents[2]


def _read(doc: str) -> str:
    return " ".join((ROOT / doc).read_text(encoding="utf-8").split())


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _found(doc: str, pattern: str) -> list[str]:
    found = re.findall(pattern, _read(doc))
    assert found, f"{doc}: no sentence matches {pattern!r} any more; update this test with it"
    return found


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ("docs/wire.md", r"the webhook function times out at (\d+) s"),
        ("docs/wire.md", r"ours: webhook (\d+) s"),
        ("docs/local-mode.md", r"with the webhook function's (\d+) s timeout"),
    ],
)
def test_the_webhook_timeout_is_the_functions(doc: str, pattern: str) -> None:
    assert {int(value) for value in _found(doc, pattern)} == {WEBHOOK_TIMEOUT_SECONDS}


def test_wire_md_states_the_other_timeouts_as_configured() -> None:
    (row,) = _found("docs/wire.md", r"\| function timeout \| ours: ([^|]+)\|")
    assert f"retry worker {RETRY_TIMEOUT_SECONDS} s" in row
    assert f"replay {REPLAY_TIMEOUT_SECONDS} s" in row
    assert f"Segment's {SEGMENT_TIMEOUT_SECONDS} s" in row


def test_local_mode_md_states_the_body_limits_local_mode_enforces() -> None:
    (payload,) = _found("docs/local-mode.md", r"larger than Lambda's 6 MiB payload, ([\d,]+) bytes")
    assert _number(payload) == LAMBDA_MAX_INVOKE_BYTES
    (default,) = _found("docs/local-mode.md", r"`MAX_BODY_BYTES` \(([\d,]+) bytes by default\)")
    assert _number(default) == ForwarderConfig.model_fields["max_body_bytes"].default


def test_readme_quotes_the_bundle_size_benchmarks_md_measured() -> None:
    (unzipped,) = _found("docs/benchmarks.md", r"\| arm64 bundle, unzipped \| ([\d.]+) MiB")
    (zipped,) = _found("docs/benchmarks.md", r"\| arm64 bundle, zipped \| ([\d.]+) MiB")
    assert _found("README.md", r"bundle is ([\d.]+) MiB unzipped, ([\d.]+) MiB zipped") == [
        (unzipped, zipped)
    ]
