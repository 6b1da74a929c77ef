"""Every benchmark module imports: `make bench`, `make soak` and `make mutate` are not run by
`make test`, so an API they use that moves would otherwise break them unnoticed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
# A script run as its own process, which does its work at import.
SCRIPTS = {"footprint"}
MODULES = sorted(
    path.stem for path in BENCH.glob("*.py") if path.stem not in {"__init__"} | SCRIPTS
)


@pytest.mark.parametrize("name", MODULES)
def test_the_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")
