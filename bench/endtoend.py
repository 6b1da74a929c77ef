"""End-to-end delivery of a batch over real HTTP on 127.0.0.1, ours against two baselines.

The receiver answers every request after a fixed latency and runs in a separate process.
Every variant starts from the same request body and uses the same mapping; only the way
items are sent differs:

- ours: chunks of up to 100 items, 8 requests in flight (the forwarder's defaults);
- Raindrop SDK style: 10 items per request, one request after another;
- Segment Function style: one request per event, one after another.

Baselines that would run for minutes are stopped after ``BASELINE_CAP_SECONDS`` and their
total is extrapolated from the requests they completed (marked in the report).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from bench import workload
from bench.measure import median_seconds
from segment_raindrop.adapters.http_delivery import HttpDelivery
from segment_raindrop.adapters.targets import RaindropTarget
from segment_raindrop.core.chunking import ChunkBuilder
from segment_raindrop.core.config import DeliveryConfig, MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop.service.forwarding import Forwarder

LATENCIES = (0.0, 0.05, 0.2)
BASELINE_CAP_SECONDS = 8.0


@dataclass(frozen=True)
class Timing:
    seconds: float
    requests: int
    extrapolated: bool = False


@dataclass(frozen=True)
class EndToEndResult:
    latency: float
    events: int
    ours: Timing
    sdk_style: Timing
    per_event: Timing


@contextmanager
def receiver(latency: float) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.receiver_process", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def ours(body: bytes, url: str, repeat: int) -> Timing:
    config = DeliveryConfig(raindrop_api_url=url)
    forwarder = Forwarder(MappingConfig(), config, HttpDelivery(config, RaindropTarget(url)))
    requests = 0

    def once() -> None:
        nonlocal requests
        result = forwarder.forward(
            parse_body(body).events, api_key="k", deadline=time.monotonic() + 60
        )
        assert not result.failures, result.failures
        requests = result.delivery.requests

    try:
        seconds = median_seconds(once, repeat=repeat, warmup=1)
    finally:
        forwarder.client.close()
    return Timing(seconds, requests)


def sequential(body: bytes, url: str, items_per_request: int) -> Timing:
    started = time.perf_counter()
    mapped = map_events(parse_body(body).events, MappingConfig())
    builder = ChunkBuilder(max_items=items_per_request, max_bytes=10_000_000)
    chunks = [chunk for item in mapped.items if (chunk := builder.add(item.endpoint, item))]
    chunks += builder.flush()
    with httpx.Client(timeout=30) as client:
        for done, chunk in enumerate(chunks, start=1):
            response = client.post(
                f"{url}/{chunk.endpoint}",
                content=chunk.body,
                headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            )
            response.raise_for_status()
            elapsed = time.perf_counter() - started
            if elapsed > BASELINE_CAP_SECONDS and done < len(chunks):
                return Timing(elapsed * len(chunks) / done, len(chunks), extrapolated=True)
    return Timing(time.perf_counter() - started, len(chunks))


def run(events: int = 4_000, latencies: tuple[float, ...] = LATENCIES) -> list[EndToEndResult]:
    body = workload.body(events)
    results = []
    for latency in latencies:
        with receiver(latency) as url:
            results.append(
                EndToEndResult(
                    latency=latency,
                    events=events,
                    ours=ours(body, url, repeat=5),
                    sdk_style=sequential(body, url, items_per_request=10),
                    per_event=sequential(body, url, items_per_request=1),
                )
            )
    return results


def ours_by_size(sizes: tuple[int, ...], latency: float) -> dict[int, float]:
    """Our end-to-end seconds per batch size at one receiver latency (for the cost model)."""
    timings = {}
    with receiver(latency) as url:
        for size in sizes:
            body = workload.body(size)
            timings[size] = ours(body, url, repeat=5).seconds
    return timings
