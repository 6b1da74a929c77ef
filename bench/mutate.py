"""``make mutate``: mutation testing of the loss-critical code (auth, parsing, chunking,
delivery, breaker, queueing, settlement, retry, replay, credentials, the webhook).

Each mutant of ``bench/mutants.py`` is applied on its own to a scratch copy of the tree (the
working tree is never touched, so an interrupted run leaves nothing behind), and the mutant's
test files run against it in a subprocess with ``-x`` and a timeout. A mutant is *killed*
when a test fails (or the run times out), *survived* when every test passes. First, the
union of all those test files runs on the unmutated copy: a kill means nothing if the
tests fail anyway.

    uv run --frozen --all-extras python -m bench.mutate [--only TEXT] [--min-score 90]

Exit status: 0 when the score reaches ``--min-score``, 1 when it does not, 2 when a mutant is
stale (its text is no longer in its file) or the baseline fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.mutants import ACCEPTED_SURVIVORS, MUTANTS, Mutant

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path("lambda_src/segment_raindrop")
# What the tests need from the tree: the code, the tests and pytest's settings.
COPIED = ("lambda_src", "tests", "pyproject.toml")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")


@dataclass(frozen=True, slots=True)
class Outcome:
    mutant: Mutant
    status: str  # killed, survived, timeout, error
    seconds: float
    detail: str = ""


def stale(mutants: tuple[Mutant, ...]) -> list[str]:
    """Mutants whose text is not exactly once in their file, or that change nothing."""
    problems = []
    seen: set[str] = set()
    for mutant in mutants:
        if mutant.id in seen:
            problems.append(f"{mutant.id}: duplicate id")
        seen.add(mutant.id)
        path = ROOT / PACKAGE / mutant.file
        if not path.is_file():
            problems.append(f"{mutant.id}: no file {path}")
            continue
        found = path.read_text(encoding="utf-8").count(mutant.old)
        if found != 1:
            problems.append(f"{mutant.id}: its text occurs {found} times in {mutant.file}")
        if mutant.old == mutant.new:
            problems.append(f"{mutant.id}: changes nothing")
        for test in mutant.tests:
            if not (ROOT / test.split("::")[0]).is_file():
                problems.append(f"{mutant.id}: no test file {test}")
    for id_ in ACCEPTED_SURVIVORS:
        if id_ not in seen:
            problems.append(f"accepted survivor {id_} is not a mutant")
    return problems


def scratch_copy() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="segment-raindrop-mutate-"))
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, scratch / name, ignore=_IGNORED)
        else:
            shutil.copy2(source, scratch / name)
    return scratch


def environment(scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Ahead of the editable install, so subprocesses the tests start (the CLI) import the
    # mutant too; no bytecode, so a file restored within the same second is never read stale.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(scratch / "lambda_src"), str(scratch), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_tests(
    scratch: Path, tests: tuple[str, ...], timeout: float, *, stop_at_first: bool = True
) -> tuple[str, float, str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-header",
        "-W",
        "ignore",
        *(["-x"] if stop_at_first else []),
        *tests,
    ]
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=scratch,
            env=environment(scratch),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started, f"no result within {timeout:g} s"
    seconds = time.monotonic() - started
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else completed.stderr.strip()[-200:]
    if completed.returncode == 0:
        return "survived", seconds, last
    if completed.returncode == 1:
        failed = next((line for line in lines if line.startswith(("FAILED ", "ERROR tests"))), last)
        return "killed", seconds, failed
    return "error", seconds, f"pytest exit {completed.returncode}: {last}"


def mutate(scratch: Path, mutant: Mutant, timeout: float) -> Outcome:
    path = scratch / PACKAGE / mutant.file
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace(mutant.old, mutant.new, 1), encoding="utf-8")
    try:
        status, seconds, detail = run_tests(scratch, mutant.tests, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
    return Outcome(mutant, status, seconds, detail)


def report(outcomes: list[Outcome], elapsed: float) -> float:
    scored = [o for o in outcomes if o.mutant.id not in ACCEPTED_SURVIVORS]
    killed = [o for o in scored if o.status in ("killed", "timeout")]
    score = 100.0 * len(killed) / len(scored) if scored else 0.0
    print("\nBy area (killed/scored):")
    areas = Counter(o.mutant.area for o in scored)
    kills = Counter(o.mutant.area for o in killed)
    for area in dict.fromkeys(o.mutant.area for o in outcomes):
        print(f"  {area:<12} {kills[area]:>3}/{areas[area]}")
    survivors = [o for o in scored if o.status not in ("killed", "timeout")]
    if survivors:
        print("\nSurvivors (each needs a test):")
        for o in survivors:
            print(f"  {o.mutant.id} [{o.status}] {o.mutant.breaks} ({o.mutant.file})")
    accepted = [o for o in outcomes if o.mutant.id in ACCEPTED_SURVIVORS]
    if accepted:
        print("\nAccepted survivors (cannot change behaviour; not scored):")
        for o in accepted:
            print(f"  {o.mutant.id} [{o.status}]: {ACCEPTED_SURVIVORS[o.mutant.id]}")
    timeouts = [o for o in outcomes if o.status == "timeout"]
    if timeouts:
        print("\nCounted as killed by timeout (check they are not a slow machine):")
        for o in timeouts:
            print(f"  {o.mutant.id}")
    print(
        f"\nMutation score: {len(killed)}/{len(scored)} killed = {score:.1f}% "
        f"({len(outcomes)} mutants run, {elapsed / 60:.1f} min)"
    )
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutate", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="ids containing TEXT")
    parser.add_argument("--min-score", type=float, default=90.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args(argv)

    problems = stale(MUTANTS)
    if problems:
        print("Stale mutants (update bench/mutants.py):", *problems, sep="\n  ")
        return 2
    mutants = tuple(m for m in MUTANTS if not args.only or any(t in m.id for t in args.only))
    if args.list:
        for m in mutants:
            print(f"{m.id:<36} {m.area:<12} {m.file:<16} {m.breaks}")
        return 0
    print(f"{len(mutants)} mutants over {len({m.area for m in mutants})} areas")
    started = time.monotonic()
    scratch = scratch_copy()
    try:
        if not args.skip_baseline:
            union = tuple(dict.fromkeys(test for m in mutants for test in m.tests))
            print(f"baseline: {len(union)} test files on the unmutated tree ...", flush=True)
            status, seconds, detail = run_tests(
                scratch, union, args.timeout * 3, stop_at_first=False
            )
            passed = status == "survived"  # "survived": every test passed
            print(f"baseline {'passed' if passed else status} in {seconds:.0f} s: {detail}")
            if not passed:
                print("The tests fail without any mutant: fix them first.")
                return 2
        outcomes = []
        for number, mutant in enumerate(mutants, 1):
            outcome = mutate(scratch, mutant, args.timeout)
            outcomes.append(outcome)
            print(
                f"[{number:>2}/{len(mutants)}] {outcome.status:<8} {outcome.seconds:5.1f}s "
                f"{mutant.id}: {outcome.detail[:110]}",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    score = report(outcomes, time.monotonic() - started)
    return 0 if score >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
