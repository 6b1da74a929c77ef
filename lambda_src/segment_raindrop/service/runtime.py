"""The composition root: the long-lived objects a function reuses, built from values.

:func:`build_runtime` takes a validated configuration and, optionally, the collaborators to use
(AWS clients, an HTTP transport); whatever is not given is built here with bounded timeouts.
Local mode, the CLI, the tests and the benchmarks call it (or install a runtime into a handler
with :meth:`LazyRuntime.use`) and never go through the process environment.

In Lambda each handler module holds a :class:`LazyRuntime`, which reads the environment once, on
the first invocation rather than at import: importing a handler must not read configuration or
touch AWS, so the bundler and the tests can import it anywhere.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from segment_raindrop.adapters.aws import AwsClients, aws_clients, dynamodb_client
from segment_raindrop.adapters.breaker import CircuitBreaker
from segment_raindrop.adapters.http_delivery import HttpDelivery
from segment_raindrop.adapters.observability import on_breaker_change
from segment_raindrop.adapters.partials import PartialStore
from segment_raindrop.adapters.queue_writer import QueueWriter
from segment_raindrop.adapters.secrets import SecretStore
from segment_raindrop.adapters.targets import RaindropTarget, SegmentTarget
from segment_raindrop.core.config import ForwarderConfig, ReplayConfig
from segment_raindrop.core.environment import read_config
from segment_raindrop.service.delivery import Channels

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


class LazyDelivery:
    """The Segment delivery, built on first use: only the mirror, and the retry worker and
    replay for the mirror's messages, ever send to Segment, so the webhook's cold start does
    not pay for a second HTTP client (its TLS context alone is milliseconds)."""

    def __init__(self, build: Callable[[], HttpDelivery]) -> None:
        self._build = build
        self._client: HttpDelivery | None = None
        self._lock = threading.Lock()

    def get(self) -> HttpDelivery:
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()


@dataclass(frozen=True, slots=True)
class Runtime:
    config: ForwarderConfig
    secrets: SecretStore
    channels: Channels
    writer: QueueWriter
    sqs: SQSClient
    # The mirror's partial events' table (None: not set).
    partials: PartialStore | None
    _segment: LazyDelivery

    @property
    def raindrop(self) -> HttpDelivery:
        return self.channels.raindrop

    def close(self) -> None:
        self.channels.raindrop.close()
        self._segment.close()


def build_runtime(
    config: ForwarderConfig,
    *,
    source: str,
    aws: AwsClients | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Runtime:
    """Everything one function needs, from ``config`` and the collaborators given.

    ``source`` names the entry point in the queue messages it writes (webhook, mirror, retry,
    replay).
    """
    clients = aws or aws_clients(dynamodb=bool(config.mirror.partials_table))
    secrets = SecretStore(
        config.secret_id,
        max_age_seconds=config.secret_max_age_seconds,
        client=clients.secretsmanager,
    )
    partials = _partials(config, clients)
    channels, segment = build_channels(config, secrets, transport=transport, partials=partials)
    return Runtime(
        config=config,
        secrets=secrets,
        channels=channels,
        writer=QueueWriter(
            clients.sqs,
            retry_queue_url=config.retry_queue_url,
            dlq_url=config.dlq_url,
            source=source,
        ),
        sqs=clients.sqs,
        partials=partials,
        _segment=segment,
    )


def build_channels(
    config: ForwarderConfig | ReplayConfig,
    secrets: SecretStore,
    *,
    transport: httpx.BaseTransport | None = None,
    partials: PartialStore | None = None,
) -> tuple[Channels, LazyDelivery]:
    """What jobs are sent with, from the settings: Raindrop's delivery (with the breaker that
    counts its openings) and Segment's, built on first use (also returned, to be closed)."""
    delivery = config.delivery
    raindrop = HttpDelivery(
        delivery,
        RaindropTarget(delivery.raindrop_api_url, delivery.project_id),
        transport=transport,
        make_breaker=lambda project: CircuitBreaker.from_config(
            delivery, on_state_change=on_breaker_change, label=project
        ),
    )
    segment = LazyDelivery(
        lambda: HttpDelivery(
            delivery, SegmentTarget(config.mirror.segment_api_url), transport=transport
        )
    )
    channels = Channels(config.mapping, delivery, raindrop, segment.get, secrets, partials)
    return channels, segment


def _partials(config: ForwarderConfig, clients: AwsClients) -> PartialStore | None:
    table = config.mirror.partials_table
    if table is None:
        return None
    dynamodb = clients.dynamodb or dynamodb_client()
    return PartialStore(dynamodb, table, ttl_seconds=config.mirror.partials_ttl_seconds)


RuntimeFactory = Callable[[], Runtime]


class LazyRuntime:
    """A handler's per-process :class:`Runtime`, built on first use.

    By default it is built from the process environment (Lambda). :meth:`use` gives another
    way to build it (local mode, tests); :meth:`reset` drops the one built so the next
    invocation builds afresh.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._runtime: Runtime | None = None
        self._factory: RuntimeFactory | None = None
        self._lock = threading.Lock()

    def _from_environment(self) -> Runtime:
        built = build_runtime(read_config(os.environ), source=self.source)
        # What is alive now (modules, pydantic's schemas, botocore's models, this runtime)
        # lives as long as the process. Frozen, the collector's full passes stop walking it:
        # unfrozen, such a pass cost 100-150 ms in the middle of about one 4,000-event request in
        # three. Frozen objects are still freed when their last reference goes.
        gc.freeze()
        return built

    def get(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                self._runtime = (self._factory or self._from_environment)()
            return self._runtime

    def use(self, factory: RuntimeFactory | None) -> None:
        """Build the runtime with ``factory`` from now on (None: from the environment again)."""
        self.reset()
        with self._lock:
            self._factory = factory

    def reset(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
            self._runtime = None
