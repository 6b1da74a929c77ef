"""The shipped package's layers, held to what docs/architecture.md says of them.

handlers -> service -> adapters -> core: a module imports only from its own layer or the ones
below (type-only imports included), no modules import each other in a circle, no module is
over 400 lines and no Lambda entry module over 120.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lambda_src" / "segment_raindrop"
LAYERS = ("core", "adapters", "service", "handlers")  # from the ground up
MAX_MODULE_LINES = 400
MAX_HANDLER_LINES = 120


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
        for path in PACKAGE.rglob("*.py")
    }


def _imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (``from pkg import module`` included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return {name for name in found if name in known}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 and parts[1] in LAYERS else -1


def test_every_module_is_in_a_layer() -> None:
    loose = [m for m in _modules() if _layer(m) < 0 and not m.endswith("__init__")]
    assert loose == []


def test_no_import_runs_back_up() -> None:
    modules = _modules()
    upward = [
        f"{module} -> {target}"
        for module, path in modules.items()
        for target in _imports(path, set(modules))
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    modules = _modules()
    graph = {module: _imports(path, set(modules)) for module, path in modules.items()}
    circles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_modules_stay_small_and_handlers_short() -> None:
    too_long = []
    for module, path in _modules().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        limit = MAX_HANDLER_LINES if ".handlers." in module else MAX_MODULE_LINES
        if lines > limit:
            too_long.append(f"{module}: {lines} lines (at most {limit})")
    assert too_long == []
