"""Cold start, from the real bundle: the webhook's import, its first call and a warm call.

Everything runs from the bundle (the same bundling code as the deployment, built for this
machine's platform and Python) in an isolated interpreter with nothing else on the path, so
development-only packages cannot inflate or hide anything. Each sample is a new interpreter;
interpreter start-up itself is not timed.

- Import: ``import segment_raindrop.handlers.webhook`` next to a bare ``import boto3``, the two
  probes alternating so that a busy machine slows both alike; first without bytecode (every
  module compiled from source, as Lambda did while the bundle shipped none), then with the
  bytecode the deployed bundle ships (hash-based, unchecked, never written at import: Lambda's
  code directory is read-only), compiled for this machine's Python, which is what can be timed
  here (the Lambda bundle's is 3.13's).
- First and warm call (:mod:`bench.handler_probe`): a fresh interpreter is given the
  environment the stack gives the function (AWS pointed at a moto server on 127.0.0.1), imports
  the webhook and calls ``handler(event, context)`` with an API Gateway REST proxy event holding
  a 4,000-event batch, delivered to a Raindrop receiver in its own process; then the same call
  again, warm. Both are compared with the JSON floor (``json.loads`` + ``json.dumps`` of the same
  body) measured in that same process.
"""

from __future__ import annotations

import compileall
import json
import logging
import os
import platform
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from bench import workload
from bench.endtoend import receiver
from infra.bundling import BundleTarget, build_bundle
from infra.config import StackConfig
from infra.functions import function_environment
from segment_raindrop.core.config import DeliveryConfig, ForwarderConfig
from segment_raindrop.core.contract import EVENT_BODY_BYTES

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().parent / "handler_probe.py"
_IMPORT_PROBE = (
    "import sys; sys.path.insert(0, {bundle!r}); import time; "
    "t, c = time.perf_counter(), time.process_time(); import {module}; "
    "print(time.perf_counter() - t, time.process_time() - c)"
)
FIRST_CALL_EVENTS = 4_000
REGION = "us-east-1"
SECRET_NAME = "segment-raindrop-bench"
WEBHOOK_TOKEN = "bench-webhook-token"  # a stand-in, known only to the moto secret


@dataclass(frozen=True)
class CallResult:
    """Medians over fresh interpreters, in seconds."""

    events: int
    first_seconds: float
    warm_seconds: float
    floor_seconds: float

    @property
    def first_ratio(self) -> float:
        return self.first_seconds / self.floor_seconds

    @property
    def warm_ratio(self) -> float:
        return self.warm_seconds / self.floor_seconds


@dataclass(frozen=True)
class ImportTime:
    """Medians, in seconds, of the wall time and of the importing process's CPU time."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class ColdStartResult:
    webhook: ImportTime  # the stack's default environment: tracing on
    webhook_untraced: ImportTime  # deployed with `-c tracing=false`
    boto3: ImportTime
    # The same two imports compiling every module from source, as Lambda did while the bundle
    # shipped no bytecode (its code directory is read-only: nothing is cached between starts).
    webhook_uncompiled: ImportTime
    boto3_uncompiled: ImportTime
    modules: dict[str, float]
    calls: CallResult

    @property
    def ratio(self) -> float:
        """Webhook over boto3 in CPU time. The import is single-threaded and reads files the
        page cache holds, so on an idle machine CPU and wall time agree; on a shared one the
        wall time also counts whatever the neighbours ran meanwhile (it moved between 1.8 and
        2.8 here from run to run, the CPU ratio by less than a tenth)."""
        return self.webhook.cpu / self.boto3.cpu

    @property
    def wall_ratio(self) -> float:
        return self.webhook.wall / self.boto3.wall

    @property
    def uncompiled_ratio(self) -> float:
        return self.webhook_uncompiled.cpu / self.boto3_uncompiled.cpu

    @property
    def bytecode_speedup(self) -> float:
        """The webhook's import without bytecode over with it, in CPU time."""
        return self.webhook_uncompiled.cpu / self.webhook.cpu


def this_machine() -> BundleTarget:
    return BundleTarget(
        python_platform=f"{platform.machine()}-manylinux2014",
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )


def _isolated(args: list[str], env: Mapping[str, str] | None = None) -> str:
    """Stdout of ``python -I -S -B args``: no site-packages, no user site, no PYTHON* variables,
    and no ``.pyc`` written, as in Lambda, where the code is read-only."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", *args],
        capture_output=True,
        text=True,
        check=False,
        env=dict(env) if env is not None else None,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def import_seconds(
    bundle: Path,
    modules: tuple[str, ...],
    env: Mapping[str, str],
    *,
    repeat: int,
) -> dict[str, ImportTime]:
    """Median import time of each module, the modules' samples interleaved."""
    walls: dict[str, list[float]] = {module: [] for module in modules}
    cpus: dict[str, list[float]] = {module: [] for module in modules}
    for _ in range(repeat):
        for module in modules:
            probe = _IMPORT_PROBE.format(bundle=str(bundle), module=module)
            output = _isolated(["-c", probe], env)
            wall, cpu = output.strip().splitlines()[-1].split()
            walls[module].append(float(wall))
            cpus[module].append(float(cpu))
    return {
        module: ImportTime(statistics.median(walls[module]), statistics.median(cpus[module]))
        for module in modules
    }


# What the webhook's import is made of, each measured alone (they overlap: botocore is in
# several). The webhook makes its AWS clients with botocore: boto3 itself is not imported.
BREAKDOWN = (
    "pydantic",
    "httpx",
    "botocore.session",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler",
    "aws_xray_sdk.core",
)


@contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only this benchmark needs it

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _aws_environment(endpoint: str) -> dict[str, str]:
    """What Lambda provides besides the function's own variables, with AWS on ``endpoint``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "segment-raindrop-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "LAMBDA_TASK_ROOT": "/var/task",
        # Lambda sets this for each invocation; with it the X-Ray SDK records a sampled trace
        # and sends it by UDP to 127.0.0.1:2000 (where nothing listens), as it would to the
        # daemon, instead of discarding every subsegment.
        "_X_AMZN_TRACE_ID": (
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        ),
        "NO_PROXY": "127.0.0.1,localhost",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


def _provision(endpoint: str) -> tuple[str, str, str]:
    """(secret ARN, retry queue URL, DLQ URL) created on the moto server."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    secrets = session.client("secretsmanager", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    # moto keeps its state per process, not per server: a second run must not collide.
    suffix = uuid.uuid4().hex[:8]
    secret = secrets.create_secret(
        Name=f"{SECRET_NAME}-{suffix}",
        SecretString=json.dumps(
            {"raindrop_api_key": "bench-raindrop-key", "webhook_token": WEBHOOK_TOKEN}
        ),
    )
    dlq = sqs.create_queue(QueueName=f"segment-raindrop-bench-dlq-{suffix}")["QueueUrl"]
    retry = sqs.create_queue(QueueName=f"segment-raindrop-bench-retry-{suffix}")["QueueUrl"]
    return secret["ARN"], retry, dlq


def function_env(endpoint: str, raindrop_url: str) -> dict[str, str]:
    """The webhook's environment as the stack writes it (cdk.json's defaults), on moto."""
    secret_arn, retry_url, dlq_url = _provision(endpoint)
    stack = StackConfig()
    forwarder = ForwarderConfig(
        secret_id=secret_arn,
        retry_queue_url=retry_url,
        dlq_url=dlq_url,
        retry_max_attempts=stack.retry_max_receives,
        mapping=stack.mapping,
        delivery=DeliveryConfig(
            raindrop_api_url=raindrop_url, budget_seconds=stack.delivery_budget_seconds
        ),
    )
    return {**_aws_environment(endpoint), **function_environment(forwarder, stack)}


# The fields the forwarder reads. A Segment mapping that sends just these is how a 4,000-event
# batch of this workload fits Lambda's payload: with Segment's full ``context`` on every event
# (the default mapping) such a batch is over 6 MB and API Gateway refuses it with 413.
_MAPPED_FIELDS = frozenset(
    {"type", "event", "messageId", "userId", "anonymousId", "timestamp", "properties", "traits"}
)


def mapped_body(events: int) -> bytes:
    """The benchmark workload's batch as a mapping selecting :data:`_MAPPED_FIELDS` sends it."""
    mapped = []
    for event in json.loads(workload.body(events)):
        selected = {name: value for name, value in event.items() if name in _MAPPED_FIELDS}
        traits = (event.get("context") or {}).get("traits")
        if traits:
            selected["context"] = {"traits": traits}
        mapped.append(selected)
    body = json.dumps(mapped, separators=(",", ":"), ensure_ascii=False).encode()
    if len(json.dumps(body.decode())) > EVENT_BODY_BYTES:
        raise ValueError(f"{len(body)} bytes: more than the webhook API admits")
    return body


def rest_proxy_event(body: bytes) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload 1.0) for Segment's POST, as Lambda gets it
    from the stack's webhook API: no binary media types, so the body arrives as text."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Segment (Actions)",
        "Authorization": f"Bearer {WEBHOOK_TOKEN}",
        "Host": "example.execute-api.us-east-1.amazonaws.com",
    }
    return {
        "resource": "/segment",
        "path": "/segment",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/segment",
            "httpMethod": "POST",
            "path": "/prod/segment",
            "stage": "prod",
            "requestId": "bench-request",
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "bench",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers["User-Agent"]},
        },
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }


def handler_calls(
    bundle: Path, *, events: int = FIRST_CALL_EVENTS, repeat: int = 7, warm_calls: int = 7
) -> CallResult:
    """First and warm webhook calls, each sample in a fresh interpreter (medians)."""
    samples: dict[str, list[float]] = {"first": [], "warm": [], "floor": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-event-") as tmp,
        moto_server() as endpoint,
        receiver(0.0) as raindrop_url,
    ):
        event_file = Path(tmp) / "event.json"
        event_file.write_text(json.dumps(rest_proxy_event(mapped_body(events))))
        env = function_env(endpoint, raindrop_url)
        for _ in range(repeat):
            output = _isolated([str(PROBE), str(bundle), str(event_file), str(warm_calls)], env)
            result = json.loads(output.strip().splitlines()[-1])
            for name, values in samples.items():
                values.append(result[name])
    return CallResult(
        events=events,
        first_seconds=statistics.median(samples["first"]),
        warm_seconds=statistics.median(samples["warm"]),
        floor_seconds=statistics.median(samples["floor"]),
    )


def run() -> ColdStartResult:
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        bundle = Path(tmp)
        build_bundle(bundle, project_root=ROOT, target=this_machine())
        add_boto3(bundle)
        # The function's environment matters to the import: whether a tracer is built, and
        # the X-Ray SDK does much more outside Lambda (it builds a botocore client).
        env = {**_aws_environment("http://127.0.0.1:9"), **_stack_environment()}
        untraced = {**env, **_stack_environment(tracing=False)}
        pair = ("segment_raindrop.handlers.webhook", "boto3")
        # First, while the fresh bundle holds no bytecode yet.
        uncompiled = import_seconds(bundle, pair, env, repeat=5)
        ship_bytecode(bundle)
        both = import_seconds(bundle, pair, env, repeat=15)
        return ColdStartResult(
            webhook=both["segment_raindrop.handlers.webhook"],
            webhook_untraced=import_seconds(
                bundle, ("segment_raindrop.handlers.webhook",), untraced, repeat=9
            )["segment_raindrop.handlers.webhook"],
            boto3=both["boto3"],
            webhook_uncompiled=uncompiled["segment_raindrop.handlers.webhook"],
            boto3_uncompiled=uncompiled["boto3"],
            modules={
                module: import_seconds(bundle, (module,), env, repeat=5)[module].cpu
                for module in BREAKDOWN
            },
            calls=handler_calls(bundle),
        )


def add_boto3(bundle: Path) -> None:
    """Put boto3 (and s3transfer, which it imports) next to the bundle's botocore, for the
    reference import: the deployed bundle leaves them out, as nothing shipped imports them."""
    import s3transfer  # noqa: PLC0415 - only this benchmark needs them

    for package in (boto3, s3transfer):
        source = Path(package.__file__ or "").parent
        shutil.copytree(source, bundle / source.name, ignore=shutil.ignore_patterns("__pycache__"))


def ship_bytecode(bundle: Path) -> None:
    """Compile the bundle as `infra/bundling.py` does Lambda's (hash-based, unchecked), with
    this machine's Python: the one whose imports can be timed here."""
    if not compileall.compile_dir(
        bundle, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    ):
        raise RuntimeError(f"compiling {bundle} failed")


def _stack_environment(*, tracing: bool = True) -> dict[str, str]:
    """The variables the stack gives the webhook, with stand-ins for its resources: importing
    reads none of them but the ones that decide whether a tracer is built."""
    placeholder = ForwarderConfig(
        secret_id="unused", retry_queue_url="http://127.0.0.1:9/q", dlq_url="http://127.0.0.1:9/d"
    )
    return function_environment(placeholder, StackConfig(tracing=tracing))
