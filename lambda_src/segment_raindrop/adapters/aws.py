"""The AWS clients the functions call with: botocore's own, with timeouts fit for a caller
that is waiting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import botocore.session
from botocore.config import Config

from segment_raindrop.core.contract import DYNAMODB, SECRETS_MANAGER, SQS

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


def dynamodb_client() -> DynamoDBClient:
    """A DynamoDB client with the same bounded timeouts, for a runtime given none."""
    client = botocore.session.get_session().create_client(DYNAMODB, config=AWS_CLIENT_CONFIG)
    return cast("DynamoDBClient", client)
