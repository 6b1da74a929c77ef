"""Fixtures to call the real Lambda handlers the way API Gateway and Lambda do."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from segment_raindrop.handlers import webhook
from segment_raindrop_tools.local.apigw import LocalContext, rest_proxy_event


@pytest.fixture(autouse=True)
def _immediate_retries(request: pytest.FixtureRequest) -> None:
    # Messages on the retry queue are normally delayed (RETRY_BASE_DELAY_SECONDS); tests read
    # them at once. test_retry_queue_messages_are_delayed covers the delay itself.
    if "aws" in request.fixturenames:
        request.getfixturevalue("aws").configure(retry_base_delay_seconds=0)


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


Invoke = Callable[..., WebhookResponse]


@pytest.fixture
def invoke_webhook() -> Invoke:
    """``invoke(body, headers=..., path=..., timeout=...)`` → the handler's answer."""

    def invoke(
        body: bytes | str | Any,
        *,
        headers: dict[str, str] | None = None,
        path: str = "/segment",
        method: str = "POST",
        timeout: float = 10.0,
    ) -> WebhookResponse:
        if isinstance(body, str):
            raw = body.encode()
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = json.dumps(body).encode()
        event = rest_proxy_event(
            method=method,
            path=path,
            headers={"Content-Type": "application/json", **(headers or {})},
            body=raw,
        )
        answer = webhook.handler(event, LocalContext(timeout_seconds=timeout))
        return WebhookResponse(
            status=answer["statusCode"],
            body=json.loads(answer["body"]) if answer.get("body") else {},
            headers=dict(answer.get("headers") or {}),
        )

    return invoke
