"""Handler invocations one at a time, as in one Lambda execution environment.

The webhook and the retry worker share module-level state (the logger, the metrics) that is
not meant to serve two invocations at once, so local mode runs them in turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SerialInvocations", "StoppedError"]


class StoppedError(Exception):
    """Local mode is stopping: no invocation starts any more."""


class SerialInvocations:
    """Runs handlers in turn; after :meth:`close`, refuses to start another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def run(self, handler: Callable[[Any, Any], Any], event: Any, context: Any) -> Any:
        """``handler(event, context)`` once no other invocation runs; raises StoppedError
        when closed meanwhile."""
        with self._lock:
            if self._closed.is_set():
                raise StoppedError
            return handler(event, context)

    def close(self) -> None:
        """No invocation starts from now on (the one in progress, if any, goes on)."""
        self._closed.set()

    def wait_idle(self) -> None:
        """Return once the invocation in progress, if any, has ended."""
        with self._lock:
            pass

    def exclusively(self, action: Callable[[], object]) -> None:
        """Run ``action`` while no invocation runs (to swap what the handlers use)."""
        with self._lock:
            action()
