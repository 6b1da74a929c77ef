"""Shared helpers of the unit tests: the JSON fixtures under ``tests/fixtures``, and a spy on
the garbage collector's freezes."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    """The raw bytes of a fixture file, exactly as Segment would post them."""

    def read(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return read


@pytest.fixture
def fixture_json() -> Callable[[str], Any]:
    def read(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))

    return read


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every ``gc.freeze()`` call, with how many objects it left frozen; what a test froze
    goes back within the collector's reach afterwards. Counting the calls rather than comparing
    the interpreter's freeze count: a frozen object freed meanwhile lowers that count."""
    calls: list[int] = []
    real = gc.freeze

    def spy() -> None:
        real()
        calls.append(gc.get_freeze_count())

    monkeypatch.setattr(gc, "freeze", spy)
    try:
        yield calls
    finally:
        gc.unfreeze()
