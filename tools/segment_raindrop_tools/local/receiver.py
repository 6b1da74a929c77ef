"""A local stand-in for Raindrop's HTTP API that records what it receives.

Integration tests, local mode and the benchmarks point the forwarder's ``RAINDROP_API_URL`` at
:attr:`RaindropReceiver.url`. The receiver answers like Raindrop would (bearer key, JSON arrays,
size limit), records every request, and can be told to misbehave (:class:`Fault`) so retry,
back-off and dead-letter paths can be exercised against a real socket.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from segment_raindrop_tools.local.http import (
    BadBodyError,
    DispatchHandler,
    TrackedHTTPServer,
    read_request_body,
)

__all__ = [
    "ENDPOINTS",
    "Fault",
    "Headers",
    "RaindropReceiver",
    "RecordedRequest",
    "check_raindrop_items",
]

ENDPOINTS: tuple[str, ...] = ("events/track", "signals/track", "users/identify")
"""The endpoint names, relative to the ``/v1`` base URL."""

_ROUTES: dict[str, str] = {f"/v1/{name}": name for name in ENDPOINTS}

Validator = Callable[[str, list[Any]], str | None]
AcceptCallback = Callable[[str, list[dict[str, Any]]], None]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the API, for :meth:`RaindropReceiver.inject` or ``outage``.

    ``delay`` elapses before the answer (or the drop), so a delay longer than the client's read
    timeout simulates a hung server. ``drop`` closes the connection without answering, which a
    client sees as a protocol error rather than an HTTP status.
    """

    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    body: str | None = None


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive lookup; repeated headers keep every value."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        self._names: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._values.setdefault(key, []).append(value)
            self._names.setdefault(key, name)

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), []))

    def __repr__(self) -> str:
        return f"Headers({[(self._names[k], v) for k, vs in self._values.items() for v in vs]!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the receiver saw it.

    ``items`` is the parsed JSON array whenever the body is one, whatever the answer (a 401 or
    a fault still shows what was sent), otherwise None. ``status`` is None when the connection
    was dropped. ``received_at`` is ``time.monotonic()`` when the request head arrived, so
    intervals between attempts (retry back-off) can be measured against the client's own
    monotonic clock. ``connection`` numbers the TCP connection the request came on, from 1,
    which shows whether keep-alive was used.
    """

    method: str
    path: str
    endpoint: str | None
    headers: Headers
    body: bytes
    items: list[Any] | None
    status: int | None
    accepted: bool
    fault: Fault | None
    received_at: float
    connection: int


class _Refused(Exception):
    """The request is answered with an error status instead of being accepted."""

    def __init__(self, status: int, message: str, *headers: tuple[str, str]) -> None:
        super().__init__(message)
        self.answer = _error(status, message, *headers)


def _refuse_if(condition: bool, status: int, message: str, *headers: tuple[str, str]) -> None:
    if condition:
        raise _Refused(status, message, *headers)


def _parse_items(body: bytes) -> list[Any]:
    try:
        parsed = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _Refused(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(parsed, list):
        raise _Refused(400, "body must be a JSON array")
    return parsed


@dataclass(frozen=True)
class _Answer:
    status: int | None
    payload: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    accepted_items: list[dict[str, Any]] | None = None
    fault: Fault | None = None


def _error(status: int, message: str, *headers: tuple[str, str]) -> _Answer:
    return _Answer(status, json.dumps({"error": message}).encode(), headers)


def _reject_constant(name: str) -> Any:
    # Python's json emits NaN/Infinity by default, but they are not JSON and a real API rejects
    # them: refusing them here catches a forwarder that serialises floats carelessly.
    raise ValueError(f"{name} is not valid JSON")


class _Handler(DispatchHandler):
    server_version = "raindrop-receiver"
    # A buffered writer lets the head and body leave in one send; together with TCP_NODELAY this
    # avoids the Nagle / delayed-ACK stall (tens of ms per request) on keep-alive connections.
    wbufsize: ClassVar[int] = 64 * 1024
    disable_nagle_algorithm: ClassVar[bool] = True
    server: _Server
    connection_id: int

    def setup(self) -> None:
        super().setup()
        self.connection_id = self.server.connection_id(self.request)

    def handle_expect_100(self) -> bool:
        # The buffered writer would otherwise hold "100 Continue" back and stall the client.
        answer = super().handle_expect_100()
        self.wfile.flush()
        return answer

    def dispatch(self) -> None:
        self.server.receiver._handle(self)


class _Server(TrackedHTTPServer):
    thread_name = "raindrop-receiver-conn"

    def __init__(self, address: tuple[str, int], receiver: RaindropReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class RaindropReceiver:
    """A real HTTP server on 127.0.0.1 that behaves like Raindrop's ``/v1`` API.

    Thread-safe: requests are served concurrently (one thread per connection, keep-alive), and
    every public method may be called from any thread while traffic flows.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        latency: float = 0.0,
        max_body_bytes: int | None = None,
        validator: Validator | None = None,
        on_accept: AcceptCallback | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._api_key = api_key
        self._latency = latency
        self._max_body_bytes = max_body_bytes
        self._validator = validator
        self._on_accept = on_accept
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._accepted: list[tuple[str, dict[str, Any]]] = []
        # Running counts (key None: all endpoints) keep the waits O(1) per wake-up, however
        # many items a benchmark has pushed through.
        self._accepted_counts: Counter[str | None] = Counter()
        self._request_counts: Counter[str | None] = Counter()
        self._faults: deque[tuple[str | None, Fault]] = deque()
        self._outage: tuple[str | None, Fault] | None = None
        self._callback_errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # Life cycle

    def start(self) -> Self:
        if self._server is not None or self._stopped:
            raise RuntimeError("a RaindropReceiver can be started only once")
        self._server = _Server((self._host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # A short poll keeps stop() (and so every test teardown) fast.
            kwargs={"poll_interval": 0.01},
            name="raindrop-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, close every connection and join the threads (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join(timeout)
        server.close_connections(timeout)
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> Self:
        # Also accepts an already started receiver: ``with RaindropReceiver().start() as r``.
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``, without the API's ``/v1`` prefix."""
        return f"http://{self._host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL to use as ``RAINDROP_API_URL``."""
        return f"{self.origin}/v1"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (not reset by :meth:`reset`)."""
        return 0 if self._server is None else self._server.connections_accepted

    # Behaviour

    def set_latency(self, seconds: float) -> None:
        """Delay every answer that is not a fault by ``seconds``."""
        with self._lock:
            self._latency = seconds

    def inject(self, *faults: Fault, endpoint: str | None = None) -> None:
        """Queue faults: each matching request consumes the next one, then behaviour is normal."""
        _check_endpoint(endpoint)
        with self._lock:
            self._faults.extend((endpoint, fault) for fault in faults)

    def outage(self, fault: Fault | None = None, *, endpoint: str | None = None) -> None:
        """Fail every matching request with ``fault`` (default 503) until :meth:`heal`.

        An outage takes precedence over injected faults, which stay queued for afterwards.
        """
        _check_endpoint(endpoint)
        with self._lock:
            self._outage = (endpoint, fault if fault is not None else Fault(status=503))

    def heal(self) -> None:
        with self._lock:
            self._outage = None

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def reset(self) -> None:
        """Forget the recordings, queued faults and any outage; latency stays as configured."""
        with self._lock:
            self._requests.clear()
            self._accepted.clear()
            self._accepted_counts.clear()
            self._request_counts.clear()
            self._faults.clear()
            self._outage = None
            self._callback_errors.clear()

    # Recordings

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, in the order they were answered."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        _check_endpoint(endpoint)
        with self._lock:
            return [r for r in self._requests if r.endpoint == endpoint]

    def accepted(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Items from requests answered 200, in acceptance order."""
        _check_endpoint(endpoint)
        with self._lock:
            return [item for name, item in self._accepted if endpoint in (None, name)]

    @property
    def callback_errors(self) -> list[BaseException]:
        """Exceptions raised by ``on_accept``; they never change the answer sent."""
        with self._lock:
            return list(self._callback_errors)

    def wait_for_items(self, n: int, endpoint: str | None = None, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` items were accepted (for ``endpoint`` if given)."""
        _check_endpoint(endpoint)
        return self._wait_for(self._accepted_counts, endpoint, n, timeout)

    def wait_for_requests(self, n: int, endpoint: str | None = None, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` requests (any outcome) were answered or dropped."""
        _check_endpoint(endpoint)
        return self._wait_for(self._request_counts, endpoint, n, timeout)

    def _wait_for(
        self, counts: Counter[str | None], endpoint: str | None, n: int, timeout: float
    ) -> bool:
        with self._changed:
            self._changed.wait_for(
                lambda: counts[endpoint] >= n or self._stopping.is_set(), timeout
            )
            return counts[endpoint] >= n

    # Serving

    def _handle(self, handler: _Handler) -> None:
        received_at = time.monotonic()
        path = urlsplit(handler.path).path
        endpoint = _ROUTES.get(path)
        headers = Headers(handler.headers.items())
        try:
            # No limit here: max_body_bytes is answered 413 once the whole body is read, so the
            # connection stays usable.
            body = read_request_body(handler, None)
        except BadBodyError as exc:
            handler.close_connection = True
            answer = _error(400, str(exc))
            self._finish(
                handler,
                received_at=received_at,
                path=path,
                endpoint=endpoint,
                headers=headers,
                body=b"",
                items=None,
                answer=answer,
            )
            return
        if body is None:
            # The client went away before sending the whole body: nothing to answer.
            handler.close_connection = True
            return

        fault = None if endpoint is None else self._take_fault(endpoint)
        if fault is not None:
            self._pause(fault.delay)
            if fault.drop:
                handler.close_connection = True
                answer = _Answer(None, fault=fault)
            else:
                answer = _fault_answer(fault)
            items = _parse_items_quietly(body)
        else:
            self._pause(self._current_latency())
            answer, items = self._evaluate(handler.command, endpoint, headers, body)
        self._finish(
            handler,
            received_at=received_at,
            path=path,
            endpoint=endpoint,
            headers=headers,
            body=body,
            items=items,
            answer=answer,
        )

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            if self._outage is not None and self._outage[0] in (None, endpoint):
                return self._outage[1]
            for index, (wanted, fault) in enumerate(self._faults):
                if wanted in (None, endpoint):
                    del self._faults[index]
                    return fault
        return None

    def _current_latency(self) -> float:
        with self._lock:
            return self._latency

    def _pause(self, seconds: float) -> None:
        # An Event wait instead of sleep so stop() is not held up by a long simulated delay.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _evaluate(
        self, method: str, endpoint: str | None, headers: Headers, body: bytes
    ) -> tuple[_Answer, list[Any] | None]:
        if endpoint is None:
            return _error(404, "not found"), _parse_items_quietly(body)
        try:
            _refuse_if(method != "POST", 405, "method not allowed", ("Allow", "POST"))
            _refuse_if(
                self._api_key is not None
                and not _bearer_matches(headers.get("Authorization"), self._api_key),
                401,
                "invalid or missing API key",
                ("WWW-Authenticate", "Bearer"),
            )
            _refuse_if(
                self._max_body_bytes is not None and len(body) > self._max_body_bytes,
                413,
                f"body exceeds {self._max_body_bytes} bytes",
            )
            content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
            _refuse_if(content_type != "application/json", 415, "Content-Type must be JSON")
            encoding = headers.get("Content-Encoding", "identity").strip().lower()
            _refuse_if(encoding != "identity", 415, f"unsupported Content-Encoding {encoding!r}")
            items = _parse_items(body)
        except _Refused as refusal:
            return refusal.answer, _parse_items_quietly(body)
        try:
            self._validate(endpoint, items)
        except _Refused as refusal:
            return refusal.answer, items
        return _Answer(200, b'{"ok": true}', accepted_items=items), items

    def _validate(self, endpoint: str, items: list[Any]) -> None:
        _refuse_if(not items, 400, "body must not be an empty array")
        for index, item in enumerate(items):
            _refuse_if(not isinstance(item, dict), 400, f"item {index} is not a JSON object")
        if self._validator is None:
            return
        try:
            problem = self._validator(endpoint, items)
        except Exception as exc:
            # A broken validator is a test bug: report it to the client rather than hang up.
            raise _Refused(500, f"validator raised {exc!r}") from exc
        if problem is not None:
            raise _Refused(400, problem)

    def _finish(
        self,
        handler: _Handler,
        *,
        received_at: float,
        path: str,
        endpoint: str | None,
        headers: Headers,
        body: bytes,
        items: list[Any] | None,
        answer: _Answer,
    ) -> None:
        accepted = answer.accepted_items is not None
        record = RecordedRequest(
            method=handler.command,
            path=path,
            endpoint=endpoint,
            headers=headers,
            body=body,
            items=items,
            status=answer.status,
            accepted=accepted,
            fault=answer.fault,
            received_at=received_at,
            connection=handler.connection_id,
        )
        # Recorded before answering, so a client that has its 200 always finds its items here.
        with self._changed:
            self._requests.append(record)
            self._request_counts[None] += 1
            if endpoint is not None:
                self._request_counts[endpoint] += 1
            if answer.accepted_items is not None and endpoint is not None:
                self._accepted.extend((endpoint, item) for item in answer.accepted_items)
                self._accepted_counts[None] += len(answer.accepted_items)
                self._accepted_counts[endpoint] += len(answer.accepted_items)
            self._changed.notify_all()
        if answer.accepted_items is not None and endpoint is not None and self._on_accept:
            try:
                self._on_accept(endpoint, answer.accepted_items)
            except Exception as exc:
                # The callback's bug must not change what the forwarder sees.
                with self._lock:
                    self._callback_errors.append(exc)
        if answer.status is None:
            return
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(answer.payload)))
        for name, value in answer.headers:
            handler.send_header(name, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer.payload)


def _check_endpoint(endpoint: str | None) -> None:
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")


def _bearer_matches(authorization: str | None, api_key: str) -> bool:
    if authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), api_key)


def _fault_answer(fault: Fault) -> _Answer:
    if fault.body is not None:
        payload = fault.body.encode()
    else:
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "injected fault"
        payload = json.dumps({"error": phrase}).encode()
    headers = () if fault.retry_after is None else (("Retry-After", fault.retry_after),)
    return _Answer(fault.status, payload, headers, fault=fault)


def _parse_items_quietly(body: bytes) -> list[Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) else None


# What Raindrop accepts (docs: WIRE.md §2), checked independently of the forwarder's own models
# so a mistake in those models cannot hide itself in tests. Presence rules are lenient where the
# public SDK is silent; types and enumerations are strict.

_ATTACHMENT_TYPES = frozenset({"code", "text", "image", "iframe"})
_ATTACHMENT_ROLES = frozenset({"input", "output", "context"})
_SIGNAL_TYPES = frozenset({"default", "feedback", "edit"})
_SENTIMENTS = frozenset({"POSITIVE", "NEGATIVE"})


class _InvalidItemError(Exception):
    pass


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise _InvalidItemError(problem)


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_timestamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_common(item: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    for key in required:
        _require(_non_empty(item.get(key)), f"{key} must be a non-empty string")
    _require(_is_timestamp(item.get("timestamp")), "timestamp must be an ISO 8601 string")
    properties: dict[str, Any] = item.get("properties", {})
    _require(isinstance(properties, dict), "properties must be an object")
    return properties


def _check_event(item: dict[str, Any]) -> None:
    _check_common(item, ("event_id", "user_id", "event"))
    if "ai_data" in item:
        ai_data = item["ai_data"]
        _require(isinstance(ai_data, dict), "ai_data must be an object")
        for key in ("model", "input", "output", "convo_id"):
            _require(
                key not in ai_data or isinstance(ai_data[key], str),
                f"ai_data.{key} must be a string",
            )
        _require(
            _non_empty(ai_data.get("input")) or _non_empty(ai_data.get("output")),
            "ai_data needs a non-empty input or output",
        )
    attachments = item.get("attachments", [])
    _require(isinstance(attachments, list), "attachments must be an array")
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        _require(isinstance(attachment, dict), f"{where} must be an object")
        _require(
            attachment.get("type") in _ATTACHMENT_TYPES,
            f"{where}.type must be one of {sorted(_ATTACHMENT_TYPES)}",
        )
        _require(isinstance(attachment.get("value"), str), f"{where}.value must be a string")
        _require(
            attachment.get("role", "input") in _ATTACHMENT_ROLES,
            f"{where}.role must be one of {sorted(_ATTACHMENT_ROLES)}",
        )


def _check_signal(item: dict[str, Any]) -> None:
    properties = _check_common(item, ("event_id", "signal_name"))
    signal_type = item.get("signal_type", "default")
    _require(signal_type in _SIGNAL_TYPES, f"signal_type must be one of {sorted(_SIGNAL_TYPES)}")
    _require(
        signal_type != "feedback" or _non_empty(properties.get("comment")),
        "a feedback signal needs a non-empty properties.comment",
    )
    _require(
        signal_type != "edit" or _non_empty(properties.get("after")),
        "an edit signal needs a non-empty properties.after",
    )
    _require(
        item.get("sentiment", "POSITIVE") in _SENTIMENTS,
        f"sentiment must be one of {sorted(_SENTIMENTS)}",
    )


def _check_identify(item: dict[str, Any]) -> None:
    _require(_non_empty(item.get("user_id")), "user_id must be a non-empty string")
    traits = item.get("traits", {})
    _require(isinstance(traits, dict), "traits must be an object")
    for key, value in traits.items():
        _require(
            isinstance(value, str | int | float | bool),
            f"traits.{key} must be a string, number or boolean",
        )


_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "events/track": _check_event,
    "signals/track": _check_signal,
    "users/identify": _check_identify,
}


def check_raindrop_items(endpoint: str, items: list[Any]) -> str | None:
    """A ``validator`` enforcing the item shapes of WIRE.md §2; returns the first problem."""
    check = _CHECKS[endpoint]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"item {index} is not a JSON object"
        try:
            check(item)
        except _InvalidItemError as problem:
            return f"item {index}: {problem}"
    return None
