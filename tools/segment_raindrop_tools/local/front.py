"""Local mode's API front: HTTP → API Gateway REST proxy event → the webhook handler → HTTP.

What API Gateway does around the function, and no more: the 10 MB payload limit and Lambda's
6 MiB invoke payload (413 before the function is involved); the two APIs on one port, the SDK
API under its stage (``/v1/...``: ``/v1/v1/batch`` for Segment's libraries, ``/v1/raindrop/v1/``
and ``/v1/traces`` for Raindrop's SDK, bodies base64-encoded, the stage stripped from the
function's path) and the webhook API at the root (``/segment``, bodies as text); the function's
clock starting when the request arrives, a 502 when the function fails, and its answer written
back as API Gateway writes it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from segment_raindrop.core.contract import (
    API_GATEWAY_MAX_BODY_BYTES,
    LAMBDA_MAX_INVOKE_BYTES,
    OTLP_TRACES_ROUTES,
    RAINDROP_SDK_PATH,
    SDK_API_STAGE,
    WEBHOOK_TIMEOUT_SECONDS,
)
from segment_raindrop.handlers import raindrop_sdk, webhook
from segment_raindrop_tools.local.apigw import (
    LocalContext,
    http_answer,
    rest_proxy_event,
    sdk_api_route,
)
from segment_raindrop_tools.local.http import (
    BadBodyError,
    BodyTooLargeError,
    DispatchHandler,
    TrackedHTTPServer,
    read_request_body,
    send_whole_response,
)
from segment_raindrop_tools.local.invocations import SerialInvocations, StoppedError

__all__ = ["Exchange", "WebhookFront"]

_JSON = [("Content-Type", "application/json")]
MIRROR_PATH_PREFIX = f"/{RAINDROP_SDK_PATH}/"
_STOPPING_BODY = b'{"message":"local mode is stopping"}'
_GATEWAY_ERROR_BODY = b'{"message":"Internal server error"}'


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


def _credential_kinds(handler: BaseHTTPRequestHandler) -> tuple[str, ...]:
    kinds: list[str] = []
    scheme = handler.headers.get("Authorization", "").strip().partition(" ")[0].lower()
    if scheme:
        kinds.append(scheme)
    if handler.headers.get("X-Signature"):
        kinds.append("signature")
    return tuple(kinds)


def _proxy_event(handler: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
    """The event the API serving this request's path hands the function: the SDK API's (its
    stage stripped from the path, the body base64-encoded) or the webhook API's (as text)."""
    sdk_path = sdk_api_route(handler.path)
    return rest_proxy_event(
        method=handler.command,
        path=handler.path if sdk_path is None else sdk_path,
        headers=list(handler.headers.items()),
        body=body,
        source_ip=handler.client_address[0],
        stage="local" if sdk_path is None else SDK_API_STAGE,
        binary=sdk_path is not None,
    )


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

    def __init__(self, address: tuple[str, int], front: WebhookFront) -> None:
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


class WebhookFront:
    """The webhook on ``host:port`` (bound at construction, so a busy port fails at once)."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        invocations: SerialInvocations,
        on_exchange: Callable[[Exchange], None],
        on_handler_error: Callable[[BaseException], None],
    ) -> None:
        self._invocations = invocations
        self._on_exchange = on_exchange
        self._on_handler_error = on_handler_error
        self._server = _FrontServer(address, self)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._server.start_serving(name="local-webhook", poll_interval=0.1)

    def stop(self) -> None:
        """No new connections; requests in progress get their answers; then idle keep-alive
        connections are closed (a request arriving on one meanwhile is answered 503)."""
        self._server.stop_accepting(5)
        self._server.wait_idle(WEBHOOK_TIMEOUT_SECONDS + 5)
        self._server.close_connections(5)

    def handle(self, handler: _FrontHandler) -> None:
        # The Lambda's clock starts when the request arrives, as API Gateway's would: time spent
        # waiting for the previous invocation counts against Segment's 10 s.
        context = LocalContext(
            function_name="segment-raindrop-webhook", timeout_seconds=WEBHOOK_TIMEOUT_SECONDS
        )
        started = time.monotonic()
        path = urlsplit(handler.path).path
        try:
            body = read_request_body(handler, API_GATEWAY_MAX_BODY_BYTES)
        except BadBodyError as problem:
            too_large = isinstance(problem, BodyTooLargeError)
            self._refuse(handler, path, 413 if too_large else 400, None if too_large else problem)
            return
        if body is None:
            # The client went away before sending the whole body: nothing to invoke or answer.
            handler.close_connection = True
            return
        event = _proxy_event(handler, body)
        if len(json.dumps(event, ensure_ascii=False).encode()) > LAMBDA_MAX_INVOKE_BYTES:
            # The event (the body base64-encoded or JSON-escaped, headers twice) is more than
            # Lambda takes: API Gateway refuses it without invoking the function, as local mode
            # does here (measured as docs/wire.md §5 says).
            self._refuse(handler, path, 413, None)
            return
        status, headers, payload = self._invoke(event, context)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        # Recorded before answering, so a client holding its answer finds the exchange.
        self._on_exchange(
            Exchange(
                method=handler.command,
                path=path,
                status=status,
                answer=parsed if isinstance(parsed, dict) else None,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                credentials=_credential_kinds(handler),
            )
        )
        send_whole_response(handler, status, headers, b"" if handler.command == "HEAD" else payload)

    def _refuse(
        self, handler: _FrontHandler, path: str, status: int, problem: Exception | None
    ) -> None:
        """What API Gateway answers before the function is involved (413: too long)."""
        handler.close_connection = True
        answer = {"message": "Request Too Long" if problem is None else str(problem)}
        self._on_exchange(Exchange(handler.command, path, status, answer, 0.0))
        send_whole_response(handler, status, _JSON, json.dumps(answer).encode())

    def _invoke(
        self, event: dict[str, Any], context: LocalContext
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        # The stack routes /raindrop/v1/{proxy+} and /traces to the mirror (Raindrop's SDK),
        # the rest to the webhook (Segment).
        path = str(event.get("path") or "")
        mirror = path.startswith(MIRROR_PATH_PREFIX) or path in OTLP_TRACES_ROUTES
        target = raindrop_sdk.handler if mirror else webhook.handler
        try:
            answer = self._invocations.run(target, event, context)
        except StoppedError:
            return 503, _JSON, _STOPPING_BODY
        except Exception as exc:
            # What API Gateway answers when the function fails.
            self._on_handler_error(exc)
            return 502, _JSON, _GATEWAY_ERROR_BODY
        return http_answer(answer)
