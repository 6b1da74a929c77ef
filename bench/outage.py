"""Delivery when Raindrop misbehaves: a hanging outage (the circuit breaker) and blanket refusals.

Both drive ``service.forwarding.Forwarder`` with one warm ``HttpDelivery`` against the
fault-injecting receiver on 127.0.0.1, as consecutive webhook invocations would, with the
forwarder's default delivery settings (5 s budget, 5 s read timeout, 8 in flight, 3 attempts,
breaker after 5 failures) except a short breaker cool-down, so recovery is measured in seconds
rather than the default 30.

- Outage: Raindrop accepts connections and never answers. The first call spends its budget
  on timeouts and opens the breaker; the next call is answered at once with every event
  queued for the retry worker; after Raindrop heals and the cool-down passes, one call lets
  the probe through and the one after delivers everything.
- Refusals: Raindrop answers 400 to every request (50 ms each); 500 events in 5 chunks of 100
  are bisected within the split budget of ``service/delivery.py``: what Raindrop refuses on
  its own is dead-lettered, what the budget leaves unsplit is queued to go on isolating.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from segment_raindrop.adapters.http_delivery import HttpDelivery
from segment_raindrop.adapters.targets import RaindropTarget
from segment_raindrop.core.config import DeliveryConfig, MappingConfig
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.service.forwarding import Forwarder
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.receiver import RaindropReceiver

EVENTS = 500
COOLDOWN_SECONDS = 2.0
HANG_SECONDS = 60.0
REFUSAL_LATENCY_SECONDS = 0.05
# What bisection cost before it had a budget: every split of 100 items down to single ones.
UNBUDGETED_REFUSAL_REQUESTS = EVENTS // 100 * (2 * 100 - 1)


@dataclass(frozen=True)
class Call:
    seconds: float
    requests: int
    forwarded: int
    queued: int
    dead_lettered: int


@dataclass(frozen=True)
class OutageResult:
    events: int
    cooldown_seconds: float
    spending: Call  # the first call into the outage: timeouts until the breaker opens
    open: Call  # the next call: the breaker is open
    probing: Call  # after healing and the cool-down: one probe request
    recovered: Call  # the call after the successful probe
    refused: Call  # Raindrop refusing everything (a separate client)
    refused_unbudgeted_requests: int


def events(count: int) -> list[dict[str, Any]]:
    """AI interactions without context traits: one Raindrop item each, 100 to a chunk."""
    return [se.chat(seq, user=f"user-{seq % 17}", input=f"question {seq}") for seq in range(count)]


def _call(forwarder: Forwarder, batch: list[dict[str, Any]]) -> Call:
    started = time.perf_counter()
    result = forwarder.forward(
        batch, api_key="k", deadline=time.monotonic() + forwarder.delivery.budget_seconds
    )
    seconds = time.perf_counter() - started
    permanent = result.failed(FailureReason.REJECTED, FailureReason.INVALID)
    return Call(
        seconds=seconds,
        requests=result.delivery.requests,
        forwarded=len(result.forwarded),
        queued=len(result.failures) - len(permanent),
        dead_lettered=len(permanent),
    )


def _forwarder(url: str) -> Forwarder:
    config = DeliveryConfig(raindrop_api_url=url, breaker_cooldown_seconds=COOLDOWN_SECONDS)
    return Forwarder(MappingConfig(), config, HttpDelivery(config, RaindropTarget(url)))


def _outage(receiver: RaindropReceiver, batch: list[dict[str, Any]]) -> tuple[Call, ...]:
    forwarder = _forwarder(receiver.url)
    try:
        receiver.outage(Fault(delay=HANG_SECONDS))
        spending = _call(forwarder, batch)
        open_ = _call(forwarder, batch)
        receiver.heal()
        healed = time.monotonic()
        # The first call after the cool-down carries the probe.
        time.sleep(max(0.0, COOLDOWN_SECONDS - (time.monotonic() - healed)) + 0.1)
        probing = _call(forwarder, batch)
        recovered = _call(forwarder, batch)
    finally:
        forwarder.client.close()
    return spending, open_, probing, recovered


def _refused(receiver: RaindropReceiver, batch: list[dict[str, Any]]) -> Call:
    forwarder = _forwarder(receiver.url)
    try:
        receiver.outage(Fault(status=400, delay=REFUSAL_LATENCY_SECONDS))
        return _call(forwarder, batch)
    finally:
        forwarder.client.close()


def run(count: int = EVENTS) -> OutageResult:
    batch = events(count)
    with RaindropReceiver() as receiver:
        spending, open_, probing, recovered = _outage(receiver, batch)
    with RaindropReceiver() as receiver:
        refused = _refused(receiver, batch)
    return OutageResult(
        events=count,
        cooldown_seconds=COOLDOWN_SECONDS,
        spending=spending,
        open=open_,
        probing=probing,
        recovered=recovered,
        refused=refused,
        refused_unbudgeted_requests=UNBUDGETED_REFUSAL_REQUESTS,
    )


if __name__ == "__main__":
    print(run())
