"""The shared limits hold against what API Gateway actually hands Lambda (docs/wire.md §5)."""

from __future__ import annotations

import base64
import json
import os

from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.core.contract import (
    API_GATEWAY_ENVELOPE_BYTES,
    LAMBDA_MAX_INVOKE_BYTES,
    MAX_ADMITTED_BODY_BYTES,
)
from segment_raindrop_tools.local.apigw import rest_proxy_event

# API Gateway's limit on the request line and headers together.
_HEADER_BYTES = 10_240


def _worst_case_event(body: bytes) -> dict[str, object]:
    # Header values full of characters JSON must escape, up to API Gateway's header limit.
    headers = [(f"X-Pad-{n}", '"\\' * 230) for n in range(_HEADER_BYTES // 480)]
    event = rest_proxy_event(method="POST", path="/segment", headers=headers, body=b"")
    event["body"] = base64.b64encode(body).decode("ascii")  # binary media type */*
    event["isBase64Encoded"] = True
    return event


def test_the_largest_admitted_body_fits_lambdas_invoke_payload() -> None:
    event = _worst_case_event(os.urandom(MAX_ADMITTED_BODY_BYTES))
    size = len(json.dumps(event).encode())
    assert size <= LAMBDA_MAX_INVOKE_BYTES
    # The envelope bound is what the arithmetic assumes, measured.
    envelope = size - len(event["body"])  # type: ignore[arg-type]
    assert envelope <= API_GATEWAY_ENVELOPE_BYTES


def test_a_body_a_little_over_it_would_not_fit() -> None:
    # Only the margin kept for the envelope separates the limit from Lambda's refusal.
    over = MAX_ADMITTED_BODY_BYTES + API_GATEWAY_ENVELOPE_BYTES
    event = _worst_case_event(os.urandom(over))
    assert len(json.dumps(event).encode()) > LAMBDA_MAX_INVOKE_BYTES


def test_the_webhook_admits_no_more_than_that_by_default() -> None:
    config = ForwarderConfig(secret_id="s", retry_queue_url="r", dlq_url="d")
    assert config.max_body_bytes == MAX_ADMITTED_BODY_BYTES
