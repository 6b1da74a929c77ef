"""docs/architecture.md names every module of the shipped package by its path in the package,
and every tools module, so the map a new engineer reads is the house as built."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "lambda_src" / "segment_raindrop"
TOOLS = ROOT / "tools" / "segment_raindrop_tools"


def _named(name: str) -> bool:
    return re.search(rf"`[^`]*\b{re.escape(name)}\b[^`]*`", DOC) is not None


def test_every_package_module_is_named_with_its_layer() -> None:
    modules = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py"
    ]
    # core/mapping/mapper.py, service/replay/options.py...: the layer's path, as the doc lists them
    missing = [module for module in modules if f"`{module}`" not in DOC and not _named(module)]
    assert missing == []


def test_every_tools_module_is_named() -> None:
    missing = [
        path.relative_to(TOOLS).as_posix()
        for path in sorted(TOOLS.rglob("*.py"))
        if path.name != "__init__.py" and not _named(path.name)
    ]
    assert missing == []


def test_no_module_is_named_that_is_not_there() -> None:
    named = set(re.findall(r"`((?:handlers|service|adapters|core)/[a-z_/]+\.py)`", DOC))
    absent = sorted(name for name in named if not (PACKAGE / name).is_file())
    assert absent == []
