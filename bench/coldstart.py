"""Cold-start import cost: the webhook module in a fresh interpreter, next to ``import boto3``.

Both are imported from the real bundle (the same bundling code as the deployment, built for
this machine's platform and Python), in an isolated interpreter with nothing else on the path,
so development-only packages cannot inflate or hide anything. Each sample is a new
interpreter; only the import is timed, not interpreter start-up.
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.bundling import BundleTarget, build_bundle

ROOT = Path(__file__).resolve().parent.parent
_PROBE = (
    "import sys; sys.path.insert(0, {bundle!r}); import time; t = time.perf_counter(); "
    "import {module}; print(time.perf_counter() - t)"
)


@dataclass(frozen=True)
class ColdStartResult:
    webhook_seconds: float
    boto3_seconds: float
    modules: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.webhook_seconds / self.boto3_seconds


def this_machine() -> BundleTarget:
    return BundleTarget(
        python_platform=f"{platform.machine()}-manylinux2014",
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )


def import_seconds(bundle: Path, module: str, *, repeat: int = 9) -> float:
    samples = []
    for _ in range(repeat):
        output = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _PROBE.format(bundle=str(bundle), module=module)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        samples.append(float(output.strip().splitlines()[-1]))
    return statistics.median(samples)


# What the webhook's import is made of, each measured alone (they overlap: boto3 is in several).
BREAKDOWN = (
    "pydantic",
    "httpx",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.parameters",
    "aws_xray_sdk.core",
)


def run() -> ColdStartResult:
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        bundle = Path(tmp)
        build_bundle(bundle, project_root=ROOT, target=this_machine())
        return ColdStartResult(
            webhook_seconds=import_seconds(bundle, "segment_raindrop.webhook"),
            boto3_seconds=import_seconds(bundle, "boto3"),
            modules={module: import_seconds(bundle, module, repeat=5) for module in BREAKDOWN},
        )
