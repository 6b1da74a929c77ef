"""The long-lived objects a function reuses across invocations, built once per process.

Built lazily on the first invocation rather than at import: importing a handler must not read
configuration or touch AWS, so tests and the bundler can import it anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from segment_raindrop.config import ForwarderConfig, load_config
from segment_raindrop.credentials import SecretStore
from segment_raindrop.delivery import RaindropClient
from segment_raindrop.pipeline import Forwarder
from segment_raindrop.queueing import QueueWriter

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

# SQS calls sit inside Segment's 10 s window: fail fast and let the caller answer 503.
_SQS_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 2},
)


@dataclass(frozen=True, slots=True)
class Runtime:
    config: ForwarderConfig
    secrets: SecretStore
    forwarder: Forwarder
    writer: QueueWriter
    sqs: SQSClient

    def close(self) -> None:
        self.forwarder.client.close()


def build_runtime(*, source: str, env: Mapping[str, str] | None = None) -> Runtime:
    config = load_config(env)
    sqs: SQSClient = boto3.client("sqs", config=_SQS_CONFIG)
    return Runtime(
        config=config,
        secrets=SecretStore(config.secret_id, max_age_seconds=config.secret_max_age_seconds),
        forwarder=Forwarder(config.mapping, config.delivery, RaindropClient(config.delivery)),
        writer=QueueWriter(
            sqs, retry_queue_url=config.retry_queue_url, dlq_url=config.dlq_url, source=source
        ),
        sqs=sqs,
    )


class LazyRuntime:
    """A per-process :class:`Runtime`, built on first use; ``reset`` drops it (tests, reloads)."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._runtime: Runtime | None = None
        self._lock = threading.Lock()

    def get(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                self._runtime = build_runtime(source=self._source)
            return self._runtime

    def reset(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
            self._runtime = None
