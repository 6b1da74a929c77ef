"""Shared helpers of the unit tests: the JSON fixtures under ``tests/fixtures``."""

from __future__ import annotations

import json
from collections.abc import Callable
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
