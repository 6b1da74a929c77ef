"""The mirror's world for tests: the Raindrop SDK route's handler with moto's SQS, Secrets
Manager and DynamoDB over HTTP, the Raindrop stand-in and the Segment stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from segment_raindrop.adapters.aws import AwsClients
from segment_raindrop.handlers import raindrop_sdk
from segment_raindrop.service.runtime import build_runtime
from segment_raindrop_tools.local.apigw import LocalContext, rest_proxy_event
from segment_raindrop_tools.local.aws import (
    dynamodb_client,
    provision_partials_table,
    secretsmanager_client,
    sqs_client,
)
from segment_raindrop_tools.local.receiver import RaindropReceiver
from segment_raindrop_tools.local.segment_tracking import SegmentTrackingApi
from tests.support.auth import bearer

WRITE_KEY = "wk-test-write-key"


def track(n: int, **extra: Any) -> dict[str, Any]:
    """An ``events/track`` item as Raindrop's SDK sends it (``extra`` overrides fields)."""
    return {
        "event_id": f"ev-{n}",
        "user_id": "user-1",
        "event": "ai_interaction",
        "timestamp": "2026-11-29T10:00:00Z",
        "properties": {"latency_ms": n},
        "ai_data": {"model": "m", "input": f"question {n}", "output": f"answer {n}"},
        **extra,
    }


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


@dataclass
class MirrorEnv:
    aws: Any
    receiver: RaindropReceiver
    segment: SegmentTrackingApi
    table: str

    def post(
        self,
        endpoint: str,
        body: Any,
        *,
        key: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        content = raw if raw is not None else json.dumps(body).encode()
        event = rest_proxy_event(
            method="POST",
            path=f"/raindrop/v1/{endpoint}",
            headers={"Content-Type": "application/json"}
            | bearer(key or self.aws.raindrop_api_key)
            | (headers or {}),
            body=content,
        )
        answer = raindrop_sdk.handler(event, LocalContext(timeout_seconds=10))
        return Answer(answer["statusCode"], json.loads(answer["body"] or "{}"))

    def set_secret(self, **values: str) -> None:
        self.aws.secretsmanager.put_secret_value(
            SecretId=self.aws.resources.secret_id,
            SecretString=json.dumps({**self.aws.secret, **values}),
        )
        raindrop_sdk.runtime.reset()


@pytest.fixture
def env(aws: Any, receiver: RaindropReceiver) -> Iterator[MirrorEnv]:
    segment = SegmentTrackingApi(write_key=WRITE_KEY).start()
    table = provision_partials_table(endpoint_url=aws.endpoint_url, region="us-east-1")
    aws.configure(mirror={"segment_api_url": segment.url, "partials_table": table})
    mirror_env = MirrorEnv(aws, receiver, segment, table)
    mirror_env.set_secret(segment_write_key=WRITE_KEY)

    use_mirror_runtime(aws)
    try:
        yield mirror_env
    finally:
        raindrop_sdk.runtime.use(None)
        segment.stop()


def use_mirror_runtime(aws: Any, *, sqs_endpoint_url: str | None = None) -> None:
    """The mirror's handler builds its runtime on moto over HTTP (``sqs_endpoint_url``: SQS
    elsewhere, e.g. a closed port)."""

    def runtime() -> Any:
        clients = AwsClients(
            sqs=sqs_client(sqs_endpoint_url or aws.endpoint_url, "us-east-1"),
            secretsmanager=secretsmanager_client(aws.endpoint_url, "us-east-1"),
            dynamodb=dynamodb_client(aws.endpoint_url, "us-east-1"),
        )
        return build_runtime(aws.config, source="mirror", aws=clients)

    raindrop_sdk.runtime.use(runtime)
