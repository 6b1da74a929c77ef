"""Guards for the "nothing lost" promise that a mutation run (``make mutate``) found unguarded.

Each test fails on a specific behaviour-changing edit listed in ``bench/mutants.py``; the
comment above it says which. Everything is real: moto's server over HTTP, the fault-injecting
receiver, the forwarder's own QueueWriter. Where SQS has to misbehave in a way moto never does,
a thin proxy around a real moto client changes only that, and says so.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, cast

import pytest

from segment_raindrop.adapters.aws import AwsClients
from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.adapters.secrets import SecretStore
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.handlers import webhook
from segment_raindrop.service.replay.options import ReplayOptions
from segment_raindrop.service.replay.replayer import Replayer
from segment_raindrop.service.runtime import build_runtime
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.apigw import LocalContext, rest_proxy_event
from segment_raindrop_tools.local.aws import secretsmanager_client, sqs_client
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.queues import drain_messages
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import REGION, AwsEnv
from tests.integration.conftest import Invoke, WebhookResponse
from tests.integration.test_webhook import account, bearer
from tests.support.queues import (
    FIRST_FAILURE,
    assert_delivered_once,
    bodies,
    fast,
    fresh_runtimes,
    make_replayer,
    put_message,
    raw_dlq,
    run_retry_worker,
)

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def _use_webhook_clients(aws: AwsEnv, *, sqs: Any = None, secretsmanager: Any = None) -> None:
    """The webhook's runtime, built as usual from ``aws.config`` but with these clients."""
    default = aws.clients()
    clients = AwsClients(
        sqs=sqs if sqs is not None else default.sqs,
        secretsmanager=secretsmanager if secretsmanager is not None else default.secretsmanager,
    )
    webhook.runtime.use(lambda: build_runtime(aws.config, source="webhook", aws=clients))


# --- queueing: the 1 MiB split and SendMessageBatch's partial failures ----------------------


def test_failed_events_too_many_for_one_message_are_split_across_messages(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # 30 events of ~50 KB fail together: 1.5 MB will not fit one SQS message (1 MiB), nor one
    # SendMessageBatch call. Unsplit, SQS refuses them and Segment is told 503 on every resend.
    # (Breaker off: it would end the second chunk with another error, so a second message.)
    aws.configure(delivery={"breaker_failure_threshold": 0})
    receiver.outage(Fault(status=503))
    events = [se.chat(seq) for seq in range(30)]
    for event in events:
        event["properties"]["ai_data"]["output"] = "x" * 50_000
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200, response.body
    ledger = account(response, events, receiver, aws)
    assert ledger.retry == set(range(30))
    assert len(ledger.retry_messages) >= 2


def test_an_event_too_large_for_any_message_is_recorded_on_the_dead_letter_queue(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    receiver.outage(Fault(status=503))
    event = se.chat(0)
    event["properties"]["ai_data"]["output"] = "x" * 1_100_000
    response = invoke_webhook([event], headers=bearer(aws))
    assert response.status == 200, response.body
    assert (response.body["queued"], response.body["dead_lettered"]) == (0, 1)
    assert aws.drain_retry_queue() == []
    [message] = aws.drain_dlq()
    assert message["events"] == []
    [summary] = message["omitted"]
    assert summary["messageId"] == "msg-0"
    assert summary["bytes"] > 1_048_576


class _OneEntryFails:
    """A real moto SQS client whose SendMessageBatch fails one chosen entry.

    The first entry it is ever offered becomes the victim. Each time it is offered, the victim
    is *not sent* and reported in ``Failed`` the way SQS reports an entry it could not take
    (``sender_fault`` False: a service-side failure worth resending; True: a malformed entry);
    ``times`` limits how many offers fail (None: every one). The other entries go to moto as
    they are, and moto's answer about them is returned unchanged.
    """

    def __init__(self, real: Any, *, sender_fault: bool, times: int | None) -> None:
        self._real = real
        self._sender_fault = sender_fault
        self._times = times
        self.victim: str | None = None
        self.victim_offers = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        if self.victim is None:
            self.victim = Entries[0]["MessageBody"]
        failed = []
        sent = []
        for entry in Entries:
            if entry["MessageBody"] == self.victim:
                self.victim_offers += 1
                if self._times is None or self.victim_offers <= self._times:
                    failed.append(entry)
                    continue
            sent.append(entry)
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if sent:
            response = dict(self._real.send_message_batch(QueueUrl=QueueUrl, Entries=sent))
        response["Failed"] = [
            *response.get("Failed", []),
            *(
                {
                    "Id": entry["Id"],
                    "SenderFault": self._sender_fault,
                    "Code": "InvalidParameterValue" if self._sender_fault else "InternalError",
                    "Message": "injected by the test",
                }
                for entry in failed
            ),
        ]
        return response


def _invalid_and_transient(count: int) -> list[dict[str, Any]]:
    # Invalid events go to the dead-letter queue, the rest (Raindrop down) to the retry queue:
    # two messages, so one can fail while the other goes through.
    return [se.invalid(seq) if seq % 2 else se.chat(seq) for seq in range(count)]


def test_an_entry_sqs_failed_to_take_is_sent_again(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    proxy = _OneEntryFails(sqs_client(aws.endpoint_url, REGION), sender_fault=False, times=1)
    _use_webhook_clients(aws, sqs=proxy)
    receiver.outage(Fault(status=503))
    events = _invalid_and_transient(4)
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200, response.body
    ledger = account(response, events, receiver, aws)
    assert (ledger.retry, ledger.dead_letter) == ({0, 2}, {1, 3})
    assert proxy.victim_offers == 2  # refused once, then really sent


def test_an_entry_refused_as_malformed_is_answered_for_and_not_resent(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    proxy = _OneEntryFails(sqs_client(aws.endpoint_url, REGION), sender_fault=True, times=None)
    _use_webhook_clients(aws, sqs=proxy)
    receiver.outage(Fault(status=503))
    events = _invalid_and_transient(4)
    response = invoke_webhook(events, headers=bearer(aws))
    # Resending a malformed entry cannot help: one offer, then Segment is asked to resend.
    assert response.status == 503, response.body
    assert response.body["unqueued"] == 2
    assert proxy.victim_offers == 1
    queued = aws.drain_retry_queue() + aws.drain_dlq()
    assert len(queued) == 1  # the other message went through


# --- delivery: what is retried, and for how long ----------------------------------------------


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


# --- the webhook's input ------------------------------------------------------------------------


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
    response = invoke_webhook(compressed, headers={"Content-Encoding": "gzip", **bearer(aws)})
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


# --- credentials ----------------------------------------------------------------------------


def _counting_secretsmanager(aws: AwsEnv) -> tuple[Any, list[str]]:
    """A real Secrets Manager client, and the list its GetSecretValue calls are recorded in."""
    client = secretsmanager_client(aws.endpoint_url, REGION)
    reads: list[str] = []

    def record(**_: Any) -> None:
        reads.append("GetSecretValue")

    client.meta.events.register("before-call.secrets-manager.GetSecretValue", record)
    return client, reads


def test_refused_requests_re_read_the_secret_at_most_once_per_interval(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    client, reads = _counting_secretsmanager(aws)
    _use_webhook_clients(aws, secretsmanager=client)
    assert invoke_webhook([se.chat(0)], headers=bearer(aws)).status == 200
    assert len(reads) == 1  # read once, then cached
    for _ in range(4):
        refused = invoke_webhook([se.chat(1)], headers={"Authorization": "Bearer wrong"})
        assert refused.status == 401
    # A stranger's requests cannot turn into one Secrets Manager call each.
    assert len(reads) == 2


def test_the_forced_re_read_is_throttled(aws: AwsEnv) -> None:
    client, reads = _counting_secretsmanager(aws)
    store = SecretStore(aws.resources.secret_id, client=cast(Any, client))
    assert store.get().webhook_token == aws.webhook_token
    first = store.refresh_if_due(30)
    assert first is not None
    assert first.webhook_token == aws.webhook_token
    assert store.refresh_if_due(30) is None
    assert len(reads) == 2
    assert store.refresh_if_due(0) is not None  # the interval is the caller's to choose
    assert len(reads) == 3


# --- the retry worker ---------------------------------------------------------------------------


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_an_exhausted_message_that_ran_out_of_time_is_dead_lettered_as_transient(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    # Its last receive: what still fails goes to the dead-letter queue as "transient", the
    # reason operators replay by, even when this time it was the deadline that stopped it.
    aws.configure(delivery={"max_attempts": 5})  # the 2 s budget ends the attempts first
    retries = aws.resources.retry_max_receives - 1
    put_message(aws, QueueTarget.RETRY, [se.chat(1), se.identify(2)], retries=retries)
    receiver.outage(Fault(status=503, delay=30), endpoint="users/identify")

    run = run_retry_worker(aws)

    assert run.failed == 0
    assert_delivered_once(receiver, ["trace-1"])
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
    [dead] = bodies(drain_messages(aws.sqs, aws.resources.dlq_url))
    assert dead.events == [se.identify(2)]
    assert (dead.reason, dead.error) == (FailureReason.TRANSIENT, "timeout")


# --- replay -----------------------------------------------------------------------------------


class _RequeueGoesNowhere:
    """A real moto SQS client whose SendMessageBatch is sent to a queue that does not exist,
    so moto itself refuses it (``QueueDoesNotExist``); receives and deletes are untouched."""

    def __init__(self, real: Any, missing_queue_url: str) -> None:
        self._real = real
        self._missing = missing_queue_url
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.refused += 1
        return self._real.send_message_batch(**{**kwargs, "QueueUrl": self._missing})


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_replay_keeps_the_original_when_the_failing_rest_cannot_be_requeued(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1), se.invalid(2)])
    before = raw_dlq(aws)
    rt = aws.runtime("replay")
    sqs = _RequeueGoesNowhere(
        sqs_client(aws.endpoint_url, REGION), aws.resources.dlq_url + "-missing"
    )
    replayer = Replayer(
        sqs=cast(Any, sqs),
        queue_url=aws.resources.dlq_url,
        channels=rt.channels,
        options=ReplayOptions(wait_seconds=0),
    )
    try:
        summary = replayer.run()
    finally:
        rt.close()
    assert sqs.refused >= 1
    assert_delivered_once(receiver, ["trace-1"])
    assert summary.messages_kept == 1
    assert summary.messages_deleted == 0
    assert any("could not be re-queued" in error for error in summary.errors)
    # The invalid event exists only in the original: it must still be there.
    assert raw_dlq(aws) == before


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_replay_rate_spaces_the_messages_out(
    aws: AwsEnv, receiver: RaindropReceiver, make_replayer: Callable[..., Replayer]
) -> None:
    for m in range(3):
        put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(10 * m), se.chat(10 * m + 1)])
    # 2 events per message at 2 events per second: a message a second, so the third message's
    # request comes at least ~2 s after the first. (A lower bound: a slow machine only adds.)
    summary = make_replayer(rate=2).run()
    assert summary.ok
    assert summary.messages_deleted == 3
    sent = [request.received_at for request in receiver.requests_to("events/track")]
    assert len(sent) == 3
    assert sent[-1] - sent[0] >= 1.5


@pytest.mark.usefixtures("fast", "fresh_runtimes")
def test_since_is_inclusive_and_until_exclusive(
    aws: AwsEnv, receiver: RaindropReceiver, make_replayer: Callable[..., Replayer]
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)], first_failure_at=FIRST_FAILURE)

    before = make_replayer(until=FIRST_FAILURE).run()
    assert (before.messages_selected, before.messages_skipped) == (0, 1)
    assert receiver.requests == []

    since = make_replayer(since=FIRST_FAILURE, reason=FailureReason.TRANSIENT).run()
    assert (since.messages_selected, since.messages_deleted) == (1, 1)
    assert_delivered_once(receiver, ["trace-1"])
