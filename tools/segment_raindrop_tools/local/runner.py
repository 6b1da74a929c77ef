"""Local mode: the forwarder's real handlers wired together on 127.0.0.1.

:class:`LocalMode` starts, in this process:

- a moto server holding the forwarder's secret, retry queue and dead-letter queue
  (:func:`segment_raindrop_tools.local.aws.provision`);
- a Raindrop stand-in (:class:`~segment_raindrop_tools.local.receiver.RaindropReceiver`) that prints
  one line per accepted item and appends it to a JSONL file, unless a real Raindrop URL and key
  are given, in which case nothing local stands in for Raindrop;
- the webhook, served over HTTP: each request becomes an API Gateway REST proxy event for
  ``segment_raindrop.webhook.handler`` (which serves ``POST /segment`` and ``POST /v1/batch``,
  the path Segment's own libraries post to), and the handler's answer is written back;
- the retry worker: the retry queue is polled and each batch handed to
  ``segment_raindrop.retry.handler`` as an SQS event, deleting what the handler did not report
  as failed, as Lambda's SQS event source mapping does with ``ReportBatchItemFailures``.

Nothing here reimplements a pipeline step: only the translation between HTTP / SQS and the
Lambda event formats is local. The handlers run one invocation at a time, as in one Lambda
execution environment: they share module-level state (the resolver, the logger, the metrics)
that is not meant to serve two invocations at once.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop import retry, webhook
from segment_raindrop.config import DEFAULT_RAINDROP_API_URL
from segment_raindrop.observability import logger as forwarder_logger
from segment_raindrop_tools.local.apigw import LocalContext, rest_proxy_event
from segment_raindrop_tools.local.aws import LocalResources, MotoServer, provision
from segment_raindrop_tools.local.http import (
    BadBodyError,
    BodyTooLargeError,
    DispatchHandler,
    TrackedHTTPServer,
    read_request_body,
)
from segment_raindrop_tools.local.receiver import RaindropReceiver, check_raindrop_items

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "ENV_FILE",
    "HOST",
    "ITEMS_FILE",
    "STATE_FILE",
    "Exchange",
    "LocalEndpoints",
    "LocalMode",
    "LocalOptions",
    "RetryRun",
    "read_state",
    "sqs_lambda_event",
]

HOST = "127.0.0.1"  # local mode never listens on any other address
DEFAULT_PORT = 8787
DEFAULT_DATA_DIR = Path("local-data")
STATE_FILE = "local.json"
ENV_FILE = "local.env"
ITEMS_FILE = "raindrop-items.jsonl"

# What the deployed stack uses (infra/functions.py, infra/config.py).
WEBHOOK_TIMEOUT_SECONDS = 10.0
RETRY_TIMEOUT_SECONDS = 60.0
RETRY_BATCH_SIZE = 10
# API Gateway refuses larger payloads before the function sees them.
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
WEBHOOK_PATH = "/segment"
SHORT_POLL_PAUSE_SECONDS = 0.2
_STOPPING_BODY = b'{"message":"local mode is stopping"}'

# Credentials and endpoint overrides of the caller's shell that must not reach a local endpoint
# (or that would send the handlers somewhere else than moto).
_SCRUBBED_VARIABLES = frozenset(
    {"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"}
)
_SCRUBBED_PREFIXES = ("AWS_ENDPOINT_URL_",)

Echo = Callable[[str], None]


@dataclass(frozen=True)
class LocalOptions:
    """How to run local mode; every port 0 means an ephemeral port."""

    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    # Forward to this Raindrop (with ``raindrop_api_key``) instead of the local receiver.
    raindrop_url: str | None = None
    raindrop_api_key: str | None = None
    # Fixed credentials for Segment's side; random ones when None.
    webhook_token: str | None = None
    shared_secret: str | None = None
    moto_port: int = 0
    receiver_port: int = 0
    region: str = "us-east-1"
    retry_base_delay_seconds: int = 5
    # Long-poll wait of the retry worker's ReceiveMessage (SQS allows 0..20); 0 polls every
    # SHORT_POLL_PAUSE_SECONDS instead, which lets stop() return at once (tests).
    retry_poll_seconds: int = 2
    # Queue and secret names; tests running several instances against one moto use their own.
    resource_prefix: str = "segment-raindrop"
    verbose: bool = False

    @property
    def forwards_to_real_raindrop(self) -> bool:
        return bool(self.raindrop_url or self.raindrop_api_key)


@dataclass(frozen=True)
class LocalEndpoints:
    """Where everything runs and the credentials to use; also what the state file holds."""

    webhook_url: str
    tracking_api_host: str
    batch_url: str
    webhook_token: str
    shared_secret: str
    moto_endpoint: str
    region: str
    secret_id: str
    retry_queue_url: str
    dlq_url: str
    raindrop_url: str
    local_receiver: bool
    items_file: str | None
    state_file: str
    env_file: str
    pid: int
    started_at: str

    def replay_environment(self) -> dict[str, str]:
        """What ``segment-raindrop replay`` (or any AWS tool) needs to use these resources."""
        return {
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "RAINDROP_SECRET_ID": self.secret_id,
            "RETRY_QUEUE_URL": self.retry_queue_url,
            "DLQ_URL": self.dlq_url,
            "RAINDROP_API_URL": self.raindrop_url,
        }

    def curl(self, *, now: datetime | None = None) -> str:
        """A ready-to-paste curl sending one AI chat event with the bearer token."""
        at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event = {
            "type": "track",
            "event": "AI Chat Completed",
            "userId": "user-123",
            "messageId": f"curl-{secrets.token_hex(4)}",
            "timestamp": at,
            "properties": {
                "model": "gpt-4o",
                "convo_id": "convo-1",
                "ai_data": {
                    "input": "How do I rotate my API key?",
                    "output": "Go to Settings, API keys, and choose Rotate.",
                },
            },
        }
        body = json.dumps(event, separators=(",", ":"))
        return (
            f"curl -sS -w '\\n' -X POST {shlex.quote(self.webhook_url)} \\\n"
            f"  -H {shlex.quote('Authorization: Bearer ' + self.webhook_token)} \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(body)}"
        )


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The state a running local mode wrote into ``data_dir``, or None."""
    try:
        parsed = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


@dataclass(frozen=True)
class Exchange:
    """One HTTP request the local webhook answered."""

    method: str
    path: str
    status: int
    answer: dict[str, Any] | None
    duration_ms: float
    # The kinds of credentials the request carried ("basic", "bearer", "signature"), no values.
    credentials: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetryRun:
    """One invocation of the retry worker."""

    received: int
    failed: int
    deleted: int
    error: str | None = None


@dataclass
class _EnvironmentPatch:
    """Changes to ``os.environ`` that can be undone exactly."""

    saved: dict[str, str | None] = field(default_factory=dict)

    def set(self, name: str, value: str) -> None:
        self.saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def unset(self, name: str) -> None:
        self.saved.setdefault(name, os.environ.get(name))
        os.environ.pop(name, None)

    def restore(self) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved.clear()


def sqs_lambda_event(
    messages: list[MessageTypeDef], *, queue_arn: str, region: str
) -> dict[str, Any]:
    """SQS messages as Lambda's SQS event source hands them to a function."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message.get("Body", ""),
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: _lambda_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _lambda_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted


def _failed_ids(response: Any, batch_ids: set[str]) -> set[str]:
    """The messages to keep, read as Lambda reads a ``ReportBatchItemFailures`` response.

    A malformed response, or one naming a message not in the batch, fails the whole batch.
    """
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return set(batch_ids)
    failures = response.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return set(batch_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(identifier)
    return failed


def _clean(value: Any, limit: int = 64) -> str:
    """A value safe to print on one terminal line: no control characters, bounded length."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_item(endpoint: str, item: Mapping[str, Any]) -> str:
    """One readable line for an item Raindrop accepted; never prompt or answer text."""
    if endpoint == "events/track":
        label = _clean(item.get("event"), 32)
        details = f"user={_clean(item.get('user_id'))}  event_id={_clean(item.get('event_id'))}"
    elif endpoint == "signals/track":
        kind = _clean(item.get("signal_type", "default"))
        if item.get("sentiment"):
            kind += f", {_clean(item.get('sentiment'))}"
        label = f"{_clean(item.get('signal_name'), 20)} ({kind})"
        details = f"event_id={_clean(item.get('event_id'))}"
    else:
        traits = item.get("traits")
        label = f"{len(traits) if isinstance(traits, Mapping) else 0} traits"
        details = f"user={_clean(item.get('user_id'))}"
    return f"{label:<28} {details}"


def _describe_answer(exchange: Exchange) -> str:
    answer = exchange.answer or {}
    keys = ("received", "forwarded", "filtered", "queued", "dead_lettered", "unqueued")
    if "received" in answer:
        return "  ".join(f"{key}={answer[key]}" for key in keys if key in answer)
    return _clean(answer.get("error") or answer.get("message") or "", 80)


class _FrontHandler(DispatchHandler):
    server_version = "segment-raindrop-local"
    # An idle keep-alive connection is closed after this long.
    timeout = 30.0
    server: _FrontServer

    def dispatch(self) -> None:
        with self.server.request():
            self.server.front.handle(self)


class _FrontServer(TrackedHTTPServer):
    thread_name = "local-webhook-conn"

    def __init__(self, address: tuple[str, int], front: _WebhookFront) -> None:
        self.front = front
        self._idle = threading.Condition()
        self._active_requests = 0
        super().__init__(address, _FrontHandler)

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Marks a request in progress, from its first byte to the end of its answer."""
        with self._idle:
            self._active_requests += 1
        try:
            yield
        finally:
            with self._idle:
                self._active_requests -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._active_requests == 0, timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        # Quieter than the base, which prints what is not a hang-up: local mode's console shows
        # only its own lines.
        return


def _credential_kinds(handler: BaseHTTPRequestHandler) -> tuple[str, ...]:
    kinds: list[str] = []
    scheme = handler.headers.get("Authorization", "").strip().partition(" ")[0].lower()
    if scheme:
        kinds.append(scheme)
    if handler.headers.get("X-Signature"):
        kinds.append("signature")
    return tuple(kinds)


class _WebhookFront:
    """HTTP → API Gateway REST proxy event → the real webhook handler → HTTP."""

    def __init__(self, mode: LocalMode) -> None:
        self._mode = mode

    def handle(self, handler: _FrontHandler) -> None:
        # The Lambda's clock starts when the request arrives, as API Gateway's would: time spent
        # waiting for the previous invocation counts against Segment's 10 s.
        context = LocalContext(
            function_name="segment-raindrop-webhook", timeout_seconds=WEBHOOK_TIMEOUT_SECONDS
        )
        started = time.monotonic()
        path = handler.path
        try:
            body = read_request_body(handler, API_GATEWAY_MAX_BODY_BYTES)
        except BadBodyError as problem:
            handler.close_connection = True
            # What API Gateway answers before the function is involved.
            too_large = isinstance(problem, BodyTooLargeError)
            status = 413 if too_large else 400
            answer = {"message": "Request Too Long" if too_large else str(problem)}
            self._mode._record(Exchange(handler.command, urlsplit(path).path, status, answer, 0.0))
            payload = json.dumps(answer).encode()
            self._write(handler, status, [("Content-Type", "application/json")], payload)
            return
        if body is None:
            # The client went away before sending the whole body: nothing to invoke or answer.
            handler.close_connection = True
            return
        event = rest_proxy_event(
            method=handler.command,
            path=path,
            headers=list(handler.headers.items()),
            body=body,
            source_ip=handler.client_address[0],
        )
        status, headers, payload = self._mode._invoke_webhook(event, context)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        # Recorded before answering, so a client holding its answer finds the exchange.
        self._mode._record(
            Exchange(
                method=handler.command,
                path=urlsplit(path).path,
                status=status,
                answer=parsed if isinstance(parsed, dict) else None,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                credentials=_credential_kinds(handler),
            )
        )
        self._write(handler, status, headers, b"" if handler.command == "HEAD" else payload)

    @staticmethod
    def _write(
        handler: _FrontHandler, status: int, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        handler.send_response(status)
        skip = {"content-length", "connection", "transfer-encoding"}
        for name, value in headers:
            if name.lower() not in skip:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()


class LocalMode:
    """The whole forwarder on 127.0.0.1; ``start()``, then ``stop()`` (or use ``with``).

    ``echo`` receives every line local mode prints (the banner, one line per webhook request,
    per accepted Raindrop item and per retry-worker run). Thread-safe.
    """

    def __init__(self, options: LocalOptions | None = None, *, echo: Echo | None = None) -> None:
        self.options = options or LocalOptions()
        self._echo_target: Echo = echo or _print
        self._echo_lock = threading.Lock()
        self._invoke_lock = threading.Lock()
        self._items_lock = threading.Lock()
        self._stopping = threading.Event()
        self._env = _EnvironmentPatch()
        self._moto: MotoServer | None = None
        self._receiver: RaindropReceiver | None = None
        self._front: _FrontServer | None = None
        self._front_thread: threading.Thread | None = None
        self._poller: threading.Thread | None = None
        self._sqs: SQSClient | None = None
        self._resources: LocalResources | None = None
        self._items_file: Path | None = None
        self._endpoints: LocalEndpoints | None = None
        self._saved_log_level: int | None = None
        self._exchanges: deque[Exchange] = deque(maxlen=10_000)
        self._retry_runs: deque[RetryRun] = deque(maxlen=10_000)
        self._started = False
        self._stopped = False

    # Life cycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._started:
            raise RuntimeError("a LocalMode can be started only once")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        if options.raindrop_url and not options.raindrop_api_key:
            raise ValueError("forwarding to a Raindrop URL needs a Raindrop API key")
        data_dir = options.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        # The webhook port first: if it is taken, nothing else has started yet.
        self._front = _FrontServer((HOST, options.port), _WebhookFront(self))
        self._moto = MotoServer(options.moto_port).start()
        secret = {
            "raindrop_api_key": options.raindrop_api_key or f"rk_local_{secrets.token_hex(12)}",
            "webhook_token": options.webhook_token or f"whk_{secrets.token_hex(16)}",
            "segment_shared_secret": options.shared_secret or f"ss_{secrets.token_hex(16)}",
        }
        resources = provision(
            endpoint_url=self._moto.endpoint_url,
            region=options.region,
            secret=secret,
            secret_name=f"{options.resource_prefix}/forwarder",
            prefix=options.resource_prefix,
        )
        self._resources = resources
        items_file: Path | None = None
        if options.forwards_to_real_raindrop:
            raindrop_url = (options.raindrop_url or DEFAULT_RAINDROP_API_URL).rstrip("/")
        else:
            items_file = data_dir / ITEMS_FILE
            self._receiver = RaindropReceiver(
                host=HOST,
                port=options.receiver_port,
                api_key=secret["raindrop_api_key"],
                validator=check_raindrop_items,
                on_accept=self._on_accept,
            ).start()
            raindrop_url = self._receiver.url
        self._items_file = items_file
        self._configure_environment(resources, raindrop_url)
        self._warm_up()
        self._sqs = resources.sqs_client()
        queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=resources.retry_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

        port = int(self._front.server_address[1])
        self._endpoints = LocalEndpoints(
            webhook_url=f"http://{HOST}:{port}{WEBHOOK_PATH}",
            tracking_api_host=f"http://{HOST}:{port}",
            batch_url=f"http://{HOST}:{port}/v1/batch",
            webhook_token=secret["webhook_token"],
            shared_secret=secret["segment_shared_secret"],
            moto_endpoint=self._moto.endpoint_url,
            region=options.region,
            secret_id=resources.secret_id,
            retry_queue_url=resources.retry_queue_url,
            dlq_url=resources.dlq_url,
            raindrop_url=raindrop_url,
            local_receiver=self._receiver is not None,
            items_file=str(items_file) if items_file else None,
            state_file=str(data_dir / STATE_FILE),
            env_file=str(data_dir / ENV_FILE),
            pid=os.getpid(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
        self._front_thread = threading.Thread(
            target=self._front.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="local-webhook",
            daemon=True,
        )
        self._front_thread.start()
        self._poller = threading.Thread(
            target=self._poll_retry_queue,
            args=(queue_arn,),
            name="local-retry-worker",
            daemon=True,
        )
        self._poller.start()
        self._write_state_files()

    def stop(self) -> None:
        """Stop everything and undo the environment changes (idempotent, never raises)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        front, thread = self._front, self._front_thread
        if front is not None:
            # No new connections; requests in progress get their answers; then idle keep-alive
            # connections are closed (a request arriving on one meanwhile is answered 503).
            if thread is not None:
                front.shutdown()
                thread.join(5)
            front.server_close()
            front.wait_idle(WEBHOOK_TIMEOUT_SECONDS + 5)
            front.close_connections(5)
        # The retry worker's invocation in progress, if any, finishes before its queue goes.
        with self._invoke_lock:
            pass
        # moto's server takes up to half a second to stop and a long poll up to its wait: let
        # them overlap. A long poll still in flight then ends with an error the poller ignores.
        stoppers = [
            threading.Thread(target=component.stop, name=f"local-stop-{name}", daemon=True)
            for name, component in (("receiver", self._receiver), ("moto", self._moto))
            if component is not None
        ]
        for stopper in stoppers:
            stopper.start()
        if self._poller is not None:
            # Waiting in a long poll, the worker has nothing to finish: it sees the stop flag
            # when the poll ends, and invokes nothing any more.
            self._poller.join(0.2)
        for stopper in stoppers:
            stopper.join(10)
        # Waits for an invocation in progress; none starts afterwards (the stop flag is set).
        with self._invoke_lock:
            webhook.runtime.reset()
            retry.runtime.reset()
        if self._saved_log_level is not None:
            forwarder_logger.setLevel(self._saved_log_level)
        self._env.restore()
        self._remove_state_files()

    def __enter__(self) -> Self:
        return self if self._started else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # What it exposes ---------------------------------------------------------------------

    @property
    def endpoints(self) -> LocalEndpoints:
        if self._endpoints is None:
            raise RuntimeError("local mode is not running")
        return self._endpoints

    @property
    def receiver(self) -> RaindropReceiver | None:
        """The local Raindrop stand-in; None when forwarding to a real Raindrop."""
        return self._receiver

    @property
    def resources(self) -> LocalResources:
        if self._resources is None:
            raise RuntimeError("local mode is not running")
        return self._resources

    @property
    def exchanges(self) -> list[Exchange]:
        with self._echo_lock:
            return list(self._exchanges)

    @property
    def retry_runs(self) -> list[RetryRun]:
        with self._echo_lock:
            return list(self._retry_runs)

    def banner(self) -> str:
        ep = self.endpoints
        if ep.local_receiver:
            raindrop = f"local stand-in at {ep.raindrop_url} (items saved to {ep.items_file})"
        else:
            raindrop = f"{ep.raindrop_url} (the real thing, with your Raindrop API key)"
        exports = " \\\n    ".join(
            f"{name}={shlex.quote(value)}" for name, value in ep.replay_environment().items()
        )
        rows = [
            ("Webhook endpoint", ep.webhook_url),
            ("Segment libraries", f"host={ep.tracking_api_host}  write key=the webhook token"),
            ("Webhook token", ep.webhook_token),
            ("Shared secret", ep.shared_secret),
            ("Raindrop", raindrop),
            ("AWS (moto)", ep.moto_endpoint),
            ("Retry queue", ep.retry_queue_url),
            ("Dead-letter queue", ep.dlq_url),
            ("State file", ep.state_file),
        ]
        lines = [
            "",
            "segment-raindrop local mode is running on 127.0.0.1 (Ctrl-C to stop)",
            "",
            *(f"  {label:<18} {value}" for label, value in rows),
            "",
            "Send an event (paste into another terminal):",
            "",
            ep.curl(),
            "",
            "or a whole AI conversation:  segment-raindrop send-sample",
            "",
            f"To run `segment-raindrop replay` against this instance: source {ep.env_file}",
            "(or export these yourself):",
            "",
            f"  export {exports}",
            "",
            "Waiting for events...",
            "",
        ]
        return "\n".join(lines)

    # Invocations ------------------------------------------------------------------------

    def _invoke_webhook(
        self, event: dict[str, Any], context: LocalContext
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            with self._invoke_lock:
                if self._stopping.is_set():
                    return 503, [("Content-Type", "application/json")], _STOPPING_BODY
                answer = webhook.handler(event, context)
        except Exception as exc:
            # What API Gateway answers when the function fails.
            self.echo(f"webhook   the handler raised {type(exc).__name__}: {_clean(str(exc), 200)}")
            return (
                502,
                [("Content-Type", "application/json")],
                b'{"message":"Internal server error"}',
            )
        # As API Gateway does: a header in multiValueHeaders keeps every value.
        multi = {
            str(k): [str(v) for v in vs]
            for k, vs in (answer.get("multiValueHeaders") or {}).items()
        }
        headers = [
            (str(k), str(v)) for k, v in (answer.get("headers") or {}).items() if k not in multi
        ]
        headers += [(name, value) for name, values in multi.items() for value in values]
        body = answer.get("body") or ""
        payload = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
        return int(answer.get("statusCode", 502)), headers, payload

    def _poll_retry_queue(self, queue_arn: str) -> None:
        sqs, resources = self._sqs, self._resources
        assert sqs is not None
        assert resources is not None
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=resources.retry_queue_url,
                    MaxNumberOfMessages=RETRY_BATCH_SIZE,
                    WaitTimeSeconds=self.options.retry_poll_seconds,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except (BotoCoreError, ClientError) as exc:
                if self._stopping.is_set():
                    return
                self.echo(f"retry     could not poll the retry queue: {type(exc).__name__}")
                self._stopping.wait(1.0)
                continue
            if messages and not self._stopping.is_set():
                self._run_retry_worker(sqs, resources, queue_arn, messages)
            elif not messages and self.options.retry_poll_seconds == 0:
                self._stopping.wait(SHORT_POLL_PAUSE_SECONDS)

    def _run_retry_worker(
        self,
        sqs: SQSClient,
        resources: LocalResources,
        queue_arn: str,
        messages: list[MessageTypeDef],
    ) -> None:
        event = sqs_lambda_event(messages, queue_arn=queue_arn, region=resources.region)
        batch_ids = {message["MessageId"] for message in messages}
        context = LocalContext(
            function_name="segment-raindrop-retry", timeout_seconds=RETRY_TIMEOUT_SECONDS
        )
        try:
            with self._invoke_lock:
                if self._stopping.is_set():
                    return  # the messages come back after their visibility timeout
                response = retry.handler(event, context)
        except Exception as exc:
            # Lambda's event source: a failed invocation returns the whole batch to the queue,
            # visible again after the queue's visibility timeout.
            run = RetryRun(len(messages), len(messages), 0, f"{type(exc).__name__}: {exc}")
            self._record_retry(run)
            return
        failed = _failed_ids(response, batch_ids)
        done = [message for message in messages if message["MessageId"] not in failed]
        deleted = 0
        if done:
            try:
                result = sqs.delete_message_batch(
                    QueueUrl=resources.retry_queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(done)
                    ],
                )
                deleted = len(result.get("Successful", []))
            except (BotoCoreError, ClientError) as exc:
                self.echo(f"retry     could not delete settled messages: {type(exc).__name__}")
        self._record_retry(RetryRun(len(messages), len(failed), deleted))

    # Output -----------------------------------------------------------------------------

    def echo(self, line: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        with self._echo_lock:
            self._echo_target(f"{stamp}  {line}" if line else line)

    def _record(self, exchange: Exchange) -> None:
        with self._echo_lock:
            self._exchanges.append(exchange)
        self.echo(
            f"webhook   {exchange.method} {exchange.path} -> {exchange.status}  "
            f"{_describe_answer(exchange)}  ({exchange.duration_ms:.0f} ms)"
        )

    def _record_retry(self, run: RetryRun) -> None:
        with self._echo_lock:
            self._retry_runs.append(run)
        if run.error is not None:
            self.echo(
                f"retry     the worker failed ({_clean(run.error, 200)}); its {run.received} "
                "message(s) come back after the queue's visibility timeout"
            )
            return
        self.echo(
            f"retry     {run.received} message(s): {run.deleted} settled, "
            f"{run.failed} back on the queue for a later attempt"
        )

    def _on_accept(self, endpoint: str, items: list[dict[str, Any]]) -> None:
        if self._items_file is not None:
            at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            lines = "".join(
                json.dumps({"received_at": at, "endpoint": endpoint, "item": item}) + "\n"
                for item in items
            )
            with self._items_lock, self._items_file.open("a", encoding="utf-8") as out:
                out.write(lines)
        for item in items:
            self.echo(f"raindrop  {endpoint:<15} {describe_item(endpoint, item)}")

    # Set-up helpers -----------------------------------------------------------------------

    def _configure_environment(self, resources: LocalResources, raindrop_url: str) -> None:
        env = self._env
        for name in list(os.environ):
            if name in _SCRUBBED_VARIABLES or name.startswith(_SCRUBBED_PREFIXES):
                env.unset(name)
        for name, value in resources.environment().items():
            env.set(name, value)
        env.set("RAINDROP_API_URL", raindrop_url)
        env.set("RETRY_BASE_DELAY_SECONDS", str(self.options.retry_base_delay_seconds))
        env.set("AWS_EC2_METADATA_DISABLED", "true")
        if not self.options.verbose:
            # The CloudWatch metrics (EMF) would print a JSON document per invocation.
            env.set("POWERTOOLS_METRICS_DISABLED", "true")
        for name in ("NO_PROXY", "no_proxy"):
            hosts = [host for host in os.environ.get(name, "").split(",") if host]
            env.set(name, ",".join([*hosts, HOST, "localhost"]))
        self._saved_log_level = forwarder_logger.log_level
        forwarder_logger.setLevel("INFO" if self.options.verbose else "WARNING")

    def _warm_up(self) -> None:
        # Built now from the environment just set, so a bad setting fails at start-up and the
        # first request does not pay for the boto3 clients.
        with self._invoke_lock:
            webhook.runtime.reset()
            retry.runtime.reset()
            webhook.runtime.get().secrets.get()
            retry.runtime.get()

    def _write_state_files(self) -> None:
        ep = self.endpoints
        state = Path(ep.state_file)
        _write_private(state, json.dumps(asdict(ep), indent=2) + "\n")
        exports = "".join(
            f"export {name}={shlex.quote(value)}\n"
            for name, value in ep.replay_environment().items()
        )
        _write_private(
            Path(ep.env_file),
            "# segment-raindrop local mode: `source` this to point AWS tools and\n"
            "# `segment-raindrop replay` at the running instance.\n" + exports,
        )

    def _remove_state_files(self) -> None:
        if self._endpoints is None:
            return
        ep = self._endpoints
        state = read_state(Path(ep.state_file).parent)
        # Another local mode may have started since with the same data directory.
        ours = state is not None and (state.get("pid"), state.get("started_at")) == (
            ep.pid,
            ep.started_at,
        )
        if ours:
            for path in (ep.state_file, ep.env_file):
                with contextlib.suppress(OSError):
                    Path(path).unlink()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (it holds the local credentials)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    temporary.replace(path)


def _print(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def running(
    options: LocalOptions | None = None, *, echo: Echo | None = None
) -> Iterator[LocalMode]:
    """``with running(options) as mode:`` — local mode for the duration of the block."""
    mode = LocalMode(options, echo=echo).start()
    try:
        yield mode
    finally:
        mode.stop()
