"""In-process cost per event: everything the webhook does to a body but wait for the network.

Parse, authenticate (X-Signature over the whole body), map, chunk and serialise, then
"deliver" through an in-memory httpx transport that answers 200 at once. The floor is what
any forwarder must at least do with the same bytes: ``json.loads`` and ``json.dumps``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx

from bench import workload
from bench.measure import median_seconds
from segment_raindrop.adapters.http_delivery import HttpDelivery
from segment_raindrop.adapters.targets import RaindropTarget
from segment_raindrop.core.config import DeliveryConfig, MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.request_auth import authenticate, sign
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop.service.forwarding import Forwarder

SIZES = (1, 100, 1_000, 4_000)
SECRET = "bench-shared-secret"


@dataclass(frozen=True)
class InProcessResult:
    events: int
    body_bytes: int
    ours_seconds: float
    floor_seconds: float

    @property
    def ours_us_per_event(self) -> float:
        return self.ours_seconds / self.events * 1e6

    @property
    def floor_us_per_event(self) -> float:
        return self.floor_seconds / self.events * 1e6

    @property
    def ratio(self) -> float:
        return self.ours_seconds / self.floor_seconds


def in_memory_forwarder() -> Forwarder:
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, json={"ok": True}))
    delivery = DeliveryConfig(raindrop_api_url="http://raindrop.invalid/v1")
    target = RaindropTarget(delivery.raindrop_api_url)
    return Forwarder(MappingConfig(), delivery, HttpDelivery(delivery, target, transport=transport))


def run(sizes: tuple[int, ...] = SIZES) -> list[InProcessResult]:
    forwarder = in_memory_forwarder()
    results = []
    try:
        for size in sizes:
            body = workload.body(size)
            headers = {"x-signature": sign(body, SECRET)}

            def ours(body: bytes = body, headers: dict[str, str] = headers) -> None:
                decision = authenticate(headers, body, webhook_token=None, shared_secret=SECRET)
                assert decision.ok
                parsed = parse_body(body)
                result = forwarder.forward(
                    parsed.events, api_key="k", deadline=time.monotonic() + 60
                )
                assert not result.failures

            def floor(body: bytes = body) -> None:
                json.dumps(json.loads(body)).encode()

            repeat = 30 if size < 1_000 else 10
            results.append(
                InProcessResult(
                    events=size,
                    body_bytes=len(body),
                    ours_seconds=median_seconds(ours, repeat=repeat, warmup=2),
                    floor_seconds=median_seconds(floor, repeat=repeat, warmup=2),
                )
            )
    finally:
        forwarder.client.close()
    return results


def parse_and_map_seconds(events: int = 4_000) -> tuple[int, float]:
    """Body size and median time to parse a body and map its events (no delivery)."""
    body = workload.body(events)
    mapping = MappingConfig()
    return len(body), median_seconds(
        lambda: map_events(parse_body(body).events, mapping), repeat=15, warmup=2
    )
