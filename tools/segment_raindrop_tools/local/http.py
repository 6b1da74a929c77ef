"""HTTP-server plumbing shared by the Raindrop receiver and local mode's webhook front.

Both serve keep-alive HTTP/1.1 on 127.0.0.1, one thread per connection, and must stop at once
even while clients keep idle connections open; both read Content-Length and chunked bodies.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

__all__ = [
    "BadBodyError",
    "BodyTooLargeError",
    "CallbackHandler",
    "CallbackServer",
    "DispatchHandler",
    "PromptDispatchHandler",
    "TrackedHTTPServer",
    "read_request_body",
    "send_whole_response",
]

# Framing is ours to write: a handler's answer never sets these itself.
_FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})


class DispatchHandler(BaseHTTPRequestHandler):
    """Keep-alive (HTTP/1.1) handler that sends every method to :meth:`dispatch`, unlogged."""

    protocol_version = "HTTP/1.1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: each server reports requests its own way, and stderr noise slows them."""

    def dispatch(self) -> None:
        raise NotImplementedError

    def _dispatch(self) -> None:
        self.dispatch()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class PromptDispatchHandler(DispatchHandler):
    """A :class:`DispatchHandler` that answers without Nagle / delayed-ACK stalls and knows the
    number of its connection (``connection_id``, from 1; see :class:`TrackedHTTPServer`)."""

    # A buffered writer lets the head and body leave in one send; together with TCP_NODELAY this
    # avoids the Nagle / delayed-ACK stall (tens of ms per request) on keep-alive connections.
    wbufsize: ClassVar[int] = 64 * 1024
    disable_nagle_algorithm: ClassVar[bool] = True
    server: TrackedHTTPServer
    connection_id: int

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.connection_id(self.request)

    def handle_expect_100(self) -> bool:
        # The buffered writer would otherwise hold "100 Continue" back and stall the client.
        answer = super().handle_expect_100()
        self.wfile.flush()
        return answer


class TrackedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that can close its live connections when it stops.

    ``shutdown()`` only stops accepting: handler threads parked on idle keep-alive sockets would
    run on until the client hangs up (daemon threads merely do not hold up interpreter exit).
    :meth:`close_connections` shuts those sockets down and joins the threads. Connections are
    numbered from 1 in the order they were accepted.
    """

    daemon_threads = True
    # The default backlog of 5 makes the kernel drop SYNs when many clients connect at once,
    # and each dropped SYN costs the client a one-second retransmit.
    request_queue_size = 128
    # Connection threads are named f"{thread_name}-{number}".
    thread_name: str = "http-conn"

    def __init__(
        self, address: tuple[str, int], handler_class: type[BaseHTTPRequestHandler]
    ) -> None:
        self._connections_lock = threading.Lock()
        self._connections: dict[socket.socket, int] = {}
        self._connection_threads: set[threading.Thread] = set()
        self.connections_accepted = 0
        self._serving: threading.Thread | None = None
        super().__init__(address, handler_class)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Replaces ThreadingMixIn's version to keep track of live connections.
        assert isinstance(request, socket.socket)
        with self._connections_lock:
            self.connections_accepted += 1
            self._connections[request] = self.connections_accepted
            thread = threading.Thread(
                target=self._serve_connection,
                args=(request, client_address),
                name=f"{self.thread_name}-{self.connections_accepted}",
                daemon=True,
            )
            self._connection_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(request, None)
                self._connection_threads.discard(threading.current_thread())

    def start_serving(self, *, name: str, poll_interval: float) -> None:
        """Serve from a daemon thread named ``name``; ``poll_interval`` bounds how long
        :meth:`stop_accepting` waits for the accept loop."""
        self._serving = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=name,
            daemon=True,
        )
        self._serving.start()

    def stop_accepting(self, timeout: float) -> None:
        """End the accept loop and close the listening socket; live connections stay open
        (see :meth:`close_connections`)."""
        if self._serving is not None:
            self.shutdown()
            self._serving.join(timeout)
        self.server_close()

    def connection_id(self, request: socket.socket) -> int:
        """The number of the live connection ``request`` (0 if it is not one)."""
        with self._connections_lock:
            return self._connections.get(request, 0)

    def close_connections(self, timeout: float) -> None:
        """Shut every live connection down and join their threads, for ``timeout`` at most."""
        with self._connections_lock:
            sockets = list(self._connections)
            threads = list(self._connection_threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Clients hanging up mid-answer (timeouts, dropped connections) are expected.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class CallbackHandler(PromptDispatchHandler):
    """Hands every request to its :class:`CallbackServer`'s ``respond`` function."""

    server: CallbackServer

    def version_string(self) -> str:
        return f"{self.server.version} {self.sys_version}"

    def dispatch(self) -> None:
        self.server.respond(self)


class CallbackServer(TrackedHTTPServer):
    """A :class:`TrackedHTTPServer` whose requests all go to one function: the local
    stand-ins' (Raindrop's API, Segment's Tracking API) way of serving."""

    def __init__(
        self,
        address: tuple[str, int],
        respond: Callable[[CallbackHandler], None],
        *,
        version: str,
        thread_name: str,
    ) -> None:
        self.respond = respond
        self.version = version
        self.thread_name = thread_name
        super().__init__(address, CallbackHandler)


class BadBodyError(Exception):
    """The request body cannot be read; answer an error and close, since framing is lost."""


class BodyTooLargeError(BadBodyError):
    """The body is longer than the limit; what is over it was not read."""


def read_request_body(handler: BaseHTTPRequestHandler, limit: int | None) -> bytes | None:
    """The request body, or None if the client disconnected part-way.

    Reads a chunked body (``Transfer-Encoding: chunked``) or ``Content-Length`` bytes; no
    Content-Length means an empty body. Raises :class:`BodyTooLargeError` as soon as the declared
    length, or the chunks so far, exceed ``limit`` (None: no limit), and :class:`BadBodyError`
    for an invalid Content-Length or chunk size.
    """
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(handler, limit)
    length_header = handler.headers.get("Content-Length")
    if length_header is None:
        return b""
    try:
        length = int(length_header)
    except ValueError:
        raise BadBodyError("invalid Content-Length") from None
    if length < 0:
        raise BadBodyError("invalid Content-Length")
    _check_limit(length, limit)
    body = handler.rfile.read(length)
    return body if len(body) == length else None


def _read_chunked(handler: BaseHTTPRequestHandler, limit: int | None) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = handler.rfile.readline(1024)
        if not size_line:
            return None
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadBodyError("invalid chunk size") from None
        if size < 0:  # int() takes a sign; a negative read would have no end and no limit
            raise BadBodyError("invalid chunk size")
        if size == 0:
            # Trailers, if any, end with an empty line.
            while True:
                line = handler.rfile.readline(8192)
                if not line:
                    return None
                if line in (b"\r\n", b"\n"):
                    return b"".join(chunks)
        total += size
        _check_limit(total, limit)
        chunk = handler.rfile.read(size)
        if len(chunk) != size or not handler.rfile.readline(8):
            return None
        chunks.append(chunk)


def _check_limit(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise BodyTooLargeError(f"body exceeds {limit} bytes")


def send_whole_response(
    handler: BaseHTTPRequestHandler,
    status: int,
    headers: Iterable[tuple[str, str]],
    payload: bytes,
    *,
    with_body: bool = True,
) -> None:
    """Answer with ``payload`` and its Content-Length; ``Connection: close`` when closing.

    ``with_body=False`` (a HEAD request) sends the headers only, Content-Length included.
    """
    handler.send_response(status)
    for name, value in headers:
        if name.lower() not in _FRAMING_HEADERS:
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()
    if with_body:
        handler.wfile.write(payload)
    handler.wfile.flush()
