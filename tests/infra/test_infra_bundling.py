"""Bundling without Docker: the real arm64 bundle, its contents, determinism, and imports.

The first fixture runs the real `cdk synth` path (CDK calls UvLocalBundling.try_bundle); the
others call the same build function directly, once for Lambda and once for this machine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import platform
import py_compile
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.app import PROJECT_ROOT, build_app
from infra.bundling import (
    BOTOCORE_SERVICES,
    LAMBDA_TARGET,
    BundleTarget,
    BundlingError,
    build_bundle,
    export_requirements,
)
from infra.bytecode import BytecodeError, cache_file, compile_tree, verify
from segment_raindrop.core.contract import AWS_SERVICES
from tests.infra.support import HANDLERS, context_with

PACKAGE_SOURCE = PROJECT_ROOT / "lambda_src" / "segment_raindrop"
AARCH64_PYDANTIC_CORE = "pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so"
# Development, test, CDK and CLI-only distributions that must never reach Lambda.
FORBIDDEN = (
    "pytest",
    "_pytest",
    "moto",
    "typer",
    "rich",
    "click",
    "aws_cdk",
    "constructs",
    "cdk_nag",
    "jsii",
    "cfnlint",
    "mypy",
    "ruff",
    "hypothesis",
    "segment",
    "analytics",
    "matplotlib",
    "pyinstrument",
    "pytest_benchmark",
    "werkzeug",
    "flask",
)


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file: what the asset hash is computed from."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def cdk_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, object]]:
    """(bundle directory, asset hash, template) from a real synth with bundling."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(context_with(skipBundling=False), outdir=str(outdir))
    app.synth()
    assets = json.loads((outdir / f"{stack.stack_name}.assets.json").read_text())["files"]
    (asset_hash,) = [h for h, a in assets.items() if a["source"].get("packaging") == "zip"]
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return outdir / assets[asset_hash]["source"]["path"], asset_hash, template


@pytest.fixture(scope="module")
def host_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same bundle built for this machine's platform and Python, to import it here."""
    target = BundleTarget(
        python_platform=f"{platform.machine()}-manylinux2014",
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )
    output = tmp_path_factory.mktemp("host-bundle")
    build_bundle(output, project_root=PROJECT_ROOT, target=target)
    return output


def _in_bundle(
    probe: str, bundle: Path, *arguments: str, env: dict[str, str], timeout: int = 60
) -> subprocess.CompletedProcess[str]:
    """``probe`` run by a fresh interpreter that sees the bundle and nothing else: -I (no
    PYTHON* variables, user site or current directory) and -S (no site-packages)."""
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(bundle), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=env,
    )


def test_real_bundle_holds_the_aarch64_pydantic_core(
    cdk_bundle: tuple[Path, str, dict[str, object]],
) -> None:
    bundle, _, _ = cdk_bundle
    assert (bundle / AARCH64_PYDANTIC_CORE).is_file()
    extensions = [str(p.relative_to(bundle)) for p in bundle.rglob("*.so")]
    assert extensions
    assert all("aarch64" in name or "cpython-313" not in name for name in extensions)
    assert not [name for name in extensions if "x86_64" in name]


def test_real_bundle_holds_exactly_the_locked_runtime_dependencies(
    cdk_bundle: tuple[Path, str, dict[str, object]], tmp_path: Path
) -> None:
    bundle, _, _ = cdk_bundle
    requirements = export_requirements(PROJECT_ROOT, tmp_path / "requirements.txt").read_text()
    locked = {
        _normalise(line.split("==")[0])
        for line in requirements.splitlines()
        if line and not line.startswith(("#", " "))
    }
    installed = {
        _normalise(path.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for path in bundle.glob("*.dist-info")
    }
    assert installed == locked
    assert {"pydantic", "pydantic-core", "httpx", "aws-lambda-powertools", "botocore"} <= installed
    # Nothing shipped imports boto3 (the functions use botocore's clients): it is the tools'.
    assert not {"boto3", "s3transfer"} & installed
    top_level = {path.name.split(".")[0] for path in bundle.iterdir()}
    assert not top_level & set(FORBIDDEN)
    assert not [name for name in top_level if name.startswith("mypy_boto3")]


def test_real_bundle_holds_the_package_without_caches(
    cdk_bundle: tuple[Path, str, dict[str, object]],
) -> None:
    bundle, _, _ = cdk_bundle
    package = bundle / "segment_raindrop"
    shipped = {str(p.relative_to(package)) for p in package.rglob("*.py")}
    source = {
        str(p.relative_to(PACKAGE_SOURCE))
        for p in PACKAGE_SOURCE.rglob("*.py")
        if "__pycache__" not in p.relative_to(PACKAGE_SOURCE).parts
    }
    assert shipped == source
    assert "handlers/webhook.py" in shipped
    # Bytecode, only Lambda's: one 3.13 file per module, none of this machine's caches.
    cached = {str(p.relative_to(package)) for p in package.rglob("*.pyc")}
    assert cached == {str(cache_file(Path(name))) for name in shipped}
    assert not [p for p in bundle.rglob("*") if p.suffix in {".pyo"} or p.name == ".DS_Store"]
    assert not (bundle / "bin").exists()
    assert not (bundle / ".lock").exists()


def test_every_function_uses_the_one_bundle(
    cdk_bundle: tuple[Path, str, dict[str, object]],
) -> None:
    _, asset_hash, template = cdk_bundle
    resources = template["Resources"]
    assert isinstance(resources, dict)
    keys = [
        resource["Properties"]["Code"]["S3Key"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
    ]
    assert keys == [f"{asset_hash}.zip"] * 4


def test_bundle_is_reproducible(
    cdk_bundle: tuple[Path, str, dict[str, object]], tmp_path: Path
) -> None:
    bundle, _, _ = cdk_bundle
    build_bundle(tmp_path, project_root=PROJECT_ROOT, target=LAMBDA_TARGET)
    assert _tree(tmp_path) == _tree(bundle)


_IMPORT = """
import importlib, sys
bundle = sys.argv[1]
sys.path.insert(0, bundle)
module = importlib.import_module(sys.argv[2])
assert module.__file__.startswith(bundle), module.__file__
assert callable(module.handler)
leaked = [
    m.__file__ for m in list(sys.modules.values())
    if "site-packages" in (getattr(m, "__file__", None) or "")
]
assert not leaked, leaked
print("ok")
"""


@pytest.mark.parametrize("handler", HANDLERS)
def test_bundle_imports_every_handler_in_a_clean_interpreter(
    host_bundle: Path, handler: str
) -> None:
    module = handler.removesuffix(".handler")
    result = _in_bundle(
        _IMPORT,
        host_bundle,
        module,
        env={
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "RAINDROP_SECRET_ID": "segment-raindrop",
            "RETRY_QUEUE_URL": "http://127.0.0.1:9/queue/retry",
            "DLQ_URL": "http://127.0.0.1:9/queue/dlq",
            "POWERTOOLS_SERVICE_NAME": "segment-raindrop",
            "POWERTOOLS_METRICS_NAMESPACE": "SegmentRaindrop",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_real_bundle_holds_no_operator_tooling(
    cdk_bundle: tuple[Path, str, dict[str, object]],
) -> None:
    bundle, _, _ = cdk_bundle
    modules = {str(p.relative_to(bundle)) for p in bundle.rglob("*.py")}
    # The tooling package, and the modules that used to live in the forwarder's package.
    assert not (bundle / "segment_raindrop_tools").exists()
    assert not [name for name in modules if name.startswith("segment_raindrop_tools")]
    package = {
        name.removeprefix("segment_raindrop/")
        for name in modules
        if name.startswith("segment_raindrop/")
    }
    assert "handlers/webhook.py" in package
    file_names = {Path(name).name for name in package}
    for tool in (
        "cli.py",
        "cli_common.py",
        "cli_local.py",
        "cli_replay.py",
        "samples.py",
        "events.py",
    ):
        assert tool not in file_names
    assert not [name for name in package if "local/" in name]
    # No CLI or local-mode dependency, neither as an importable package nor as an installed
    # distribution (a dist-info without its package would still be a wrong lock export).
    distributions = {
        _normalise(path.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        for path in bundle.glob("*.dist-info")
    }
    top_level = {path.name.split(".")[0] for path in bundle.iterdir()}
    for tool_dependency in ("typer", "rich", "moto", "click", "werkzeug", "flask"):
        assert tool_dependency not in distributions
        assert tool_dependency not in top_level


_XRAY_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import segment_raindrop.handlers.webhook
from segment_raindrop.adapters import observability
print("aws_xray_sdk" in sys.modules, observability.tracer is not None)
"""

_LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "segment-raindrop-webhook"}


@pytest.mark.parametrize(
    ("variables", "traced"),
    [
        ({**_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),  # the stack's default
        ({**_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, False),  # `-c tracing=false`
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, False),  # not in Lambda: nothing to trace to
    ],
)
def test_the_xray_sdk_is_imported_only_when_tracing(
    host_bundle: Path, variables: dict[str, str], traced: bool
) -> None:
    result = _in_bundle(
        _XRAY_PROBE,
        host_bundle,
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", **variables},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(traced), str(traced)]


_LOADING_PROBE = """
import gc
import importlib
import sys
sys.path.insert(0, sys.argv[1])
importlib.import_module(sys.argv[2])
print(gc.isenabled(), gc.get_freeze_count() > 10_000)
"""


@pytest.mark.parametrize(
    "handler_module",
    [
        "segment_raindrop.handlers.webhook",
        "segment_raindrop.handlers.raindrop_sdk",
        "segment_raindrop.handlers.retry_worker",
        "segment_raindrop.handlers.replay",
    ],
)
@pytest.mark.parametrize(
    ("variables", "frozen"),
    [
        ({**_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, False),  # tests, local mode, the CLI
    ],
)
def test_in_lambda_a_handler_loads_frozen_and_leaves_the_collector_on(
    host_bundle: Path, variables: dict[str, str], frozen: bool, handler_module: str
) -> None:
    # Frozen, the ~100,000 objects of the import are never walked by the collector, neither
    # while they load (which cost ~40 ms of the import) nor on the first invocation.
    result = _in_bundle(
        _LOADING_PROBE,
        host_bundle,
        handler_module,
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", **variables},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(frozen)]


_LIBRARIES_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import segment_raindrop.handlers.webhook
from aws_xray_sdk.core import patcher
print(" ".join(sorted(patcher._PATCHED_MODULES)))
print(" ".join(name for name in ("boto3", "s3transfer") if name in sys.modules) or "-")
"""


def test_the_traced_webhook_patches_only_its_clients_and_imports_no_boto3(
    host_bundle: Path,
) -> None:
    # botocore's clients are all the functions use: boto3 (resources, S3 transfers) and the
    # X-Ray patches of libraries they never call would only lengthen every cold start.
    result = _in_bundle(
        _LIBRARIES_PROBE,
        host_bundle,
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", **_LAMBDA},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["botocore httpx", "-"]


def test_the_bundle_keeps_the_botocore_models_of_the_services_called_only(
    cdk_bundle: tuple[Path, str, dict[str, object]],
) -> None:
    bundle, _, _ = cdk_bundle
    data = bundle / "botocore" / "data"
    assert {entry.name for entry in data.iterdir() if entry.is_dir()} == BOTOCORE_SERVICES
    assert set(AWS_SERVICES) <= BOTOCORE_SERVICES
    endpoints = json.loads((data / "endpoints.json").read_text())
    assert endpoints["partitions"]
    for partition in endpoints["partitions"]:
        assert {"sqs", "secretsmanager", "dynamodb"} <= set(partition["services"])


# Every kept service in a region of each partition kind, with and without FIPS, through the
# runtime's own client factory for the functions' services.
_REGIONS = ("us-east-1", "eu-central-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1")
_ENDPOINTS_PROBE = """
import json
import sys
sys.path.insert(0, sys.argv[1])
import botocore.session
from botocore.config import Config
from segment_raindrop.adapters.aws import aws_clients
session = botocore.session.get_session()
found = {}
for service in json.loads(sys.argv[2]):
    for region in json.loads(sys.argv[3]):
        for fips in (False, True):
            config = Config(use_fips_endpoint=fips)
            try:
                client = session.create_client(service, region_name=region, config=config)
                found[f"{service} {region} {fips}"] = client.meta.endpoint_url
            except Exception as exc:
                found[f"{service} {region} {fips}"] = type(exc).__name__
clients = aws_clients(region="eu-west-1", dynamodb=True)
found["runtime"] = [clients.sqs.meta.endpoint_url, clients.secretsmanager.meta.endpoint_url,
                    clients.dynamodb.meta.endpoint_url]
print(json.dumps(found))
"""


def test_clients_built_from_the_bundle_reach_the_endpoints_full_botocore_gives(
    host_bundle: Path,
) -> None:
    arguments = [json.dumps(sorted(BOTOCORE_SERVICES)), json.dumps(_REGIONS)]
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    pruned = _in_bundle(_ENDPOINTS_PROBE, host_bundle, *arguments, env=environment, timeout=120)
    assert pruned.returncode == 0, pruned.stderr
    # The same botocore, every model in place: this test's own environment, whose lock the
    # bundle installs from (a stand-in package directory supplies segment_raindrop).
    full = subprocess.run(
        [sys.executable, "-c", _ENDPOINTS_PROBE, str(PACKAGE_SOURCE.parent), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**environment, "PATH": "/usr/bin:/bin"},
    )
    assert full.returncode == 0, full.stderr
    expected = json.loads(full.stdout)
    assert json.loads(pruned.stdout) == expected
    assert expected["runtime"] == [
        "https://sqs.eu-west-1.amazonaws.com",
        "https://secretsmanager.eu-west-1.amazonaws.com",
        "https://dynamodb.eu-west-1.amazonaws.com",
    ]


# Bytecode: Lambda's python3.13 loads `__pycache__/*.cpython-313.pyc` hash-based and unchecked.


def test_real_bundle_holds_current_313_bytecode_for_every_module(
    cdk_bundle: tuple[Path, str, dict[str, object]],
) -> None:
    bundle, _, _ = cdk_bundle
    sources = sorted(bundle.rglob("*.py"))
    # Ours and the dependencies' (several hundred modules), each checked against its source.
    assert verify(bundle) == len(sources) > 500
    for source in sources:
        header = cache_file(source).read_bytes()[:8]
        assert header == bytes.fromhex("f30d0d0a") + (0b01).to_bytes(4, "little"), source
    assert len(list(bundle.rglob("*.pyc"))) == len(sources)
    assert (bundle / "segment_raindrop/handlers/__pycache__/webhook.cpython-313.pyc").is_file()
    assert (bundle / "pydantic/__pycache__/main.cpython-313.pyc").is_file()


@pytest.fixture
def compiled_package(cdk_bundle: tuple[Path, str, dict[str, object]], tmp_path: Path) -> Path:
    """A copy of the bundle's package, sources and bytecode, to damage."""
    bundle, _, _ = cdk_bundle
    copy = tmp_path / "bundle"
    shutil.copytree(bundle / "segment_raindrop", copy / "segment_raindrop")
    return copy


def _rejected(directory: Path) -> str:
    with pytest.raises(BytecodeError) as raised:
        verify(directory)
    return str(raised.value)


def test_stale_bytecode_is_detected(compiled_package: Path) -> None:
    source = compiled_package / "segment_raindrop/core/timing.py"
    source.write_text(source.read_text() + "\nEDITED = True\n")
    message = _rejected(compiled_package)
    assert "1 module(s)" in message
    assert "segment_raindrop/core/timing.py: timing.cpython-313.pyc is stale" in message


def test_missing_bytecode_is_detected(compiled_package: Path) -> None:
    cache_file(compiled_package / "segment_raindrop/handlers/webhook.py").unlink()
    (compiled_package / "segment_raindrop/core/added.py").write_text("ADDED = 1\n")
    message = _rejected(compiled_package)
    assert "2 module(s)" in message
    assert "segment_raindrop/handlers/webhook.py: no cpython-313 bytecode" in message
    assert "segment_raindrop/core/added.py: no cpython-313 bytecode" in message


def test_bytecode_of_another_python_or_checked_by_timestamp_is_detected(
    compiled_package: Path,
) -> None:
    timing = compiled_package / "segment_raindrop/core/timing.py"
    # This machine's own (3.11) bytecode under 3.13's name.
    py_compile.compile(
        str(timing),
        cfile=str(cache_file(timing)),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    # A 3.13 file that asks the runtime to compare the source's timestamp (flags 0).
    mapping = cache_file(compiled_package / "segment_raindrop/core/jobs.py")
    data = bytearray(mapping.read_bytes())
    data[4:8] = bytes(4)
    mapping.write_bytes(bytes(data))
    # Bytecode whose source is gone: never loaded from __pycache__, only weight.
    orphan = compiled_package / "segment_raindrop/core/__pycache__/gone.cpython-313.pyc"
    orphan.write_bytes(cache_file(timing).read_bytes())
    message = _rejected(compiled_package)
    assert "3 module(s)" in message
    assert f"has magic {importlib.util.MAGIC_NUMBER.hex()}, not 3.13's f30d0d0a" in message
    assert "jobs.cpython-313.pyc has flags 0b00, not unchecked hash-based" in message
    assert "core/__pycache__/gone.cpython-313.pyc: bytecode without its source" in message


def test_a_module_that_does_not_compile_fails_the_build(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text("VALUE = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "broken.py").write_text("def broken(:\n")
    with pytest.raises(BytecodeError, match=r"pkg/broken\.py: SyntaxError"):
        compile_tree(tmp_path, PROJECT_ROOT)


def test_bytecode_is_only_compiled_for_313(tmp_path: Path) -> None:
    target = BundleTarget("x86_64-manylinux2014", "3.12", bytecode=True)
    with pytest.raises(BundlingError, match=r"only be compiled for Python 3\.13, not 3\.12"):
        build_bundle(tmp_path, project_root=PROJECT_ROOT, target=target)


# CPython 3.13 (pyodide's) imports a module of the bundle from its bytecode without reading the
# source: the source is replaced by one that would fail, the bytecode left as built.
_LOAD_313 = """
import { loadPyodide } from "pyodide";
const py = await loadPyodide({ stdout: console.log, stderr: console.error });
py.mountNodeFS("/var/task", process.argv[1]);
py.runPython(`
import sys
sys.path.insert(0, "/var/task")
sys.dont_write_bytecode = True
import segment_raindrop.core.timing as timing
print(sys.version_info[:2], type(timing.__spec__.loader).__name__, timing.__file__)
`);
"""


def test_python_313_loads_the_shipped_bytecode_without_the_source(
    compiled_package: Path,
) -> None:
    source = compiled_package / "segment_raindrop/core/timing.py"
    source.write_text("raise RuntimeError('the source was compiled, not the bytecode loaded')\n")
    done = subprocess.run(
        ["node", "--input-type=module", "-e", _LOAD_313, str(compiled_package)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == (
        "(3, 13) SourceFileLoader /var/task/segment_raindrop/core/timing.py"
    )
