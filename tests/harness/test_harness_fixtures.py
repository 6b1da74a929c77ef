"""The shared fixtures in tests/conftest.py do what the other suites rely on."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from segment_raindrop.handlers import retry_worker, webhook
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.support.auth import bearer

# One attempt: the point is that the call fails, not how long botocore keeps trying.
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1)
IDENTIFY = [{"user_id": "u1", "traits": {"plan": "pro"}}]


def test_aws_fixture_configures_the_forwarder_without_the_environment(aws: AwsEnv) -> None:
    assert aws.config.secret_id == aws.resources.secret_id
    assert aws.config.retry_queue_url == aws.resources.retry_queue_url
    assert aws.config.dlq_url == aws.resources.dlq_url
    assert not {"RAINDROP_SECRET_ID", "RETRY_QUEUE_URL", "DLQ_URL", "AWS_ENDPOINT_URL"} & set(
        os.environ
    )
    # The handlers build their runtimes from that configuration and clients bound to moto.
    rt = webhook.runtime.get()
    assert rt.config == aws.config
    assert rt.secrets.get().raindrop_api_key == aws.raindrop_api_key
    rt.sqs.send_message(QueueUrl=rt.config.retry_queue_url, MessageBody='{"x": 1}')
    assert aws.drain_retry_queue() == [{"x": 1}]


def test_configure_rebuilds_the_handlers_runtimes(aws: AwsEnv) -> None:
    before = retry_worker.runtime.get()
    aws.configure(delivery={"budget_seconds": 1.5}, mapping={"forward_identify": False})
    after = retry_worker.runtime.get()
    assert after is not before
    assert after.config.delivery.budget_seconds == 1.5
    assert after.config.mapping.forward_identify is False
    assert after.config.dlq_url == aws.resources.dlq_url


def test_aws_fixture_gives_each_test_fresh_secrets_and_empty_queues(aws: AwsEnv) -> None:
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
    assert aws.queue_depth(aws.resources.dlq_url) == 0
    assert len({aws.raindrop_api_key, aws.webhook_token, aws.segment_shared_secret}) == 3
    # Leave something behind: the next test must not see it.
    aws.sqs.send_message(QueueUrl=aws.resources.dlq_url, MessageBody='{"left": "over"}')
    assert aws.peek_dlq() == [{"left": "over"}]
    assert aws.queue_depth(aws.resources.dlq_url) == 1


def test_aws_fixture_again_starts_empty(aws: AwsEnv) -> None:
    assert aws.drain_dlq() == []


def test_receiver_fixture_expects_the_secret_key(aws: AwsEnv, receiver: RaindropReceiver) -> None:
    assert aws.config.delivery.raindrop_api_url == receiver.url
    with httpx.Client(base_url=receiver.url, trust_env=False, verify=False) as client:
        ok = client.post(
            "/users/identify",
            json=IDENTIFY,
            headers=bearer(aws.raindrop_api_key),
        )
        wrong = client.post(
            "/users/identify",
            json=IDENTIFY,
            headers=bearer(aws),
        )
        invalid = client.post(
            "/users/identify",
            json=[{"user_id": ""}],
            headers=bearer(aws.raindrop_api_key),
        )
    assert (ok.status_code, wrong.status_code, invalid.status_code) == (200, 401, 400)
    assert "user_id" in invalid.json()["error"]  # the fixture validates Raindrop's item rules
    assert receiver.accepted("users/identify") == IDENTIFY


def test_sqs_unreachable_breaks_only_the_forwarders_sqs_client(
    aws: AwsEnv, sqs_unreachable: str
) -> None:
    clients = aws.clients()
    assert clients.sqs.meta.endpoint_url == sqs_unreachable
    with pytest.raises(EndpointConnectionError):
        clients.sqs.send_message(QueueUrl=aws.resources.retry_queue_url, MessageBody="{}")
    # Secrets Manager still reaches moto, and so do the fixture's pinned clients.
    assert clients.secretsmanager.get_secret_value(SecretId=aws.resources.secret_id)["ARN"]
    aws.sqs.send_message(QueueUrl=aws.resources.dlq_url, MessageBody='{"ok": true}')
    assert aws.drain_dlq() == [{"ok": True}]


def test_secretsmanager_unreachable(aws: AwsEnv, secretsmanager_unreachable: str) -> None:
    clients = aws.clients()
    assert clients.secretsmanager.meta.endpoint_url == secretsmanager_unreachable
    with pytest.raises(EndpointConnectionError):
        clients.secretsmanager.get_secret_value(SecretId=aws.resources.secret_id)
    clients.sqs.get_queue_url(QueueName="segment-raindrop-retry")


def test_closed_port_refuses_connections(closed_port: int) -> None:
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", closed_port))


def test_free_port_can_be_bound(free_port: Callable[[], int]) -> None:
    port = free_port()
    with RaindropReceiver(port=port) as receiver:
        assert receiver.port == port


def test_environment_is_scrubbed_of_real_aws_settings() -> None:
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "127.0.0.1" in os.environ["NO_PROXY"].split(",")
    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "RAINDROP_API_URL"} & set(
        os.environ
    )


def test_leaky_test_writes_the_environment_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    os.environ["RAINDROP_API_URL"] = "http://leak.invalid"
    os.environ["UNRELATED_LEAK"] = "1"
    monkeypatch.setenv("AWS_PROFILE", "leak")


def test_next_test_does_not_see_the_leak() -> None:
    assert "RAINDROP_API_URL" not in os.environ
    assert "UNRELATED_LEAK" not in os.environ
    assert "AWS_PROFILE" not in os.environ
