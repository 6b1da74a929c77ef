"""A local stand-in for Segment's HTTP Tracking API (``POST /v1/batch``) that records batches.

The mirror's tests and local mode point ``SEGMENT_API_URL`` at :attr:`SegmentTrackingApi.url`.
It answers as Segment does (docs/wire.md, "Segment's HTTP Tracking API"): Basic auth with the
write key as user name, ``{"batch": [...]}`` bodies, 32 KB per event and 500 KB per request
(400 beyond), 200 ``{"success": true}`` when accepted. It de-duplicates nothing: a test sees
every event sent, so a duplicate shows (Segment drops resends by ``messageId``; see
:meth:`SegmentTrackingApi.unique_events`). Faults (:mod:`~segment_raindrop_tools.local.faults`)
make it fail like Segment can.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from segment_raindrop.core.contract import SEGMENT_MAX_BATCH_BYTES, SEGMENT_MAX_EVENT_BYTES
from segment_raindrop_tools.local.faults import Fault, FaultPlan
from segment_raindrop_tools.local.http import (
    BadBodyError,
    CallbackHandler,
    CallbackServer,
    read_request_body,
    send_whole_response,
)
from segment_raindrop_tools.local.lifecycle import Service

__all__ = ["SegmentBatch", "SegmentTrackingApi"]

_BATCH_PATH = "/v1/batch"
_ENDPOINT = "batch"


@dataclass(frozen=True)
class SegmentBatch:
    """One request the stand-in answered."""

    status: int
    events: list[dict[str, Any]]
    write_key: str | None

    @property
    def accepted(self) -> bool:
        return self.status == 200


class SegmentTrackingApi(Service):
    """A real HTTP server on 127.0.0.1 taking Segment batches; thread-safe."""

    def __init__(
        self,
        *,
        write_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_accept: Callable[[list[dict[str, Any]]], None] | None = None,
    ):
        self._write_key = write_key
        # Told the events of each accepted batch (local mode prints and saves them).
        self._on_accept = on_accept
        self._host = host
        self._port = port
        self._faults = FaultPlan()
        self._batches: list[SegmentBatch] = []
        self._changed = threading.Condition()
        self._server: CallbackServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        self._server = CallbackServer(
            (self._host, self._port),
            self.handle,
            version="segment-tracking-api",
            thread_name="segment-tracking-conn",
        )
        self._server.start_serving(name="segment-tracking-api", poll_interval=0.01)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        if self._server is not None:
            self._server.stop_accepting(timeout)
            self._server.close_connections(timeout)
            self._server = None

    @property
    def url(self) -> str:
        """The base URL to configure as ``SEGMENT_API_URL``."""
        if self._server is None:
            raise RuntimeError("the Segment stand-in is not started")
        return f"http://{self._host}:{self._server.server_address[1]}/v1"

    # Behaviour

    def inject(self, *faults: Fault) -> None:
        self._faults.inject(faults, _ENDPOINT)

    def outage(self, fault: Fault | None = None) -> None:
        self._faults.outage(fault or Fault(status=503), _ENDPOINT)

    def heal(self) -> None:
        self._faults.heal()

    # Recordings

    @property
    def batches(self) -> list[SegmentBatch]:
        with self._changed:
            return list(self._batches)

    def accepted_events(self) -> list[dict[str, Any]]:
        """Every event of every accepted batch, in order, duplicates included."""
        return [event for batch in self.batches if batch.accepted for event in batch.events]

    def unique_events(self) -> list[dict[str, Any]]:
        """What Segment would keep: accepted events, one per ``messageId``."""
        seen: dict[str, dict[str, Any]] = {}
        for event in self.accepted_events():
            seen.setdefault(str(event.get("messageId")), event)
        return list(seen.values())

    def wait_for_events(self, n: int, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.accepted_events_locked()) >= n, timeout)

    def accepted_events_locked(self) -> list[dict[str, Any]]:
        return [event for batch in self._batches if batch.accepted for event in batch.events]

    # Serving

    def handle(self, handler: CallbackHandler) -> None:
        try:
            body = read_request_body(handler, None)
        except BadBodyError:
            handler.close_connection = True
            self._answer(handler, 400, [], None, "bad body")
            return
        if body is None:
            handler.close_connection = True
            return
        write_key = _basic_user(handler.headers.get("Authorization"))
        fault = self._faults.take(_ENDPOINT) if handler.path == _BATCH_PATH else None
        if handler.path != _BATCH_PATH or handler.command != "POST":
            self._answer(handler, 404, [], write_key, "not found")
        elif fault is not None:
            self._answer(handler, fault.status, _events(body), write_key, "injected fault")
        elif self._write_key is not None and not (
            write_key is not None and hmac.compare_digest(write_key, self._write_key)
        ):
            self._answer(handler, 401, [], write_key, "invalid write key")
        else:
            status, problem = _check(body)
            self._answer(handler, status, _events(body), write_key, problem)

    def _answer(
        self,
        handler: CallbackHandler,
        status: int,
        events: list[dict[str, Any]],
        write_key: str | None,
        problem: str | None,
    ) -> None:
        with self._changed:
            self._batches.append(SegmentBatch(status, events, write_key))
            self._changed.notify_all()
        if status == 200 and events and self._on_accept is not None:
            self._on_accept(events)
        payload = {"success": True} if status == 200 else {"success": False, "error": problem}
        send_whole_response(
            handler, status, [("Content-Type", "application/json")], json.dumps(payload).encode()
        )


def _basic_user(header: str | None) -> str | None:
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return []
    batch = parsed.get("batch") if isinstance(parsed, dict) else None
    return [event for event in batch if isinstance(event, dict)] if isinstance(batch, list) else []


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check(body: bytes) -> tuple[int, str | None]:
    """Segment's refusals: (200, None) when the batch is acceptable."""
    if len(body) > SEGMENT_MAX_BATCH_BYTES:
        return 400, "batch larger than 500 KB"
    try:
        # Strict JSON: Python's reader would take NaN and Infinity, which Segment refuses.
        parsed = json.loads(body, parse_constant=_not_json)
    except ValueError:
        return 400, "body is not JSON"
    batch = parsed.get("batch") if isinstance(parsed, dict) else None
    if not isinstance(batch, list):
        return 400, 'body must be {"batch": [...]}'
    for event in batch:
        if not isinstance(event, dict) or event.get("type") not in ("track", "identify"):
            return 400, "event type not supported by this stand-in"
        if not (event.get("userId") or event.get("anonymousId")):
            return 400, "event needs userId or anonymousId"
        if event["type"] == "track" and not event.get("event"):
            return 400, "track needs an event name"
        size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
        if size > SEGMENT_MAX_EVENT_BYTES:
            return 400, "event larger than 32 KB"
    return 200, None
