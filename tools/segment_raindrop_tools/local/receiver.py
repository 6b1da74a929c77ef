"""A local stand-in for Raindrop's HTTP API that records what it receives.

Integration tests, local mode and the benchmarks point the forwarder's Raindrop API URL at
:attr:`RaindropReceiver.url`. The receiver answers like Raindrop would (bearer key, JSON arrays,
size limit), records every request (:mod:`~segment_raindrop_tools.local.recording`), and can be
told to misbehave (:mod:`~segment_raindrop_tools.local.faults`) so retry, back-off and
dead-letter paths can be exercised against a real socket. How a request is answered is
:mod:`~segment_raindrop_tools.local.raindrop_api`; item shapes are checked by the ``validator``
given, usually :func:`~segment_raindrop_tools.local.raindrop_items.check_raindrop_items`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import urlsplit

from segment_raindrop.core.projects import PROJECT_HEADER
from segment_raindrop_tools.local.faults import Fault, FaultPlan
from segment_raindrop_tools.local.http import (
    BadBodyError,
    CallbackHandler,
    CallbackServer,
    read_request_body,
    send_whole_response,
)
from segment_raindrop_tools.local.lifecycle import Service
from segment_raindrop_tools.local.raindrop_api import (
    Answer,
    Validator,
    error_answer,
    evaluate,
    fault_answer,
    parse_items_quietly,
)
from segment_raindrop_tools.local.raindrop_items import ENDPOINTS, check_endpoint
from segment_raindrop_tools.local.recording import RecordedRequest, Recordings

# Whether Raindrop refuses one item (endpoint, item): see RaindropReceiver.refuse_items.
ItemRefusal = Callable[[str, dict[str, Any]], bool]


__all__ = ["RaindropReceiver"]

_ROUTES: dict[str, str] = {f"/v1/{name}": name for name in ENDPOINTS}

AcceptCallback = Callable[[str, list[dict[str, Any]]], None]


class RaindropReceiver(Service):
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
        self._validator = validator
        self._refusal: ItemRefusal | None = None
        self._evaluate = functools.partial(
            evaluate, api_key=api_key, max_body_bytes=max_body_bytes, validator=self._validate
        )
        self._latency = latency
        self._latency_lock = threading.Lock()
        self._on_accept = on_accept
        self._faults = FaultPlan()
        # Projects answered with a fault whatever the request (project_outage).
        self._project_outages: dict[str, Fault] = {}
        self._recordings = Recordings()
        self._stopping = threading.Event()
        self._server: CallbackServer | None = None
        self._stopped = False

    # Life cycle

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is not None or self._stopped:
            raise RuntimeError("a RaindropReceiver can be started only once")
        self._server = CallbackServer(
            (self._host, self._requested_port),
            self._handle,
            version="raindrop-receiver",
            thread_name="raindrop-receiver-conn",
        )
        # A short poll keeps stop() (and so every test teardown) fast.
        self._server.start_serving(name="raindrop-receiver", poll_interval=0.01)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, close every connection and join the threads (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._server is not None:
            self._server.stop_accepting(timeout)
            self._server.close_connections(timeout)
        self._recordings.close()

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
        """The base URL to configure as the forwarder's Raindrop API URL."""
        return f"{self.origin}/v1"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (not reset by :meth:`reset`)."""
        return 0 if self._server is None else self._server.connections_accepted

    # Behaviour

    def set_latency(self, seconds: float) -> None:
        """Delay every answer that is not a fault by ``seconds``."""
        with self._latency_lock:
            self._latency = seconds

    def inject(self, *faults: Fault, endpoint: str | None = None) -> None:
        """Queue faults: each matching request consumes the next one, then behaviour is normal."""
        check_endpoint(endpoint)
        self._faults.inject(faults, endpoint)

    def outage(self, fault: Fault | None = None, *, endpoint: str | None = None) -> None:
        """Fail every matching request with ``fault`` (default 503) until :meth:`heal`.

        An outage takes precedence over injected faults, which stay queued for afterwards.
        """
        check_endpoint(endpoint)
        self._faults.outage(fault if fault is not None else Fault(status=503), endpoint)

    def project_outage(self, project: str, fault: Fault | None = None) -> None:
        """Fail every request for Raindrop project ``project`` (its ``X-Raindrop-Project-Id``)
        with ``fault`` (default 503) until :meth:`heal`, while other projects are answered."""
        with self._latency_lock:
            self._project_outages[project] = fault if fault is not None else Fault(status=503)

    def refuse_items(self, refusal: ItemRefusal | None) -> None:
        """Refuse (400) any request holding an item for which ``refusal(endpoint, item)`` is
        true, as Raindrop refuses an item it finds invalid; None stops refusing."""
        self._refusal = refusal

    def _validate(self, endpoint: str, items: list[Any]) -> str | None:
        refusal = self._refusal
        if refusal is not None and any(
            isinstance(item, dict) and refusal(endpoint, item) for item in items
        ):
            return "item refused"
        return None if self._validator is None else self._validator(endpoint, items)

    def heal(self) -> None:
        self._faults.heal()
        with self._latency_lock:
            self._project_outages.clear()

    @property
    def pending_faults(self) -> int:
        return self._faults.pending

    def reset(self) -> None:
        """Forget the recordings, queued faults and any outage; latency stays as configured."""
        self._faults.clear()
        self._recordings.clear()

    # Recordings

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, in the order they were answered."""
        return self._recordings.requests

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        check_endpoint(endpoint)
        return self._recordings.requests_to(endpoint)

    def accepted(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Items from requests answered 200, in acceptance order."""
        check_endpoint(endpoint)
        return self._recordings.accepted(endpoint)

    @property
    def callback_errors(self) -> list[BaseException]:
        """Exceptions raised by ``on_accept``; they never change the answer sent."""
        return self._recordings.callback_errors

    def wait_for_items(self, n: int, endpoint: str | None = None, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` items were accepted (for ``endpoint`` if given)."""
        check_endpoint(endpoint)
        return self._recordings.wait_for_items(n, endpoint, timeout)

    def wait_for_requests(self, n: int, endpoint: str | None = None, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` requests (any outcome) were answered or dropped."""
        check_endpoint(endpoint)
        return self._recordings.wait_for_requests(n, endpoint, timeout)

    # Serving

    def _handle(self, handler: CallbackHandler) -> None:
        received_at = time.monotonic()
        path = urlsplit(handler.path).path
        endpoint = _ROUTES.get(path)
        try:
            # No limit here: max_body_bytes is answered 413 once the whole body is read, so the
            # connection stays usable.
            body = read_request_body(handler, None)
        except BadBodyError as exc:
            handler.close_connection = True
            answer = error_answer(400, str(exc))
            self._finish(
                handler, received_at, path=path, endpoint=endpoint, body=b"", answer=answer
            )
            return
        if body is None:
            # The client went away before sending the whole body: nothing to answer.
            handler.close_connection = True
            return
        fault = None if endpoint is None else self._fault_for(endpoint, handler.headers)
        if fault is not None:
            self._pause(fault.delay)
            answer, items = fault_answer(fault), parse_items_quietly(body, endpoint)
        else:
            with self._latency_lock:
                latency = self._latency
            self._pause(latency)
            answer, items = self._evaluate(handler.command, endpoint, handler.headers, body)
        self._finish(
            handler,
            received_at,
            path=path,
            endpoint=endpoint,
            body=body,
            items=items,
            answer=answer,
        )

    def _fault_for(self, endpoint: str, headers: Any) -> Fault | None:
        with self._latency_lock:
            down = self._project_outages.get(headers.get(PROJECT_HEADER) or "")
        return down if down is not None else self._faults.take(endpoint)

    def _pause(self, seconds: float) -> None:
        # An Event wait instead of sleep so stop() is not held up by a long simulated delay.
        if seconds > 0:
            self._stopping.wait(seconds)

    def _finish(
        self,
        handler: CallbackHandler,
        received_at: float,
        *,
        path: str,
        endpoint: str | None,
        body: bytes,
        answer: Answer,
        items: list[Any] | None = None,
    ) -> None:
        accepted = answer.accepted_items
        record = RecordedRequest(
            method=handler.command,
            path=path,
            endpoint=endpoint,
            headers=handler.headers,
            body=body,
            items=items,
            status=answer.status,
            accepted=accepted is not None,
            fault=answer.fault,
            received_at=received_at,
            connection=handler.connection_id,
        )
        # Recorded before answering, so a client that has its 200 always finds its items here.
        self._recordings.add(record, accepted)
        if accepted is not None and endpoint is not None and self._on_accept:
            try:
                self._on_accept(endpoint, accepted)
            except Exception as exc:
                # The callback's bug must not change what the forwarder sees.
                self._recordings.add_callback_error(exc)
        if answer.status is None:
            handler.close_connection = True  # a dropped connection: no answer at all
            return
        send_whole_response(
            handler,
            answer.status,
            [("Content-Type", "application/json"), *answer.headers],
            answer.payload,
            with_body=handler.command != "HEAD",
        )
