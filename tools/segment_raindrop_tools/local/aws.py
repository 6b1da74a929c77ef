"""The forwarder's AWS resources on a local endpoint (a moto server) for tests and local mode.

:func:`provision` creates what the deployed stack would: the secret, the retry queue and the
dead-letter queue, with the stack's own numbers (:mod:`segment_raindrop.core.contract`), and returns
them as :class:`LocalResources`. :func:`forwarder_clients` gives the forwarder's runtime the
clients to reach them: dummy credentials, never a shell's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

from segment_raindrop.adapters.aws import AWS_CLIENT_CONFIG, AwsClients
from segment_raindrop.core.contract import (
    DEFAULT_RETRY_MAX_RECEIVES,
    DLQ_RETENTION_DAYS,
    RETRY_RETENTION_DAYS,
    RETRY_TIMEOUT_SECONDS,
    SQS_MAX_MESSAGE_BYTES,
    VISIBILITY_TO_TIMEOUT_RATIO,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

__all__ = [
    "DLQ_RETENTION_SECONDS",
    "DUMMY_CREDENTIAL",
    "MAX_MESSAGE_BYTES",
    "RETRY_QUEUE_VISIBILITY_SECONDS",
    "LocalResources",
    "dynamodb_client",
    "forwarder_clients",
    "provision",
    "provision_partials_table",
    "secretsmanager_client",
    "sqs_client",
]

DUMMY_CREDENTIAL: Final = "testing"
_DAY: Final = 24 * 3600
MAX_MESSAGE_BYTES: Final = SQS_MAX_MESSAGE_BYTES  # moto 5.2.5 accepts SQS's 2025 maximum
DLQ_RETENTION_SECONDS: Final = DLQ_RETENTION_DAYS * _DAY
RETRY_QUEUE_RETENTION_SECONDS: Final = RETRY_RETENTION_DAYS * _DAY
RETRY_QUEUE_VISIBILITY_SECONDS: Final = RETRY_TIMEOUT_SECONDS * VISIBILITY_TO_TIMEOUT_RATIO
_SECRET_KEYS = frozenset(
    {"raindrop_api_key", "webhook_token", "segment_shared_secret", "segment_write_key"}
)
# The forwarder's own timeouts and retries; and no proxy from the environment, which botocore
# would otherwise use even for 127.0.0.1 (an empty mapping, not None, turns that lookup off).
_FORWARDER_LOCAL_CONFIG: Final = AWS_CLIENT_CONFIG.merge(Config(proxies={}))


def _client_options(
    endpoint_url: str | None, region: str, config: Config | None = None
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "region_name": region,
        "config": config
        or Config(
            connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}
        ),
    }
    if endpoint_url is not None:
        # Explicit dummy keys: real credentials must never be sent to a local endpoint, and a
        # machine without any must still work.
        options |= {
            "endpoint_url": endpoint_url,
            "aws_access_key_id": DUMMY_CREDENTIAL,
            "aws_secret_access_key": DUMMY_CREDENTIAL,
        }
    return options


def sqs_client(endpoint_url: str | None, region: str) -> SQSClient:
    """An SQS client for ``endpoint_url`` (None: AWS itself, with the usual credentials)."""
    return boto3.client("sqs", **_client_options(endpoint_url, region))


def secretsmanager_client(endpoint_url: str | None, region: str) -> SecretsManagerClient:
    return boto3.client("secretsmanager", **_client_options(endpoint_url, region))


def dynamodb_client(endpoint_url: str | None, region: str) -> DynamoDBClient:
    return boto3.client("dynamodb", **_client_options(endpoint_url, region))


def provision_partials_table(
    *, endpoint_url: str | None, region: str = "us-east-1", name: str = "segment-raindrop-partials"
) -> str:
    """The mirror's partial-events table as the stack makes it (on-demand, partition key
    ``event_id``, TTL on ``expires_at``); an existing one is kept. Returns its name."""
    client = dynamodb_client(endpoint_url, region)
    try:
        client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except client.exceptions.ResourceInUseException:
        return name
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    return name


def forwarder_clients(
    endpoint_url: str, region: str, *, sqs_endpoint_url: str | None = None
) -> AwsClients:
    """The clients a forwarder runtime uses against ``endpoint_url``: the deployed functions'
    timeouts and retries, dummy credentials, no proxy. ``sqs_endpoint_url`` sends the SQS
    calls elsewhere (the soak's fault-injecting proxy in front of the same emulator)."""
    options = _client_options(endpoint_url, region, _FORWARDER_LOCAL_CONFIG)
    sqs_options = _client_options(sqs_endpoint_url or endpoint_url, region, _FORWARDER_LOCAL_CONFIG)
    return AwsClients(
        sqs=boto3.client("sqs", **sqs_options),
        secretsmanager=boto3.client("secretsmanager", **options),
        dynamodb=boto3.client("dynamodb", **options),
    )


@dataclass(frozen=True)
class LocalResources:
    """What :func:`provision` created; ``secret_id`` is the secret's ARN."""

    secret_id: str
    retry_queue_url: str
    dlq_url: str
    region: str
    endpoint_url: str | None
    retry_max_receives: int = DEFAULT_RETRY_MAX_RECEIVES

    def environment(self) -> dict[str, str]:
        """The variables the forwarder's handlers need to run against these resources.

        With a local endpoint the AWS credentials are dummies; without one (real AWS) no
        endpoint or credentials are set, so the caller's own apply.
        """
        env = {
            "RAINDROP_SECRET_ID": self.secret_id,
            "RETRY_QUEUE_URL": self.retry_queue_url,
            "DLQ_URL": self.dlq_url,
            # Matches the redrive policy, as the architecture requires.
            "RETRY_MAX_ATTEMPTS": str(self.retry_max_receives),
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        if self.endpoint_url is not None:
            env |= {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
            }
        return env

    def sqs_client(self) -> SQSClient:
        return sqs_client(self.endpoint_url, self.region)

    def secretsmanager_client(self) -> SecretsManagerClient:
        return secretsmanager_client(self.endpoint_url, self.region)


def provision(
    *,
    endpoint_url: str | None,
    region: str = "us-east-1",
    secret: dict[str, str],
    secret_name: str = "segment-raindrop/forwarder",  # noqa: S107 - a name, not a secret
    retry_max_receives: int = DEFAULT_RETRY_MAX_RECEIVES,
    prefix: str = "segment-raindrop",
) -> LocalResources:
    """Create (or update, when they exist) the secret, the dead-letter and the retry queue."""
    unknown = set(secret) - _SECRET_KEYS
    if unknown:
        raise ValueError(f"unknown secret keys {sorted(unknown)}; expected {sorted(_SECRET_KEYS)}")
    if "raindrop_api_key" not in secret:
        raise ValueError("the secret needs a raindrop_api_key")
    if not 1 <= retry_max_receives <= 1000:
        raise ValueError("retry_max_receives must be between 1 and 1000 (the SQS limit)")

    secrets = secretsmanager_client(endpoint_url, region)
    secret_id = _put_secret(secrets, secret_name, json.dumps(secret))

    sqs = sqs_client(endpoint_url, region)
    dlq_url = _ensure_queue(
        sqs,
        f"{prefix}-dlq",
        {
            "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
        },
    )
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    retry_queue_url = _ensure_queue(
        sqs,
        f"{prefix}-retry",
        {
            "VisibilityTimeout": str(RETRY_QUEUE_VISIBILITY_SECONDS),
            "MessageRetentionPeriod": str(RETRY_QUEUE_RETENTION_SECONDS),
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": retry_max_receives}
            ),
        },
    )
    return LocalResources(
        secret_id=secret_id,
        retry_queue_url=retry_queue_url,
        dlq_url=dlq_url,
        region=region,
        endpoint_url=endpoint_url,
        retry_max_receives=retry_max_receives,
    )


def _put_secret(client: SecretsManagerClient, name: str, value: str) -> str:
    try:
        return client.create_secret(Name=name, SecretString=value)["ARN"]
    except client.exceptions.ResourceExistsException:
        # Local mode may run again against a moto server that still holds the secret.
        return client.put_secret_value(SecretId=name, SecretString=value)["ARN"]


def _ensure_queue(
    client: SQSClient, name: str, attributes: Mapping[QueueAttributeNameType, str]
) -> str:
    try:
        return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except client.exceptions.QueueNameExists:
        # The queue exists with other attributes (an earlier run with other settings).
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
        client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return url
