"""Size of the deployed arm64 bundle (files, bytecode) and peak memory of handling one
4,000-event batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench import workload
from infra.bundling import LAMBDA_TARGET, build_bundle

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter so the numbers belong to one batch, not to the benchmark. The
# body is made by the parent: generating sample events would itself raise the peak.
_MEMORY_PROBE = """
import json, sys, time, tracemalloc

def high_water_kib():
    # VmHWM belongs to this address space; ru_maxrss would carry the parent's over exec.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

from bench.inprocess import in_memory_forwarder
from segment_raindrop.core.segment_body import parse_body
forwarder = in_memory_forwarder()
with open(sys.argv[1], "rb") as source:
    body = source.read()
baseline = high_water_kib()
tracemalloc.start()
result = forwarder.forward(parse_body(body).events, api_key="k", deadline=time.monotonic() + 60)
_, heap_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
peak = high_water_kib()
assert not result.failures
print(json.dumps({"body": len(body), "rss_before_kib": baseline, "rss_peak_kib": peak,
                  "heap_peak_bytes": heap_peak}))
"""


@dataclass(frozen=True)
class BundleSize:
    """The deployed arm64 bundle: all of it, and its 3.13 bytecode."""

    files: int
    unzipped_bytes: int
    zip_bytes: int
    bytecode_files: int
    bytecode_bytes: int
    modules: int  # .py files


@dataclass(frozen=True)
class FootprintResult:
    bundle: BundleSize
    body_bytes: int
    rss_before_mib: float
    rss_peak_mib: float
    heap_peak_mib: float


def bundle_size() -> BundleSize:
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        out = Path(tmp) / "bundle"
        out.mkdir()
        build_bundle(out, project_root=ROOT, target=LAMBDA_TARGET)
        files = sorted(path for path in out.rglob("*") if path.is_file())
        archive = Path(tmp) / "bundle.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in files:
                zipped.write(path, path.relative_to(out))
        bytecode = [path for path in files if path.suffix == ".pyc"]
        return BundleSize(
            files=len(files),
            unzipped_bytes=sum(path.stat().st_size for path in files),
            zip_bytes=archive.stat().st_size,
            bytecode_files=len(bytecode),
            bytecode_bytes=sum(path.stat().st_size for path in bytecode),
            modules=sum(1 for path in files if path.suffix == ".py"),
        )


def _memory() -> dict[str, int]:
    paths = (ROOT / "lambda_src", ROOT / "tools", ROOT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(path) for path in paths)}
    with tempfile.NamedTemporaryFile(suffix=".json") as body:
        body.write(workload.body(4_000))
        body.flush()
        output = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, body.name],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
    result: dict[str, int] = json.loads(output.strip().splitlines()[-1])
    return result


def run() -> FootprintResult:
    bundle = bundle_size()
    memory = _memory()
    return FootprintResult(
        bundle=bundle,
        body_bytes=memory["body"],
        rss_before_mib=memory["rss_before_kib"] / 1024,
        rss_peak_mib=memory["rss_peak_kib"] / 1024,
        heap_peak_mib=memory["heap_peak_bytes"] / 2**20,
    )
