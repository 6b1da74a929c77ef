"""An HTTP proxy in front of the SQS emulator that refuses a share of the forwarder's calls.

The forwarder's SQS client points here instead of at moto; every request is passed on to moto
unchanged, except that while :attr:`SqsChaos.refusal_rate` is above zero that share of them is
answered with SQS's ``InternalError`` (HTTP 500) or has its connection dropped without an
answer, as a real SQS outage looks to botocore. Only 127.0.0.1 is ever listened on or called.
"""

from __future__ import annotations

import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_INTERNAL_ERROR = b'{"__type":"com.amazonaws.sqs#InternalError","message":"injected by the soak"}'


class SqsChaos:
    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.refusal_rate = 0.0
        self.refused = 0
        self.passed = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0, trust_env=False)
        chaos = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                chaos.handle(self)

            def do_GET(self) -> None:
                chaos.handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> SqsChaos:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def _verdict(self) -> str | None:
        with self._lock:
            if self.refusal_rate <= 0 or self._random.random() >= self.refusal_rate:
                self.passed += 1
                return None
            self.refused += 1
            return self._random.choice(("error", "drop"))

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        verdict = self._verdict()
        if verdict == "drop":
            request.close_connection = True
            return
        if verdict == "error":
            self._answer(
                request,
                500,
                _INTERNAL_ERROR,
                {
                    "Content-Type": "application/x-amz-json-1.0",
                    "x-amzn-query-error": "InternalError;Receiver",
                },
            )
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        response = self._client.request(
            request.command, self.upstream + request.path, content=body, headers=headers
        )
        passed = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        self._answer(request, response.status_code, response.content, passed)

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
