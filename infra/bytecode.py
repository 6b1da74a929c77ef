"""CPython 3.13 bytecode for the bundle, and the check that every module has its own.

Lambda's code directory is read-only, so a bundle without bytecode makes every new execution
environment compile each module it imports (three times the import's CPU, `make bench`
section 3). The bundle therefore ships ``__pycache__/<name>.cpython-313.pyc`` next to every
``.py``, hash-based and unchecked (PEP 552): the header carries a hash of the source instead of
its timestamp (which a zip does not keep), and the runtime does not even hash the source to
compare, it loads the bytecode as is. That makes correctness the build's job: ``verify`` fails
the build on any module whose bytecode is missing, for another Python, timestamp-based, or
compiled from other source.

This machine has no CPython 3.13. `infra/bytecode.mjs` runs the CPython 3.13 that the npm
package ``pyodide`` carries (WebAssembly, under the Node.js the CDK already needs); bytecode
depends on the minor version only, not on the platform.
"""

from __future__ import annotations

import _imp
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# What Lambda's python3.13 runtime reads: its magic number, and the name of its cache files.
PYTHON_VERSION: Final = "3.13"
MAGIC: Final = bytes.fromhex("f30d0d0a")
CACHE_TAG: Final = "cpython-313"
# PEP 552 flags: bit 0 set = hash-based, bit 1 clear = never checked against the source.
UNCHECKED_HASH: Final = 0b01
_HEADER_BYTES: Final = 16
SCRIPT: Final = Path(__file__).resolve().with_name("bytecode.mjs")


class BytecodeError(RuntimeError):
    """Bytecode could not be written, or what is there does not match the sources."""


@dataclass(frozen=True)
class Compiled:
    python: str
    modules: int


def cache_file(source: Path) -> Path:
    """Where 3.13 looks for a module's bytecode (`importlib.util.cache_from_source`)."""
    return source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc"


def source_hash(source: bytes) -> bytes:
    """The 8-byte hash 3.13 stores in a hash-based `.pyc` (`importlib.util.source_hash`).

    It is SipHash-1-3 keyed with the magic number of the Python that wrote the file; this
    interpreter's `_imp.source_hash` computes it for any key, so 3.13's can be checked here.
    (Every build checks the two agree: pyodide writes, this verifies.)
    """
    return _imp.source_hash(int.from_bytes(MAGIC, "little"), source)


def compile_tree(directory: Path, project_root: Path) -> Compiled:
    """Write 3.13 bytecode for every `.py` under `directory`, in one pyodide process."""
    node = shutil.which("node")
    if node is None:
        raise BytecodeError("Node.js is required to compile the bundle's bytecode (node >= 20)")
    if not (project_root / "node_modules" / "pyodide").is_dir():
        raise BytecodeError(
            "node_modules/pyodide is missing: run `npm ci` (or `make npm`) to compile the"
            " bundle's bytecode"
        )
    done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [node, str(SCRIPT), str(directory)],
        cwd=project_root,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BytecodeError(
            f"compiling the bundle with pyodide failed ({done.returncode}):"
            f" {done.stdout.strip()}\n{done.stderr.strip()[-2000:]}"
        )
    summary = json.loads(lines[-1])
    if summary["magic"] != MAGIC.hex() or summary["cache_tag"] != CACHE_TAG:
        raise BytecodeError(
            f"pyodide runs Python {summary['python']} (magic {summary['magic']}), not"
            f" {PYTHON_VERSION}: pin the npm package pyodide to 0.29.x"
        )
    return Compiled(python=str(summary["python"]), modules=int(summary["compiled"]))


def problem(source: Path) -> str | None:
    """Why the bytecode of `source` would not be what Lambda should load, or None."""
    cached = cache_file(source)
    if not cached.is_file():
        return f"no {CACHE_TAG} bytecode ({cached.name} is missing)"
    header = cached.read_bytes()[:_HEADER_BYTES]
    if len(header) < _HEADER_BYTES:
        return f"{cached.name} is truncated"
    if header[:4] != MAGIC:
        return f"{cached.name} has magic {header[:4].hex()}, not {PYTHON_VERSION}'s {MAGIC.hex()}"
    flags = int.from_bytes(header[4:8], "little")
    if flags != UNCHECKED_HASH:
        return f"{cached.name} has flags {flags:#04b}, not unchecked hash-based (0b01)"
    if header[8:16] != source_hash(source.read_bytes()):
        return f"{cached.name} is stale: it was compiled from other source"
    return None


def verify(directory: Path) -> int:
    """Check every `.py` under `directory` has current 3.13 bytecode and no `.pyc` is an
    orphan; return the number of modules, or raise naming every file that is wrong."""
    sources = sorted(directory.rglob("*.py"))
    problems = [
        f"{source.relative_to(directory)}: {reason}"
        for source in sources
        if (reason := problem(source)) is not None
    ]
    expected = {cache_file(source) for source in sources}
    problems += [
        f"{orphan.relative_to(directory)}: bytecode without its source, or not in 3.13's layout"
        for orphan in sorted(directory.rglob("*.pyc"))
        if orphan not in expected
    ]
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BytecodeError(
            f"{len(problems)} module(s) of the bundle lack current {PYTHON_VERSION} bytecode:"
            f"\n  {shown}{more}"
        )
    return len(sources)
