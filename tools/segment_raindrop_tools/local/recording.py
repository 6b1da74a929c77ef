"""What the Raindrop receiver saw: every request, the items it accepted, and waits on them."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from email.message import Message
from typing import Any

from segment_raindrop_tools.local.faults import Fault

__all__ = ["RecordedRequest", "Recordings"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the receiver saw it.

    ``headers`` are the request's own (``BaseHTTPRequestHandler.headers``): lookups ignore case
    and ``get_all`` returns every value of a repeated header. ``items`` is the parsed JSON array
    whenever the body is one, whatever the answer (a 401 or a fault still shows what was sent),
    otherwise None. ``status`` is None when the connection was dropped. ``received_at`` is
    ``time.monotonic()`` when the request head arrived, so intervals between attempts (retry
    back-off) can be measured against the client's own monotonic clock. ``connection`` numbers
    the TCP connection the request came on, from 1, which shows whether keep-alive was used.
    """

    method: str
    path: str
    endpoint: str | None
    headers: Message
    body: bytes
    items: list[Any] | None
    status: int | None
    accepted: bool
    fault: Fault | None
    received_at: float
    connection: int


class Recordings:
    """The receiver's recordings; thread-safe, with waits woken as requests are recorded.

    Running counts (key None: all endpoints) keep the waits O(1) per wake-up, however many
    items a benchmark has pushed through.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._accepted: list[tuple[str, dict[str, Any]]] = []
        self._accepted_counts: Counter[str | None] = Counter()
        self._request_counts: Counter[str | None] = Counter()
        self._callback_errors: list[BaseException] = []
        self._closed = False

    def add(self, record: RecordedRequest, accepted_items: list[dict[str, Any]] | None) -> None:
        with self._changed:
            self._requests.append(record)
            self._request_counts[None] += 1
            if record.endpoint is not None:
                self._request_counts[record.endpoint] += 1
                if accepted_items is not None:
                    self._accepted.extend((record.endpoint, item) for item in accepted_items)
                    self._accepted_counts[None] += len(accepted_items)
                    self._accepted_counts[record.endpoint] += len(accepted_items)
            self._changed.notify_all()

    def add_callback_error(self, error: BaseException) -> None:
        with self._changed:
            self._callback_errors.append(error)

    def clear(self) -> None:
        with self._changed:
            self._requests.clear()
            self._accepted.clear()
            self._accepted_counts.clear()
            self._request_counts.clear()
            self._callback_errors.clear()

    def close(self) -> None:
        """Wake every wait: nothing more will be recorded."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        with self._changed:
            return [r for r in self._requests if r.endpoint == endpoint]

    def accepted(self, endpoint: str | None) -> list[dict[str, Any]]:
        with self._changed:
            return [item for name, item in self._accepted if endpoint in (None, name)]

    @property
    def callback_errors(self) -> list[BaseException]:
        with self._changed:
            return list(self._callback_errors)

    def wait_for_items(self, n: int, endpoint: str | None, timeout: float) -> bool:
        return self._wait_for(self._accepted_counts, endpoint, n, timeout)

    def wait_for_requests(self, n: int, endpoint: str | None, timeout: float) -> bool:
        return self._wait_for(self._request_counts, endpoint, n, timeout)

    def _wait_for(
        self, counts: Counter[str | None], endpoint: str | None, n: int, timeout: float
    ) -> bool:
        with self._changed:
            self._changed.wait_for(lambda: counts[endpoint] >= n or self._closed, timeout)
            return counts[endpoint] >= n
