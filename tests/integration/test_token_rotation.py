"""Rotating the webhook token loses nothing: both tokens pass while Segment catches up.

The procedure in docs/deploy.md: put the new token in `webhook_token` and the old one in
`webhook_token_previous` (one secret update), change the header in Segment, and remove
`webhook_token_previous` once the webhook logs no request authenticated with it.
"""

from __future__ import annotations

import json
from typing import Any

from segment_raindrop_tools import events as se
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.logs import forwarder_logs


def _put_secret(aws: AwsEnv, **values: str) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id, SecretString=json.dumps({**aws.secret, **values})
    )


def _log_records(run: Any) -> list[dict[str, Any]]:
    with forwarder_logs() as buffer:
        run()
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def test_old_and_new_token_both_pass_during_a_rotation(
    aws: AwsEnv, receiver: Any, invoke_webhook: Invoke
) -> None:
    old, new = aws.webhook_token, "wt-rotated-new"
    assert invoke_webhook([se.chat(0)], headers=bearer(old)).status == 200
    _put_secret(aws, webhook_token=new, webhook_token_previous=old)
    answers: list[int] = []

    def segment_catches_up() -> None:
        # Requests still carrying the old token (Segment's header not changed yet, or its
        # retries), then the new one, in any order: none may get a 401, which Segment drops.
        for seq, token in enumerate((new, old, old, new, old), start=1):
            response = invoke_webhook([se.chat(seq)], headers=bearer(token))
            answers.append(response.status)
            assert response.body.get("forwarded") == 1

    records = _log_records(segment_catches_up)
    assert answers == [200] * 5
    methods = [r["auth"] for r in records if r.get("message") == "request processed"]
    # The log says which token each request used: the signal that the old one can go.
    previous = "bearer-previous-token"
    assert methods == ["bearer", previous, previous, "bearer", previous]
    for record in records:
        assert old not in json.dumps(record)
        assert new not in json.dumps(record)


def test_once_the_previous_token_is_removed_it_is_refused(
    aws: AwsEnv, receiver: Any, invoke_webhook: Invoke
) -> None:
    old, new = aws.webhook_token, "wt-rotated-new"
    _put_secret(aws, webhook_token=new)  # the rotation finished: no webhook_token_previous
    assert invoke_webhook([se.chat(0)], headers=bearer(new)).status == 200
    assert invoke_webhook([se.chat(1)], headers=bearer(old)).status == 401
