"""Shared fixtures: real local components only (a moto server, a Raindrop receiver), no mocks.

- ``moto_server`` (session): one moto server on 127.0.0.1 for the whole run.
- ``aws``: moto reset, the forwarder's secret and queues provisioned with fresh random secret
  values, and a ``ForwarderConfig`` for them (``AwsEnv``); the webhook, retry and replay
  handlers build their runtimes from that configuration and clients bound to moto.
- ``receiver``: a started ``RaindropReceiver`` expecting ``aws``'s Raindrop key, validating items
  like Raindrop (``check_raindrop_items``), configured as the forwarder's Raindrop API.
- ``receiver_factory``: more receivers with other settings, stopped after the test.
- ``sqs_unreachable`` / ``secretsmanager_unreachable``: that service's endpoint refuses
  connections for the test; ``closed_port``, ``free_port``: ports for such tricks.

Every test starts from a sanitised environment (no AWS profile, real credentials or proxies for
127.0.0.1 inherited from the shell: a test must never reach real AWS) and the whole
``os.environ`` is restored afterwards, even when the code under test wrote to it directly.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from segment_raindrop.adapters.aws import AwsClients
from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.handlers import eventbridge, raindrop_sdk, replay, retry_worker, webhook
from segment_raindrop.service.runtime import Runtime, build_runtime
from segment_raindrop_tools.local.aws import (
    LocalResources,
    dynamodb_client,
    provision,
    secretsmanager_client,
    sqs_client,
)
from segment_raindrop_tools.local.moto import MotoServer, start_moto_server
from segment_raindrop_tools.local.queues import drain_queue, peek_queue, queue_depth
from segment_raindrop_tools.local.raindrop_items import check_raindrop_items
from segment_raindrop_tools.local.receiver import RaindropReceiver

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
HANDLER_MODULES = (webhook, retry_worker, replay, raindrop_sdk, eventbridge)

# Variables that would let a test reach real AWS or a shell's X-Ray daemon. AWS_CA_BUNDLE
# stays: some machines need it for any TLS at all.
_SCRUBBED_PREFIXES = ("AWS_", "POWERTOOLS_", "_X_AMZN_")
_KEPT = frozenset({"AWS_CA_BUNDLE"})


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Deliberately not built on monkeypatch: as an autouse fixture that does not request it,
    # this is set up before and torn down after monkeypatch, so its restore is the last word.
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_PREFIXES) and name not in _KEPT:
            del os.environ[name]
    missing = str(tmp_path_factory.getbasetemp() / "no-aws-config")
    os.environ |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": missing,
        "AWS_SHARED_CREDENTIALS_FILE": missing,
        # Without credentials botocore would probe the instance metadata service for seconds.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("NO_PROXY", "no_proxy"):
        existing = [host for host in os.environ.get(name, "").split(",") if host]
        os.environ[name] = ",".join([*existing, "127.0.0.1", "localhost"])
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a port on 127.0.0.1 that was free a moment ago."""
    return _free_port


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for the whole test.

    The socket is bound but never listens, so nothing else can take the port meanwhile and
    every connection attempt is refused at once (no timeout to wait for).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with start_moto_server() as server:
        yield server


@dataclass(frozen=True)
class MotoClients:
    sqs: SQSClient
    secretsmanager: SecretsManagerClient


@pytest.fixture(scope="session")
def _moto_clients(moto_server: MotoServer) -> MotoClients:
    # Bound to the endpoint explicitly, so they keep working when a test makes the service
    # unreachable through the environment for the code under test.
    return MotoClients(
        sqs=sqs_client(moto_server.endpoint_url, REGION),
        secretsmanager=secretsmanager_client(moto_server.endpoint_url, REGION),
    )


class AwsEnv:
    """The provisioned resources, the secret's values, clients bound to moto, and the
    forwarder's configuration, which the handlers' runtimes are built from (never from
    ``os.environ``).

    ``configure`` changes the configuration; each handler builds its runtime afresh on its next
    invocation. ``unreachable(service, url)`` points that service's clients at a dead endpoint.
    """

    def __init__(
        self,
        *,
        resources: LocalResources,
        secret: dict[str, str],
        endpoint_url: str,
        sqs: SQSClient,
        secretsmanager: SecretsManagerClient,
    ) -> None:
        self.resources = resources
        self.secret = secret
        self.endpoint_url = endpoint_url
        self.sqs = sqs
        self.secretsmanager = secretsmanager
        self.config = ForwarderConfig(
            secret_id=resources.secret_id,
            retry_queue_url=resources.retry_queue_url,
            dlq_url=resources.dlq_url,
            retry_max_attempts=resources.retry_max_receives,
        )
        self._endpoints: dict[str, str] = {}

    @property
    def raindrop_api_key(self) -> str:
        return self.secret["raindrop_api_key"]

    @property
    def webhook_token(self) -> str:
        return self.secret["webhook_token"]

    @property
    def segment_shared_secret(self) -> str:
        return self.secret["segment_shared_secret"]

    def configure(
        self,
        *,
        mapping: dict[str, Any] | None = None,
        delivery: dict[str, Any] | None = None,
        **fields: Any,
    ) -> ForwarderConfig:
        """Update the configuration (nested ``mapping``/``delivery`` fields merge), validated."""
        values = self.config.model_dump()
        values.update(fields)
        values["mapping"] = {**values["mapping"], **(mapping or {})}
        values["delivery"] = {**values["delivery"], **(delivery or {})}
        self.config = ForwarderConfig.model_validate(values)
        reset_handler_runtimes()
        return self.config

    def unreachable(self, service: str, url: str) -> None:
        self._endpoints[service] = url
        reset_handler_runtimes()

    def clients(self) -> AwsClients:
        return AwsClients(
            sqs=sqs_client(self._endpoints.get("sqs", self.endpoint_url), REGION),
            secretsmanager=secretsmanager_client(
                self._endpoints.get("secretsmanager", self.endpoint_url), REGION
            ),
            dynamodb=dynamodb_client(self._endpoints.get("dynamodb", self.endpoint_url), REGION)
            if self.config.mirror.partials_table
            else None,
        )

    def runtime(self, source: str) -> Runtime:
        """A runtime as a handler builds it, from this configuration."""
        return build_runtime(self.config, source=source, aws=self.clients())

    def drain_retry_queue(self) -> list[dict[str, Any]]:
        return drain_queue(self.sqs, self.resources.retry_queue_url)

    def drain_dlq(self) -> list[dict[str, Any]]:
        return drain_queue(self.sqs, self.resources.dlq_url)

    def peek_dlq(self) -> list[dict[str, Any]]:
        return peek_queue(self.sqs, self.resources.dlq_url)

    def queue_depth(self, queue_url: str) -> int:
        """Messages visible, in flight or delayed: everything still on the queue."""
        return queue_depth(self.sqs, queue_url)


def reset_handler_runtimes() -> None:
    for handler in HANDLER_MODULES:
        handler.runtime.reset()


@pytest.fixture
def aws(moto_server: MotoServer, _moto_clients: MotoClients) -> Iterator[AwsEnv]:
    """Fresh forwarder resources in moto; the handlers build their runtimes from ``aws.config``."""
    moto_server.reset()
    secret = {
        "raindrop_api_key": f"rk-{secrets.token_urlsafe(16)}",
        "webhook_token": f"wt-{secrets.token_urlsafe(16)}",
        "segment_shared_secret": f"ss-{secrets.token_urlsafe(16)}",
    }
    resources = provision(endpoint_url=moto_server.endpoint_url, region=REGION, secret=secret)
    env = AwsEnv(
        resources=resources,
        secret=secret,
        endpoint_url=moto_server.endpoint_url,
        sqs=_moto_clients.sqs,
        secretsmanager=_moto_clients.secretsmanager,
    )
    for handler in HANDLER_MODULES:
        handler.runtime.use(functools.partial(env.runtime, handler.runtime.source))
    try:
        yield env
    finally:
        for handler in HANDLER_MODULES:
            handler.runtime.use(None)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., RaindropReceiver]]:
    """``factory(**RaindropReceiver kwargs)`` → a started receiver, stopped after the test."""
    started: list[RaindropReceiver] = []

    def factory(**kwargs: Any) -> RaindropReceiver:
        receiver = RaindropReceiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield factory
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(aws: AwsEnv, receiver_factory: Callable[..., RaindropReceiver]) -> RaindropReceiver:
    """The Raindrop stand-in the forwarder is configured to use (``delivery.raindrop_api_url``)."""
    started = receiver_factory(api_key=aws.raindrop_api_key, validator=check_raindrop_items)
    aws.configure(delivery={"raindrop_api_url": started.url})
    return started


@pytest.fixture
def sqs_unreachable(aws: AwsEnv, closed_port: int) -> str:
    """The forwarder's SQS client gets connection refused; returns its URL."""
    url = f"http://127.0.0.1:{closed_port}"
    aws.unreachable("sqs", url)
    return url


@pytest.fixture
def secretsmanager_unreachable(aws: AwsEnv, closed_port: int) -> str:
    """The forwarder's Secrets Manager client gets connection refused; returns its URL."""
    url = f"http://127.0.0.1:{closed_port}"
    aws.unreachable("secretsmanager", url)
    return url
