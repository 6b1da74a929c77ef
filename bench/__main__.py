"""Run every benchmark, print the table, write docs/benchmarks.md and docs/benchmarks.png.

`python -m bench cold` measures only the cold start and the bundle (sections 3 and 4) and
rewrites those sections, and their targets, in the existing docs/benchmarks.md.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    coldstart,
    cost,
    endtoend,
    eventbridge,
    footprint,
    hostile,
    inprocess,
    outage,
    redaction,
    report,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _machine() -> str:
    return (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )


def cold_only() -> int:
    started = time.perf_counter()
    print("cold start ...", flush=True)
    cold = coldstart.run()
    print("bundle and memory ...", flush=True)
    sizes = footprint.run()
    path = DOCS / "benchmarks.md"
    markdown = report.splice_cold_and_size(
        path.read_text(encoding="utf-8"), cold, sizes, machine=_machine()
    )
    path.write_text(markdown, encoding="utf-8")
    print("\n".join([*report.cold_section(cold), *report.size_section(sizes)]))
    print("\n".join(report.cold_targets(cold)))
    print(f"(benchmarks took {time.perf_counter() - started:.0f} s)")
    return 0


def main() -> int:
    if sys.argv[1:] == ["cold"]:
        return cold_only()
    if sys.argv[1:]:
        print("usage: python -m bench [cold]", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print("in-process cost ...", flush=True)
    # First, in a process that has not yet piled up other benchmarks' garbage, like a Lambda.
    parse_map = inprocess.parse_and_map_seconds()
    in_process = inprocess.run()
    redacting = redaction.run()
    print("end-to-end delivery ...", flush=True)
    end_to_end = endtoend.run()
    by_size = endtoend.ours_by_size(inprocess.SIZES, latency=0.05)
    print("outage and refusals ...", flush=True)
    failures = outage.run()
    costly_bodies = hostile.run()
    print("cold start ...", flush=True)
    cold = coldstart.run()
    print("bundle and memory ...", flush=True)
    sizes = footprint.run()
    costs = cost.section(cost.rows(by_size), sample_bytes_per_event=cost.sample_bytes_per_event())
    machine = _machine()
    markdown = report.markdown(
        in_process,
        parse_map,
        end_to_end,
        cold,
        sizes,
        costs,
        outage=failures,
        hostile=costly_bodies,
        machine=machine,
    )
    markdown = markdown.replace(report.REDACTION_MARK, redacting.section())
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.md").write_text(markdown, encoding="utf-8")
    report.plot(in_process, end_to_end, DOCS / "benchmarks.png")
    print(markdown)
    print("EventBridge intake ...", flush=True)
    eventbridge.main()  # writes docs/benchmarks-eventbridge.md
    print(f"(benchmarks took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
