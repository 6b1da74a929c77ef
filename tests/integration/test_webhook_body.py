"""The body the webhook reads: base64 as API Gateway passes it, and the size limit to the byte."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from segment_raindrop.handlers import webhook
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.apigw import LocalContext, rest_proxy_event
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke, WebhookResponse
from tests.support.auth import bearer
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
)

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def _invoke_raw(event: dict[str, Any]) -> WebhookResponse:
    answer = webhook.handler(event, LocalContext(timeout_seconds=10.0))
    return WebhookResponse(answer["statusCode"], json.loads(answer["body"]), {})


def test_base64_encoded_bodies_are_decoded(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # API Gateway base64-encodes binary bodies (a gzip body, or any body under "*/*").
    plain = json.dumps([se.chat(0)]).encode()
    event = rest_proxy_event(
        method="POST",
        path="/segment",
        headers={"Content-Type": "application/json", **bearer(aws)},
        body=plain,
    )
    event |= {"body": base64.b64encode(plain).decode(), "isBase64Encoded": True}
    assert _invoke_raw(event).body["forwarded"] == 1

    compressed = gzip.compress(json.dumps([se.chat(1)]).encode())
    response = invoke_webhook(
        compressed, headers={"Content-Encoding": "gzip", **bearer(aws)}, path="/v1/batch"
    )
    assert response.status == 200, response.body
    assert response.body["forwarded"] == 1
    assert [item["event_id"] for item in receiver.accepted()] == ["trace-0", "trace-1"]


def test_a_body_exactly_at_the_limit_is_accepted_and_one_byte_more_refused(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(max_body_bytes=4096)
    body = json.dumps([se.chat(0)]).encode()
    at_limit = body + b" " * (4096 - len(body))
    response = invoke_webhook(at_limit, headers=bearer(aws))
    assert response.status == 200, response.body
    assert response.body["forwarded"] == 1
    assert invoke_webhook(at_limit + b" ", headers=bearer(aws)).status == 413
