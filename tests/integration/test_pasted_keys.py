"""Keys pasted into the secret with what a console adds: a trailing newline works, a character
no HTTP header can carry makes the key count as not set (a 503 naming the fix), never a crash."""

from __future__ import annotations

import json

from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
)

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def test_a_key_pasted_with_a_non_ascii_character_is_not_configured_not_a_crash(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": "rk-abc\u201d"}),
    )
    response = invoke_webhook([se.chat(0)], headers=bearer(aws))
    assert response.status == 503
    assert "not configured" in response.body["error"]
    assert receiver.requests == []


def test_a_key_pasted_with_a_trailing_newline_still_works(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": aws.raindrop_api_key + "\n"}),
    )
    response = invoke_webhook([se.chat(0)], headers=bearer(aws))
    assert (response.status, response.body["forwarded"]) == (200, 1)
