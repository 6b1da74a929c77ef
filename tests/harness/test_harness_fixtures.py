"""The shared fixtures in tests/conftest.py do what the other suites rely on."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from segment_raindrop.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv

# One attempt: the point is that the call fails, not how long botocore keeps trying.
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1)
IDENTIFY = [{"user_id": "u1", "traits": {"plan": "pro"}}]


def test_aws_fixture_configures_clients_built_from_the_environment(aws: AwsEnv) -> None:
    assert os.environ["RAINDROP_SECRET_ID"] == aws.resources.secret_id
    assert os.environ["RETRY_QUEUE_URL"] == aws.resources.retry_queue_url
    assert os.environ["DLQ_URL"] == aws.resources.dlq_url
    assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint_url
    # No endpoint, region or credentials passed: all of it comes from the environment.
    secrets = boto3.client("secretsmanager")
    value = secrets.get_secret_value(SecretId=os.environ["RAINDROP_SECRET_ID"])["SecretString"]
    assert json.loads(value) == aws.secret
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=os.environ["RETRY_QUEUE_URL"], MessageBody='{"x": 1}')
    assert aws.drain_retry_queue() == [{"x": 1}]


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
    assert os.environ["RAINDROP_API_URL"] == receiver.url
    with httpx.Client(base_url=receiver.url, trust_env=False, verify=False) as client:
        ok = client.post(
            "/users/identify",
            json=IDENTIFY,
            headers={"Authorization": f"Bearer {aws.raindrop_api_key}"},
        )
        wrong = client.post(
            "/users/identify",
            json=IDENTIFY,
            headers={"Authorization": f"Bearer {aws.webhook_token}"},
        )
        invalid = client.post(
            "/users/identify",
            json=[{"user_id": ""}],
            headers={"Authorization": f"Bearer {aws.raindrop_api_key}"},
        )
    assert (ok.status_code, wrong.status_code, invalid.status_code) == (200, 401, 400)
    assert "user_id" in invalid.json()["error"]  # the fixture validates Raindrop's item rules
    assert receiver.accepted("users/identify") == IDENTIFY


def test_sqs_unreachable_breaks_only_sqs_clients_from_the_environment(
    aws: AwsEnv, sqs_unreachable: str
) -> None:
    sqs = boto3.client("sqs", config=ONE_ATTEMPT)
    assert sqs.meta.endpoint_url == sqs_unreachable
    with pytest.raises(EndpointConnectionError):
        sqs.send_message(QueueUrl=aws.resources.retry_queue_url, MessageBody="{}")
    # Secrets Manager still reaches moto, and so do the fixture's pinned clients.
    secrets = boto3.client("secretsmanager", config=ONE_ATTEMPT)
    assert secrets.get_secret_value(SecretId=aws.resources.secret_id)["ARN"]
    aws.sqs.send_message(QueueUrl=aws.resources.dlq_url, MessageBody='{"ok": true}')
    assert aws.drain_dlq() == [{"ok": True}]


def test_secretsmanager_unreachable(aws: AwsEnv, secretsmanager_unreachable: str) -> None:
    secrets = boto3.client("secretsmanager", config=ONE_ATTEMPT)
    assert secrets.meta.endpoint_url == secretsmanager_unreachable
    with pytest.raises(EndpointConnectionError):
        secrets.get_secret_value(SecretId=aws.resources.secret_id)
    boto3.client("sqs", config=ONE_ATTEMPT).get_queue_url(QueueName="segment-raindrop-retry")


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
    monkeypatch.setenv("RETRY_QUEUE_URL", "leak")


def test_next_test_does_not_see_the_leak() -> None:
    assert "RAINDROP_API_URL" not in os.environ
    assert "UNRELATED_LEAK" not in os.environ
    assert "RETRY_QUEUE_URL" not in os.environ
