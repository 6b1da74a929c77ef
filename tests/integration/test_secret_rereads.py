"""Refused requests re-read the secret (a token just rotated), at most once per interval."""

from __future__ import annotations

from typing import Any, cast

from segment_raindrop.adapters.secrets import SecretStore
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.aws import secretsmanager_client
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import REGION, AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
)
from tests.support.runtimes import use_webhook_clients

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def _counting_secretsmanager(aws: AwsEnv) -> tuple[Any, list[str]]:
    """A real Secrets Manager client, and the list its GetSecretValue calls are recorded in."""
    client = secretsmanager_client(aws.endpoint_url, REGION)
    reads: list[str] = []

    def record(**_: Any) -> None:
        reads.append("GetSecretValue")

    client.meta.events.register("before-call.secrets-manager.GetSecretValue", record)
    return client, reads


def test_refused_requests_re_read_the_secret_at_most_once_per_interval(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    client, reads = _counting_secretsmanager(aws)
    use_webhook_clients(aws, secretsmanager=client)
    assert invoke_webhook([se.chat(0)], headers=bearer(aws)).status == 200
    assert len(reads) == 1  # read once, then cached
    for _ in range(4):
        refused = invoke_webhook([se.chat(1)], headers={"Authorization": "Bearer wrong"})
        assert refused.status == 401
    # A stranger's requests cannot turn into one Secrets Manager call each.
    assert len(reads) == 2


def test_the_forced_re_read_is_throttled(aws: AwsEnv) -> None:
    client, reads = _counting_secretsmanager(aws)
    store = SecretStore(aws.resources.secret_id, client=cast(Any, client))
    assert store.get().webhook_token == aws.webhook_token
    first = store.refresh_if_due(30)
    assert first is not None
    assert first.webhook_token == aws.webhook_token
    assert store.refresh_if_due(30) is None
    assert len(reads) == 2
    assert store.refresh_if_due(0) is not None  # the interval is the caller's to choose
    assert len(reads) == 3
