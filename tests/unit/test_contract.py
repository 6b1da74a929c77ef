"""The shared limits hold against what API Gateway actually hands Lambda (docs/wire.md §5).

An event's size is measured as UTF-8 JSON with quotes, backslashes and control characters
escaped and every other character as itself, the way JSON serialisers write by default
(API Gateway's own writer is not documented; docs/wire.md §5).
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.core.contract import (
    API_GATEWAY_ENVELOPE_BYTES,
    EVENT_BODY_BYTES,
    JSON_ESCAPING_ALLOWANCE,
    LAMBDA_MAX_INVOKE_BYTES,
    MAX_DECODED_BODY_BYTES,
    MAX_SDK_BODY_BYTES,
    SEGMENT_MAX_BATCH_SIZE,
    segment_batch_size,
)
from segment_raindrop_tools import samples
from segment_raindrop_tools.local.apigw import rest_proxy_event

# API Gateway's limit on the request line and headers together.
_HEADER_BYTES = 10_240


def _worst_case_event(body: bytes, *, path: str) -> dict[str, object]:
    # Header values full of characters JSON must escape, up to API Gateway's header limit.
    headers = [(f"X-Pad-{n}", '"\\' * 230) for n in range(_HEADER_BYTES // 480)]
    return rest_proxy_event(method="POST", path=path, headers=headers, body=body)


def _size(event: dict[str, object]) -> int:
    return len(json.dumps(event, ensure_ascii=False).encode())


def test_the_largest_library_body_fits_lambdas_invoke_payload() -> None:
    event = _worst_case_event(os.urandom(MAX_SDK_BODY_BYTES), path="/v1/batch")
    assert event["isBase64Encoded"] is True
    size = _size(event)
    assert size <= LAMBDA_MAX_INVOKE_BYTES
    # The envelope bound is what the arithmetic assumes, measured.
    envelope = size - len(base64.b64encode(b"x" * MAX_SDK_BODY_BYTES))
    assert envelope <= API_GATEWAY_ENVELOPE_BYTES


def test_a_library_body_a_little_over_it_would_not_fit() -> None:
    # Only the margin kept for the envelope separates the limit from Lambda's refusal.
    over = MAX_SDK_BODY_BYTES + API_GATEWAY_ENVELOPE_BYTES
    assert _size(_worst_case_event(os.urandom(over), path="/v1/batch")) > LAMBDA_MAX_INVOKE_BYTES


def _escaping(events: list[samples.Event]) -> float:
    body = samples.body(events)
    return len(json.dumps(body.decode(), ensure_ascii=False).encode()) / len(body)


@pytest.mark.parametrize(
    "traffic",
    [
        lambda: samples.chats(500, seed=3, prompt_chars=20),
        lambda: samples.chats(500, seed=4, prompt_chars=2_000),
        lambda: samples.batch(500, seed=5),
    ],
    ids=["short-chats", "long-chats", "mixed"],
)
def test_segment_json_grows_less_than_the_allowance_when_escaped(traffic: object) -> None:
    events = traffic()  # type: ignore[operator]
    assert 1.0 < _escaping(events) < JSON_ESCAPING_ALLOWANCE


@pytest.mark.parametrize(("seed", "prompt_chars"), [(1, 20), (2, 300), (3, 3_000)])
def test_a_batch_of_the_advised_size_reaches_the_function(seed: int, prompt_chars: int) -> None:
    # Webhooks (Actions) batches of the size the stack prints for their p99 event: the event
    # API Gateway hands Lambda fits, the webhook API's worst-case headers included.
    sample = samples.chats(200, seed=seed, prompt_chars=prompt_chars)
    sizes = sorted(len(samples.body([event])) for event in sample)
    p99 = sizes[int(len(sizes) * 0.99)]
    size = segment_batch_size(p99)
    events = (sample * (size // len(sample) + 1))[:size]
    event = _worst_case_event(samples.body(events), path="/segment")
    assert event["isBase64Encoded"] is False
    assert _size(event) <= LAMBDA_MAX_INVOKE_BYTES


def test_the_advised_batch_size_stays_within_segments_range() -> None:
    assert segment_batch_size(100) == SEGMENT_MAX_BATCH_SIZE
    assert segment_batch_size(EVENT_BODY_BYTES) == 1
    sizes = [segment_batch_size(n) for n in range(500, 32_001, 500)]
    assert sizes == sorted(sizes, reverse=True)
    with pytest.raises(ValueError, match="at least one byte"):
        segment_batch_size(0)


def test_the_webhook_admits_every_body_lambda_can_be_handed_by_default() -> None:
    config = ForwarderConfig(secret_id="s", retry_queue_url="r", dlq_url="d")
    assert config.max_body_bytes == MAX_DECODED_BODY_BYTES
    # A text body with nothing to escape in the smallest event: still within the limit.
    smallest = rest_proxy_event(method="POST", path="/segment", headers={}, body=b"x")
    room = LAMBDA_MAX_INVOKE_BYTES - _size(smallest) + 1
    assert room <= MAX_DECODED_BODY_BYTES
