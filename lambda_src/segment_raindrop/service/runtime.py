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
from typing import TYPE_CHECKING, cast

import botocore.session
import httpx
from botocore.config import Config

from segment_raindrop.adapters.breaker import CircuitBreaker
from segment_raindrop.adapters.http_delivery import RaindropClient, SegmentClient
from segment_raindrop.adapters.observability import on_breaker_change
from segment_raindrop.adapters.partials import PartialStore
from segment_raindrop.adapters.queue_writer import QueueWriter
from segment_raindrop.adapters.secrets import SecretStore
from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.core.contract import DYNAMODB, SECRETS_MANAGER, SQS
from segment_raindrop.core.environment import read_config
from segment_raindrop.service.forwarding import Forwarder

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs.client import SQSClient

# AWS calls sit inside Segment's 10 s window: fail fast and let the caller answer 503 (or let
# the message come back) rather than wait on botocore's default 60 s reads and retries.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 2},
)


@dataclass(frozen=True, slots=True)
class AwsClients:
    sqs: SQSClient
    secretsmanager: SecretsManagerClient
    # Only the mirror uses it (partial events); None: built with the defaults when needed.
    dynamodb: DynamoDBClient | None = None


def aws_clients(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    config: Config | None = None,
    dynamodb: bool = False,
) -> AwsClients:
    """SQS and Secrets Manager clients sharing one session, and a DynamoDB client when asked
    (the mirror's partial events; each client costs a cold start milliseconds);
    ``endpoint_url`` for emulators.

    botocore's own clients, the ones boto3 hands out: boto3 adds resources and S3 transfers,
    which no function uses, and ~13 ms to every cold start that imports it."""
    session = botocore.session.get_session()
    settings = config or AWS_CLIENT_CONFIG

    def client(service: str) -> object:
        return session.create_client(
            service, region_name=region, endpoint_url=endpoint_url, config=settings
        )

    return AwsClients(
        sqs=cast("SQSClient", client(SQS)),
        secretsmanager=cast("SecretsManagerClient", client(SECRETS_MANAGER)),
        dynamodb=cast("DynamoDBClient", client(DYNAMODB)) if dynamodb else None,
    )


class _Deferred:
    """The Segment client, built on first use: only the mirror, and the retry worker and
    replay for the mirror's messages, ever send to Segment, so the webhook's cold start does
    not pay for a second HTTP client (its TLS context alone is milliseconds)."""

    def __init__(self, build: Callable[[], SegmentClient]) -> None:
        self._build = build
        self._client: SegmentClient | None = None
        self._lock = threading.Lock()

    def get(self) -> SegmentClient:
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
    forwarder: Forwarder
    writer: QueueWriter
    sqs: SQSClient
    # The mirror's: Segment's batch endpoint (built on first use), and the partial events'
    # table (None: not set).
    segment_client: _Deferred
    partials: PartialStore | None = None

    @property
    def segment(self) -> SegmentClient:
        return self.segment_client.get()

    def close(self) -> None:
        self.forwarder.client.close()
        self.segment_client.close()


def build_runtime(
    config: ForwarderConfig,
    *,
    source: str,
    aws: AwsClients | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Runtime:
    """Everything one function needs, from ``config`` and the collaborators given.

    ``source`` names the entry point in the queue messages it writes (webhook, retry, replay).
    """
    clients = aws or aws_clients(dynamodb=bool(config.mirror.partials_table))
    return Runtime(
        config=config,
        secrets=SecretStore(
            config.secret_id,
            max_age_seconds=config.secret_max_age_seconds,
            client=clients.secretsmanager,
        ),
        forwarder=Forwarder(
            config.mapping,
            config.delivery,
            RaindropClient(
                config.delivery,
                transport=transport,
                breaker=CircuitBreaker.from_config(
                    config.delivery, on_state_change=on_breaker_change
                ),
            ),
        ),
        writer=QueueWriter(
            clients.sqs,
            retry_queue_url=config.retry_queue_url,
            dlq_url=config.dlq_url,
            source=source,
        ),
        sqs=clients.sqs,
        segment_client=_Deferred(
            lambda: SegmentClient(
                config.delivery.model_copy(update={"api_url": config.mirror.segment_api_url}),
                transport=transport,
            )
        ),
        partials=_partials(config, clients),
    )


def _partials(config: ForwarderConfig, clients: AwsClients) -> PartialStore | None:
    table = config.mirror.partials_table
    if table is None:
        return None
    dynamodb = clients.dynamodb
    if dynamodb is None:
        dynamodb = cast(
            "DynamoDBClient",
            botocore.session.get_session().create_client(DYNAMODB, config=AWS_CLIENT_CONFIG),
        )
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
