"""A circuit breaker, so a warm function stops spending its budget on a Raindrop that is down.

States:

- ``closed``: requests go through; ``failure_threshold`` consecutive failures open it.
- ``open``: no request goes through until ``cooldown_seconds`` have passed.
- ``half_open``: exactly one probe request goes through, every other caller is refused; the
  probe's success closes the breaker, its failure opens it for another cool-down.

A failure is a request that tells us Raindrop is not answering (a timeout, a connection error,
a 5xx). Any other answer, 4xx and 429 included, is a success: Raindrop is alive, whatever it
thinks of the request. ``failure_threshold`` 0 disables the breaker.

Every permission is a :class:`Permit` stamped with the generation of the state it was given
in; an outcome reported with a permit from an earlier generation (a request that was already
in flight when the state changed) is ignored, so only the probe can decide a half-open breaker
and late answers cannot re-open or close it behind the probe's back.

One breaker serves every thread of a process: all methods are thread-safe. :class:`Breakers`
keeps one per Raindrop project, so a project that is failing is the only one held back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from segment_raindrop.adapters.observability import logger
from segment_raindrop.core.config import DeliveryConfig

Clock = Callable[[], float]
StateChangeHook = Callable[[str, str], None]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """Permission for one request; hand it back with ``record_success``/``record_failure``."""

    generation: int
    probe: bool = False


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Clock = time.monotonic,
        on_state_change: StateChangeHook | None = None,
        label: str = "",
        receiver: str = "raindrop",
    ) -> None:
        if failure_threshold < 0:
            raise ValueError("failure_threshold must be 0 (disabled) or more")
        if cooldown_seconds < 0:
            raise ValueError("cooldown_seconds must not be negative")
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._on_state_change = on_state_change
        # What the breaker guards (a Raindrop project) and whose (``raindrop``, ``segment``), for
        # its log lines.
        self._label = label
        self._receiver = receiver
        # Re-entrant: the hook runs under the lock (so it sees changes in order) and may read
        # ``state``.
        self._lock = threading.RLock()
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probe_out = False

    @classmethod
    def from_config(
        cls,
        config: DeliveryConfig,
        *,
        clock: Clock = time.monotonic,
        on_state_change: StateChangeHook | None = None,
        label: str = "",
        receiver: str = "raindrop",
    ) -> CircuitBreaker:
        return cls(
            failure_threshold=config.breaker_failure_threshold,
            cooldown_seconds=config.breaker_cooldown_seconds,
            clock=clock,
            on_state_change=on_state_change,
            label=label,
            receiver=receiver,
        )

    @property
    def enabled(self) -> bool:
        return self._threshold > 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def acquire(self) -> Permit | None:
        """A permit to send one request now, or None: answer without sending."""
        if not self.enabled:
            return Permit(0)
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return Permit(self._generation)
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self._cooldown:
                    return None
                self._change(BreakerState.HALF_OPEN)
            if self._probe_out:
                return None
            self._probe_out = True
            return Permit(self._generation, probe=True)

    def record_success(self, permit: Permit) -> None:
        if not self.enabled:
            return
        with self._lock:
            if permit.generation != self._generation:
                return
            self._failures = 0
            if self._state is BreakerState.HALF_OPEN:
                self._change(BreakerState.CLOSED)

    def record_failure(self, permit: Permit) -> None:
        if not self.enabled:
            return
        with self._lock:
            if permit.generation != self._generation:
                return
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
                self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._change(BreakerState.OPEN)

    def _change(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._probe_out = False
        failures = self._failures
        if new is not BreakerState.OPEN:
            self._failures = 0
        # Opening is what an operator must notice; the other changes are the way back.
        log = logger.warning if new is BreakerState.OPEN else logger.info
        log(
            "circuit breaker changed state",
            extra={
                "receiver": self._receiver,
                "breaker_from": old.value,
                "breaker_to": new.value,
                "consecutive_failures": failures,
                "cooldown_seconds": self._cooldown,
                **({"guards": self._label} if self._label else {}),
            },
        )
        if self._on_state_change is not None:
            try:
                self._on_state_change(old.value, new.value)
            except Exception:
                # A failing metric hook must not change how chunks are delivered.
                logger.exception("Circuit breaker state hook failed")


class Breakers:
    """One :class:`CircuitBreaker` per key (the Raindrop project a request goes to), made by
    ``make`` on first use: one project answering 503 opens its own breaker, and the other
    projects' requests still go out (and their retry messages keep their receives)."""

    def __init__(self, make: Callable[[str], CircuitBreaker]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._by_key: dict[str, CircuitBreaker] = {}

    def seed(self, key: str, breaker: CircuitBreaker) -> None:
        """Use ``breaker`` for ``key`` (one a caller watches, or drives with its own clock)."""
        with self._lock:
            self._by_key[key] = breaker

    def for_key(self, key: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._by_key.get(key)
            if breaker is None:
                breaker = self._by_key[key] = self._make(key)
            return breaker
