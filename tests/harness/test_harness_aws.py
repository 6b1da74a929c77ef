"""Provisioning on the moto server, and the queue helpers, including moto's semantics."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING

import pytest

from segment_raindrop_tools.local.aws import (
    DLQ_RETENTION_SECONDS,
    MAX_MESSAGE_BYTES,
    LocalResources,
    provision,
)
from segment_raindrop_tools.local.moto import MotoServer
from segment_raindrop_tools.local.queues import (
    drain_messages,
    drain_queue,
    peek_messages,
    peek_queue,
)
from tests.conftest import AwsEnv

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SECRET = {"raindrop_api_key": "rk", "webhook_token": "wt", "segment_shared_secret": "ss"}


def attributes(sqs: SQSClient, url: str) -> dict[str, str]:
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def send(sqs: SQSClient, url: str, n: int) -> None:
    for start in range(0, n, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"i": i})}
                for i in range(start, min(n, start + 10))
            ],
        )


def test_provision_creates_the_runtime_contract(aws: AwsEnv) -> None:
    resources = aws.resources
    retry = attributes(aws.sqs, resources.retry_queue_url)
    dlq = attributes(aws.sqs, resources.dlq_url)

    assert resources.retry_queue_url.endswith("/segment-raindrop-retry")
    assert resources.dlq_url.endswith("/segment-raindrop-dlq")
    assert json.loads(retry["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": 8,
    }
    assert retry["VisibilityTimeout"] == "360"
    assert dlq["MessageRetentionPeriod"] == str(DLQ_RETENTION_SECONDS) == "1209600"
    assert int(retry["MessageRetentionPeriod"]) < DLQ_RETENTION_SECONDS
    assert dlq["MaximumMessageSize"] == retry["MaximumMessageSize"] == "1048576"
    assert "RedrivePolicy" not in dlq

    assert resources.secret_id.startswith(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:segment-raindrop/forwarder-"
    )
    by_arn = aws.secretsmanager.get_secret_value(SecretId=resources.secret_id)
    by_name = aws.secretsmanager.get_secret_value(SecretId="segment-raindrop/forwarder")
    assert json.loads(by_arn["SecretString"]) == aws.secret == json.loads(by_name["SecretString"])
    assert set(aws.secret) == {"raindrop_api_key", "webhook_token", "segment_shared_secret"}


def test_environment_names_everything_the_forwarder_reads(aws: AwsEnv) -> None:
    r = aws.resources
    assert r.environment() == {
        "RAINDROP_SECRET_ID": r.secret_id,
        "RETRY_QUEUE_URL": r.retry_queue_url,
        "DLQ_URL": r.dlq_url,
        "RETRY_MAX_ATTEMPTS": "8",
        "AWS_ENDPOINT_URL": aws.endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def test_environment_for_real_aws_leaves_endpoint_and_credentials_alone() -> None:
    resources = LocalResources(
        secret_id="arn:x", retry_queue_url="q", dlq_url="d", region="eu-west-1", endpoint_url=None
    )
    env = resources.environment()
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert not {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def test_provision_again_updates_in_place(aws: AwsEnv) -> None:
    again = provision(
        endpoint_url=aws.endpoint_url,
        secret={"raindrop_api_key": "rotated"},
        retry_max_receives=3,
    )
    assert again.retry_queue_url == aws.resources.retry_queue_url
    assert again.secret_id == aws.resources.secret_id
    assert again.environment()["RETRY_MAX_ATTEMPTS"] == "3"
    policy = json.loads(attributes(aws.sqs, again.retry_queue_url)["RedrivePolicy"])
    assert policy["maxReceiveCount"] == 3
    value = aws.secretsmanager.get_secret_value(SecretId=again.secret_id)["SecretString"]
    assert json.loads(value) == {"raindrop_api_key": "rotated"}


def test_provision_with_a_prefix_makes_separate_resources(aws: AwsEnv) -> None:
    other = provision(
        endpoint_url=aws.endpoint_url,
        secret=SECRET,
        secret_name="other/forwarder",
        prefix="other",
    )
    assert other.retry_queue_url.endswith("/other-retry")
    assert other.secret_id != aws.resources.secret_id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": {"webhook_token": "x"}}, "needs a raindrop_api_key"),
        ({"secret": {**SECRET, "raindrop_key": "x"}}, "unknown secret keys"),
        ({"secret": SECRET, "retry_max_receives": 0}, "between 1 and 1000"),
    ],
)
def test_provision_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        provision(endpoint_url="http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_queues_take_messages_up_to_one_mebibyte(aws: AwsEnv) -> None:
    # SQS counts the body and the message attributes; a body alone may use all of it.
    aws.sqs.send_message(QueueUrl=aws.resources.dlq_url, MessageBody="x" * MAX_MESSAGE_BYTES)
    with pytest.raises(aws.sqs.exceptions.ClientError, match="shorter than 1048576"):
        aws.sqs.send_message(
            QueueUrl=aws.resources.retry_queue_url, MessageBody="x" * (MAX_MESSAGE_BYTES + 1)
        )


def test_moto_refuses_a_maximum_message_size_above_one_mebibyte(aws: AwsEnv) -> None:
    with pytest.raises(aws.sqs.exceptions.ClientError, match="MaximumMessageSize"):
        aws.sqs.create_queue(QueueName="huge", Attributes={"MaximumMessageSize": "1048577"})


def test_drain_queue_takes_everything_in_batches(aws: AwsEnv) -> None:
    send(aws.sqs, aws.resources.dlq_url, 25)
    drained = drain_queue(aws.sqs, aws.resources.dlq_url)
    assert sorted(body["i"] for body in drained) == list(range(25))
    assert drain_queue(aws.sqs, aws.resources.dlq_url) == []
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_drain_messages_keeps_attributes(aws: AwsEnv) -> None:
    aws.sqs.send_message(
        QueueUrl=aws.resources.dlq_url,
        MessageBody='{"a": 1}',
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "rejected"}},
    )
    [message] = drain_messages(aws.sqs, aws.resources.dlq_url)
    assert message["MessageAttributes"]["reason"]["StringValue"] == "rejected"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in message["Attributes"]


def test_drain_queue_refuses_bodies_that_are_not_objects(aws: AwsEnv) -> None:
    aws.sqs.send_message(QueueUrl=aws.resources.dlq_url, MessageBody="[1]")
    with pytest.raises(TypeError, match="not a JSON object"):
        drain_queue(aws.sqs, aws.resources.dlq_url)


def test_peek_sees_every_message_once_and_leaves_them(aws: AwsEnv) -> None:
    url = aws.resources.dlq_url
    send(aws.sqs, url, 15)
    assert sorted(body["i"] for body in peek_queue(aws.sqs, url)) == list(range(15))
    # Still there and visible at once; the peek counted as a receive.
    messages = drain_messages(aws.sqs, url)
    assert len(messages) == 15
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in messages} == {"2"}


def test_receiving_with_zero_visibility_repeats_the_same_first_ten(aws: AwsEnv) -> None:
    # Why peek_messages hides what it has seen instead of receiving with VisibilityTimeout=0.
    url = aws.resources.dlq_url
    send(aws.sqs, url, 15)
    seen: set[int] = set()
    for _ in range(3):
        response = aws.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        seen |= {json.loads(m["Body"])["i"] for m in response["Messages"]}
    assert seen == set(range(10))


def test_redrive_after_max_receives_keeps_the_receive_count(aws: AwsEnv) -> None:
    resources = provision(
        endpoint_url=aws.endpoint_url, secret=SECRET, retry_max_receives=2, prefix="short"
    )
    aws.sqs.send_message(QueueUrl=resources.retry_queue_url, MessageBody='{"n": 1}')
    counts = []
    for _ in range(3):
        [*messages] = peek_messages(aws.sqs, resources.retry_queue_url)
        counts.append([m["Attributes"]["ApproximateReceiveCount"] for m in messages])
    # Received twice; the third receive finds it over maxReceiveCount and moves it instead.
    assert counts == [["1"], ["2"], []]
    [moved] = drain_messages(aws.sqs, resources.dlq_url)
    assert json.loads(moved["Body"]) == {"n": 1}
    # moto carries the count over (3: the moving receive counted) and sets no source ARN.
    assert moved["Attributes"]["ApproximateReceiveCount"] == "3"
    assert "DeadLetterQueueSourceArn" not in moved["Attributes"]


def test_reset_deletes_everything_and_new_secrets_get_new_arns(
    aws: AwsEnv, moto_server: MotoServer
) -> None:
    old_arn = aws.resources.secret_id
    moto_server.reset()
    assert aws.sqs.list_queues().get("QueueUrls", []) == []
    assert aws.secretsmanager.list_secrets()["SecretList"] == []
    again = provision(endpoint_url=aws.endpoint_url, secret=SECRET)
    assert again.retry_queue_url == aws.resources.retry_queue_url  # URLs are name-based
    assert again.secret_id != old_arn  # ARNs end in a random suffix


def test_a_busy_fixed_port_fails_fast_instead_of_hanging() -> None:
    # moto's own start() waits forever when its thread cannot bind.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = time.monotonic()
        with pytest.raises(OSError, match="already in use"):
            MotoServer(taken.getsockname()[1]).start()
    assert time.monotonic() - started < 1


def test_moto_server_properties(moto_server: MotoServer) -> None:
    assert moto_server.endpoint_url == f"http://127.0.0.1:{moto_server.port}"
    with pytest.raises(RuntimeError):
        moto_server.start()
    with pytest.raises(RuntimeError, match="never started"):
        _ = MotoServer().endpoint_url
