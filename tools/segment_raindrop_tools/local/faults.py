"""Misbehaviour the Raindrop receiver can be told to show: single faults and outages."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Fault", "FaultPlan"]


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


class FaultPlan:
    """The faults still to come and the outage in force, per endpoint (None: any); thread-safe.

    Each matching request consumes the next queued fault; an outage fails every matching
    request until :meth:`heal` and takes precedence over the queue, which waits for afterwards.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[tuple[str | None, Fault]] = deque()
        self._outage: tuple[str | None, Fault] | None = None

    def inject(self, faults: Iterable[Fault], endpoint: str | None) -> None:
        with self._lock:
            self._faults.extend((endpoint, fault) for fault in faults)

    def outage(self, fault: Fault, endpoint: str | None) -> None:
        with self._lock:
            self._outage = (endpoint, fault)

    def heal(self) -> None:
        with self._lock:
            self._outage = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._outage = None

    def take(self, endpoint: str) -> Fault | None:
        """The fault a request to ``endpoint`` meets now, if any (queued ones are consumed)."""
        with self._lock:
            if self._outage is not None and self._outage[0] in (None, endpoint):
                return self._outage[1]
            for index, (wanted, fault) in enumerate(self._faults):
                if wanted in (None, endpoint):
                    del self._faults[index]
                    return fault
        return None
