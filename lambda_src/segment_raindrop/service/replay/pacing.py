"""A replay's rate limit: at most ``rate`` events per second across the run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# How often a wait for the rate limit looks at the stop flag, the time left and the leases.
_STEP_SECONDS = 0.5


class Pacer:
    def __init__(self, rate: float | None, stop: threading.Event) -> None:
        self._rate = rate
        self._stop = stop
        self._next_send = 0.0

    def wait_for(
        self, events: int, *, out_of_time: Callable[[], bool], meanwhile: Callable[[], None]
    ) -> bool:
        """Wait until ``events`` may be sent; False when a stop was requested or time ran out
        meanwhile. ``meanwhile`` runs between steps of a long wait (renewing leases)."""
        if self._rate is None:
            return not self._stop.is_set()
        while (wait := self._next_send - time.monotonic()) > 0:
            if self._stop.wait(min(wait, _STEP_SECONDS)) or out_of_time():
                return False
            meanwhile()
        if self._stop.is_set():
            return False
        self._next_send = max(self._next_send, time.monotonic()) + events / self._rate
        return True
