"""End-to-end fixtures: local mode running in this process, on ephemeral ports of 127.0.0.1.

- ``start_local``: ``start_local(**LocalOptions overrides)`` → a started :class:`Local`, stopped
  after the test. Retries are fast (1 s base delay, short polls, 50 ms delivery back-off).
- ``wait_for(condition)``: poll until true or a timeout.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from segment_raindrop.core.config import DeliveryConfig
from segment_raindrop_tools.local.mode import LocalMode
from segment_raindrop_tools.local.options import LocalEndpoints, LocalOptions
from segment_raindrop_tools.local.queues import queue_depth
from segment_raindrop_tools.local.receiver import RaindropReceiver


@dataclass
class Local:
    """A running local mode, what it printed, and helpers to talk to it."""

    mode: LocalMode
    lines: list[str] = field(default_factory=list)

    @property
    def endpoints(self) -> LocalEndpoints:
        return self.mode.endpoints

    @property
    def receiver(self) -> RaindropReceiver:
        receiver = self.mode.receiver
        assert receiver is not None, "local mode forwards to another Raindrop"
        return receiver

    @property
    def token(self) -> str:
        return self.endpoints.webhook_token

    def post(
        self, body: Any, *, headers: dict[str, str] | None = None, path: str = "/segment"
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with httpx.Client(trust_env=False, timeout=15) as client:
            return client.post(
                f"{self.endpoints.origin}{path}",
                content=raw,
                headers={"Content-Type": "application/json", **(headers or {})},
            )

    @property
    def batch_path(self) -> str:
        """Where Segment's libraries post (the SDK API's /v1/batch, under its stage)."""
        return urlsplit(self.endpoints.batch_url).path

    def queue_depth(self, queue_url: str) -> int:
        return queue_depth(self.mode.resources.sqs_client(), queue_url)

    def printed(self, fragment: str) -> list[str]:
        return [line for line in list(self.lines) if fragment in line]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


# The forwarder's own in-request retries (3 attempts) with 50 ms back-off instead of 200 ms+,
# and a circuit breaker that tries Raindrop again after half a second instead of 30 s: an
# outage test heals Raindrop and expects the next retry-worker run to get through.
FAST_DELIVERY_RETRIES = DeliveryConfig(
    backoff_base_seconds=0.05, backoff_cap_seconds=0.1, breaker_cooldown_seconds=0.5
)


@pytest.fixture
def start_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Local]]:
    started: list[LocalMode] = []

    def start(**overrides: Any) -> Local:
        options = LocalOptions(
            port=0,
            data_dir=tmp_path_factory.mktemp("local-data"),
            retry_base_delay_seconds=1,
            retry_poll_seconds=0,
            # Tests share one process's moto backends: each instance gets its own resources.
            resource_prefix=f"e2e-{secrets.token_hex(4)}",
            delivery=FAST_DELIVERY_RETRIES,
        )
        lines: list[str] = []
        mode = LocalMode(replace(options, **overrides), echo=lines.append)
        started.append(mode)
        mode.start()
        return Local(mode, lines)

    yield start
    for mode in started:
        mode.stop()
