"""Lambda bundling without Docker: the package plus the locked runtime dependencies.

CDK calls `try_bundle` with an empty output directory. We fill it with
1. the runtime dependencies pinned in uv.lock (`uv export`: project dependencies only, no extras,
   no dev/infra/bench groups; botocore is pinned and shipped on purpose so the code runs against
   the SDK it was tested with, not whatever the runtime carries that month; boto3, which nothing
   shipped imports, is not), installed as binary
   wheels for the *Lambda's* platform (`uv pip install --python-platform ... --only-binary`),
   which works on any build machine because nothing is compiled or imported;
2. a copy of the `segment_raindrop` package (`lambda_src/segment_raindrop`), without caches.
   Only that package: the operator tooling (CLI, local mode, samples) is another package,
   `tools/segment_raindrop_tools`, and its dependencies (typer, rich, moto) are an extra that
   the export leaves out;
3. of botocore's API models, only those of the services the functions call (see
   `_keep_only_models`);
4. CPython 3.13 bytecode for every module, ours and the dependencies' (`infra/bytecode.py`):
   hash-based and unchecked, so Lambda loads it without compiling and without looking at the
   source, and checked here: a module with missing or stale bytecode fails the build.

The output is byte-for-byte reproducible (hash-based bytecode written with hash randomisation
off, no console scripts with machine-specific shebangs), so the asset hash, computed from the
output, changes only when code or locked dependencies change.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra import bytecode as pyc
from segment_raindrop.core.contract import AWS_SERVICES

PACKAGE: Final = "segment_raindrop"
# The services whose botocore models the bundle keeps: the functions' own, and those botocore's
# credential providers (STS, SSO) and the X-Ray SDK's sampler may call on their behalf.
BOTOCORE_SERVICES: Final = frozenset({*AWS_SERVICES, "sts", "sso", "sso-oidc", "xray"})
# Byte-code caches and editor droppings: not part of the package, and machine-specific.
_CACHES: Final = ("__pycache__", "*.pyc", "*.pyo", ".DS_Store")


@dataclass(frozen=True)
class BundleTarget:
    """Where the bundle will run: a uv `--python-platform` and a Python `major.minor`, and
    whether to ship that Python's bytecode (only 3.13's can be compiled here)."""

    python_platform: str
    python_version: str
    bytecode: bool = False


# What the functions run on: Lambda's python3.13 runtime on Graviton (arm64).
LAMBDA_TARGET: Final = BundleTarget(
    python_platform="aarch64-manylinux2014", python_version="3.13", bytecode=True
)


class BundlingError(RuntimeError):
    """A bundling step failed; the message carries the command and its output."""


def _uv() -> str:
    # `uv run` exports UV with its own path, so the same uv that runs the app does the bundling.
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise BundlingError("uv is required to bundle the Lambda code (run `make sync` first)")
    return found


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        command, cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BundlingError(
            f"`{' '.join(command)}` failed ({result.returncode}):\n{result.stderr.strip()}"
        )


def export_requirements(project_root: Path, destination: Path) -> Path:
    """Write the locked runtime requirements (no extras, groups or project) to `destination`."""
    _run(
        [
            _uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-default-groups",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--output-file",
            str(destination),
        ],
        cwd=project_root,
    )
    return destination


def build_bundle(output_dir: Path, *, project_root: Path, target: BundleTarget) -> None:
    """Fill `output_dir` with the package and its locked dependencies built for `target`."""
    if target.bytecode and target.python_version != pyc.PYTHON_VERSION:
        raise BundlingError(
            f"bytecode can only be compiled for Python {pyc.PYTHON_VERSION},"
            f" not {target.python_version}"
        )
    with tempfile.TemporaryDirectory(prefix="segment-raindrop-req-") as tmp:
        requirements = export_requirements(project_root, Path(tmp) / "requirements.txt")
        _run(
            [
                _uv(),
                "pip",
                "install",
                "--quiet",
                "--python-platform",
                target.python_platform,
                "--python-version",
                target.python_version,
                "--only-binary",
                ":all:",
                # The export is the complete locked set: install exactly it, nothing resolved anew.
                "--no-deps",
                "--no-compile",
                # Copies, not hard links into uv's cache: the bundle must be safe to modify.
                "--link-mode",
                "copy",
                "--target",
                str(output_dir),
                "--requirement",
                str(requirements),
            ],
            cwd=project_root,
        )
    # Console scripts carry this machine's interpreter path in their shebang and `.lock` is
    # uv's own; Lambda needs neither, and leaving them out keeps the bundle identical everywhere.
    shutil.rmtree(output_dir / "bin", ignore_errors=True)
    (output_dir / ".lock").unlink(missing_ok=True)
    shutil.copytree(
        project_root / "lambda_src" / PACKAGE,
        output_dir / PACKAGE,
        ignore=shutil.ignore_patterns(*_CACHES),
    )
    _keep_only_models(output_dir / "botocore" / "data", BOTOCORE_SERVICES)
    if target.bytecode:
        _compile(output_dir, project_root)


def _compile(output_dir: Path, project_root: Path) -> None:
    """Ship bytecode for every module, and fail unless every one has current bytecode."""
    try:
        compiled = pyc.compile_tree(output_dir, project_root)
        modules = pyc.verify(output_dir)
    except pyc.BytecodeError as error:
        raise BundlingError(str(error)) from error
    if compiled.modules != modules:
        raise BundlingError(f"compiled {compiled.modules} modules of {modules}")


def _keep_only_models(data: Path, services: frozenset[str]) -> None:
    """Remove every other service's model from botocore's data, and its entries from the
    endpoint table.

    botocore ships the models of ~450 services (28 MB of a ~36 MB bundle), and the first client
    a function builds lists every one of their directories, then parses endpoints.json (1.2 MB,
    every service in every partition): ~30 ms of each cold start's first request. The
    endpoint table keeps its shape, with the kept services' entries as they were.
    """
    prefixes = {_endpoint_prefix(data / service) for service in services}
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in services:
            shutil.rmtree(entry)
    endpoints_file = data / "endpoints.json"
    endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
    for partition in endpoints["partitions"]:
        partition["services"] = {
            name: entry for name, entry in partition["services"].items() if name in prefixes
        }
    endpoints_file.write_text(json.dumps(endpoints, indent=1) + "\n", encoding="utf-8")


def _endpoint_prefix(service_dir: Path) -> str:
    """The name a service goes by in endpoints.json (``portal.sso`` for ``sso``)."""
    # Its API versions are dated directories; clients use the newest.
    model = sorted(service_dir.glob("*/service-2.json*"))[-1]
    raw = model.read_bytes()
    document = json.loads(gzip.decompress(raw) if model.suffix == ".gz" else raw)
    return str(document["metadata"]["endpointPrefix"])


@jsii.implements(cdk.ILocalBundling)
class UvLocalBundling:
    """CDK's hook for bundling on the build machine instead of in a Docker container."""

    def __init__(self, project_root: Path, target: BundleTarget = LAMBDA_TARGET) -> None:
        self._project_root = project_root
        self._target = target

    def try_bundle(
        self,
        output_dir: str,
        *,
        image: cdk.DockerImage,  # noqa: ARG002 - jsii passes options as keywords only to this shape
        **_options: Any,
    ) -> bool:
        # The options (image, command, ...) describe the Docker build this replaces; unused.
        # Returning False would make CDK fall back to Docker; a clear error is more useful.
        build_bundle(Path(output_dir), project_root=self._project_root, target=self._target)
        return True


def lambda_code(project_root: Path, *, skip_bundling: bool) -> lambda_.Code:
    """The code asset shared by all three functions.

    With `skip_bundling` (tests only) the asset is the bare source, which synthesises in
    milliseconds but would not run: its dependencies are missing.
    """
    source = project_root / "lambda_src"
    if skip_bundling:
        return lambda_.Code.from_asset(str(source), exclude=list(_CACHES))
    return lambda_.Code.from_asset(
        str(source),
        # Hash the bundle, not the source: a change in uv.lock alone must redeploy the functions.
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Required by the API, used only if local bundling declined, which ours never does.
            image=lambda_.Runtime.PYTHON_3_13.bundling_image,
            local=UvLocalBundling(project_root),
        ),
    )
