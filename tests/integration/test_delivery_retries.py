"""What the webhook retries within its budget: 408s, and Retry-After given as an HTTP date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.integration.test_webhook import account
from tests.support.auth import bearer
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
)

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def test_408_is_retried(aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke) -> None:
    receiver.inject(Fault(status=408), endpoint="events/track")
    events = [se.chat(0), se.chat(1)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    assert account(response, events, receiver, aws).delivered == {0, 1}
    assert [r.status for r in receiver.requests_to("events/track")] == [408, 200]


def test_a_retry_after_http_date_is_honoured(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # A minute from now is beyond RETRY_AFTER_CAP_SECONDS: queued at once, no second knock.
    # Read as anything but a date, the next attempt would have gone through.
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    receiver.inject(Fault(status=503, retry_after=when), endpoint="events/track")
    events = [se.chat(0)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.retry == {0}
    assert len(receiver.requests_to("events/track")) == 1
    [message] = ledger.retry_messages
    assert (message["reason"], message["status"], message["attempts"]) == ("transient", 503, 1)
