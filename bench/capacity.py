"""How much of a Segment batch reaches the webhook: the figures of docs/deploy.md, "Batch size".

Not a timing: for three kinds of AI traffic (seeded samples), the largest batch whose API
Gateway event fits Lambda's 6 MiB invoke payload, whatever the request's headers (the
contract's envelope bound), as the webhook API carries it (text, JSON-escaped) and as a
base64-encoded body would be carried (the SDK API, and the only API before there were two);
then the batch size the stack advises for a range of p99 event sizes.

``python -m bench.capacity`` prints the Markdown; ``--write`` puts it into docs/deploy.md
between its markers. tests/quality/test_capacity_doc.py checks the file holds what this prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from segment_raindrop.core.contract import (
    EVENT_BODY_BYTES,
    MAX_SDK_BODY_BYTES,
    SEGMENT_MAX_BATCH_SIZE,
    segment_batch_size,
)
from segment_raindrop_tools import samples

DOC: Final = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
BEGIN: Final = "<!-- capacity:begin (python -m bench.capacity --write) -->"
END: Final = "<!-- capacity:end -->"
# Enough events of each kind to find where the payload runs out, past Segment's 4,000.
SAMPLE_EVENTS: Final = 8_000
P99_SIZES: Final = (1_000, 2_000, 4_000, 8_000, 16_000, 32_000)


TRAFFIC: Final[dict[str, Callable[[int], list[samples.Event]]]] = {
    # The batch tests/e2e/test_segment_clients.py sends through Segment's own code.
    "short chats (about 1.2 KB)": samples.short_chats,
    "mixed AI product traffic": lambda n: samples.batch(n, seed=23),
    "long multilingual chats": lambda n: samples.chats(n, seed=29, prompt_chars=3_000),
}


@dataclass(frozen=True)
class Fit:
    events: int
    body_bytes: int


def _leading(sizes: list[int], limit: int) -> int:
    """How many leading events fit ``limit`` bytes: ``sizes`` are each event's bytes in the
    form that counts, its separator included, and the array's brackets take two."""
    total = 2
    for count, size in enumerate(sizes):
        total += size
        if total > limit:
            return count
    return len(sizes)


def _measure(events: list[samples.Event]) -> tuple[Fit, Fit, float, float]:
    """(as text, base64-encoded, the growth escaping causes, the mean event size)."""
    compact = [samples.body([event])[1:-1].decode() for event in events]
    raw = [len(text.encode()) + 1 for text in compact]
    # Inside the event's JSON, the body is one string: each event escaped, its quotes dropped.
    escaped = [len(json.dumps(text, ensure_ascii=False).encode()) - 2 + 1 for text in compact]
    # As text, the escaped body must fit what the envelope leaves; base64 carries 4 bytes per
    # 3, so the body itself must stay within MAX_SDK_BODY_BYTES.
    as_text = _leading(escaped, EVENT_BODY_BYTES)
    as_base64 = _leading(raw, MAX_SDK_BODY_BYTES)

    def fit(count: int) -> Fit:
        return Fit(count, len(samples.body(events[:count])))

    return fit(as_text), fit(as_base64), sum(escaped) / sum(raw), sum(raw) / len(raw)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.2f} MB"


def render() -> str:
    lines = [
        "| traffic | mean event | escaping adds | webhook API (text): events, body "
        "| base64-encoded: events, body |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, make in TRAFFIC.items():
        text, base64, growth, mean = _measure(make(SAMPLE_EVENTS))
        lines.append(
            f"| {name} | {mean / 1000:.2f} KB | {(growth - 1) * 100:.1f}% "
            f"| {text.events:,}, {_mb(text.body_bytes)} "
            f"| {base64.events:,}, {_mb(base64.body_bytes)} |"
        )
    lines += [
        "",
        "| p99 event size | `SegmentBatchSize` |",
        "| ---: | ---: |",
    ]
    for size in P99_SIZES:
        advised = segment_batch_size(size)
        note = " (Segment's maximum)" if advised == SEGMENT_MAX_BATCH_SIZE else ""
        lines.append(f"| {size:,} bytes | {advised:,}{note} |")
    return "\n".join(lines) + "\n"


def _written(doc: str, block: str) -> str:
    head, _, rest = doc.partition(BEGIN + "\n")
    _, _, tail = rest.partition(END)
    if not tail and END not in rest:
        raise SystemExit(f"{DOC} lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: list[str]) -> int:
    block = render()
    if "--write" in argv:
        DOC.write_text(_written(DOC.read_text(), block))
        print(f"wrote {DOC}")
    else:
        sys.stdout.write(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
