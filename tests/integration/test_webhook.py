"""The webhook handler against moto's server over HTTP and a real Raindrop receiver.

Every test checks the accounting: the receiver and the queues hold exactly the events the
counts say, no more, no fewer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from segment_raindrop.core.environment import to_environment
from segment_raindrop.core.request_auth import sign
from segment_raindrop.handlers import webhook
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.raindrop_items import check_raindrop_items
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke, WebhookResponse
from tests.support.auth import bearer
from tests.support.logs import forwarder_logs
from tests.support.segment import is_filtered


@dataclass
class Ledger:
    delivered: set[int]
    retry: set[int]
    dead_letter: set[int]
    retry_messages: list[dict[str, Any]]
    dlq_messages: list[dict[str, Any]]


def _delivered_seqs(receiver: RaindropReceiver) -> list[int]:
    seqs: list[int] = []
    for item in receiver.accepted():
        holder = item.get("properties") or item.get("traits") or {}
        if isinstance(holder.get("seq"), int):
            seqs.append(holder["seq"])
    return seqs


def account(
    response: WebhookResponse,
    events: list[dict[str, Any]],
    receiver: RaindropReceiver,
    aws: AwsEnv,
) -> Ledger:
    """Check the response's counts against what the receiver and both queues really hold."""
    counts = response.body
    assert counts["received"] == len(events)
    assert (
        counts["forwarded"] + counts["filtered"] + counts["queued"] + counts["dead_lettered"]
        == counts["received"]
    )
    delivered_list = _delivered_seqs(receiver)
    retry_messages = aws.drain_retry_queue()
    dlq_messages = aws.drain_dlq()
    retry_list = [e for m in retry_messages for e in m["events"]]
    dlq_list = [e for m in dlq_messages for e in m["events"]]
    ledger = Ledger(
        delivered=set(delivered_list),
        retry=se.seqs(retry_list),
        dead_letter=se.seqs(dlq_list),
        retry_messages=retry_messages,
        dlq_messages=dlq_messages,
    )
    filtered = {seq for seq, event in enumerate(events) if is_filtered(event)}
    assert len(ledger.retry) == len(retry_list) == counts["queued"]
    assert len(ledger.dead_letter) == len(dlq_list) == counts["dead_lettered"]
    # Each Segment event ends in exactly one place.
    places = [ledger.delivered, ledger.retry, ledger.dead_letter, filtered]
    assert sum(len(place) for place in places) == len(events)
    assert set().union(*places) == se.seqs(events)
    assert counts["forwarded"] == len(ledger.delivered)
    assert counts["filtered"] == len(filtered)
    return ledger


# --- delivery -----------------------------------------------------------------------------


def test_all_good_batch_is_delivered(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    events = se.mixed(250)
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200, response.body
    ledger = account(response, events, receiver, aws)
    assert response.body["forwarded"] == 225
    assert response.body["filtered"] == 25
    assert ledger.retry == ledger.dead_letter == set()
    assert not receiver.callback_errors
    # Mapped as docs/wire.md §3 says, and sent in chunks rather than one request per event.
    tracks = receiver.accepted("events/track")
    assert {item["event"] for item in tracks} == {"ai_interaction"}
    assert len(receiver.accepted("signals/track")) == 25
    assert len(receiver.requests) < 10


def test_single_event_body(aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke) -> None:
    event = se.chat(0)
    response = invoke_webhook(event, headers=bearer(aws))
    assert response.status == 200
    account(response, [event], receiver, aws)
    [item] = receiver.accepted("events/track")
    assert item["event_id"] == "trace-0"
    assert item["ai_data"]["output"] == "answer 0"
    assert "ai_data" not in item["properties"]


@pytest.mark.parametrize("path", ["/segment", "/v1/batch"])
def test_batch_envelope_with_basic_auth(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, path: str
) -> None:
    # What Segment's server libraries send: write key (our token) as the Basic user name.
    events = se.mixed(20)
    basic = base64.b64encode(f"{aws.webhook_token}:".encode()).decode()
    response = invoke_webhook(
        {"batch": events, "sentAt": se.TIMESTAMP, "context": {"library": {"name": "test"}}},
        headers={"Authorization": f"Basic {basic}"},
        path=path,
    )
    assert response.status == 200, response.body
    account(response, events, receiver, aws)


def test_server_error_then_success_is_retried(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    receiver.inject(Fault(status=500), endpoint="events/track")
    events = [se.chat(seq) for seq in range(5)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.delivered == set(range(5))
    statuses = [r.status for r in receiver.requests_to("events/track")]
    assert statuses == [500, 200]


def test_429_retry_after_is_honoured(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    receiver.inject(Fault(status=429, retry_after="1"), endpoint="events/track")
    events = [se.chat(seq) for seq in range(3)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    assert account(response, events, receiver, aws).delivered == {0, 1, 2}
    first, second = receiver.requests_to("events/track")
    assert second.received_at - first.received_at >= 0.95


def test_retry_after_beyond_the_cap_queues_at_once(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # Raindrop asks for 30 s, more than RETRY_AFTER_CAP_SECONDS (5): no second knock now.
    receiver.inject(Fault(status=429, retry_after="30"), endpoint="events/track")
    events = [se.chat(seq) for seq in range(3)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.retry == {0, 1, 2}
    assert len(receiver.requests_to("events/track")) == 1
    # "transient" after one attempt: it gave up at once (waiting would have run into the
    # deadline and said "deadline").
    [message] = ledger.retry_messages
    assert message["reason"] == "transient"
    assert message["status"] == 429
    assert message["attempts"] == 1


def test_retry_after_beyond_the_budget_queues_instead_of_waiting(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.configure(delivery={"budget_seconds": 1})
    receiver.inject(Fault(status=429, retry_after="3"), endpoint="events/track")
    events = [se.chat(seq) for seq in range(3)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.retry == {0, 1, 2}
    assert len(receiver.requests_to("events/track")) == 1
    # The 429 and its attempt are on record: delivery stopped instead of sleeping past the
    # deadline (the session would then have given up on it with "attempts: 0", no status).
    [message] = ledger.retry_messages
    assert message["reason"] == "deadline"
    assert message["status"] == 429
    assert message["attempts"] == 1


def test_retry_queue_messages_are_delayed(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.configure(retry_base_delay_seconds=60)
    receiver.outage(Fault(status=503))
    response = invoke_webhook([se.chat(0)], headers=bearer(aws))
    assert response.body["queued"] == 1
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.resources.retry_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    assert attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesDelayed": "1",
    }


def test_dropped_connection_is_retried(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    receiver.inject(Fault(drop=True), endpoint="events/track")
    events = [se.chat(seq) for seq in range(4)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    assert account(response, events, receiver, aws).delivered == {0, 1, 2, 3}


def test_persistent_server_errors_go_to_the_retry_queue(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    receiver.outage(Fault(status=503), endpoint="events/track")
    events = [se.chat(0), se.chat(1), se.identify(2, user="user-2"), se.noise(3)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.delivered == {2}
    assert ledger.retry == {0, 1}
    [message] = ledger.retry_messages
    assert message["format"] == 1
    assert message["reason"] == "transient"
    assert message["status"] == 503
    assert message["attempts"] == 3
    assert message["request_id"]
    assert message["first_failure_at"].endswith("Z")
    # The original Segment events, not mapped items, so a retry re-runs the whole pipeline.
    assert [event["messageId"] for event in message["events"]] == ["msg-0", "msg-1"]
    assert aws.raindrop_api_key not in json.dumps(message)


def test_bad_request_from_raindrop_dead_letters_only_the_bad_item(
    aws: AwsEnv,
    receiver_factory: Any,
    invoke_webhook: Invoke,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def picky(endpoint: str, items: list[Any]) -> str | None:
        if any(item.get("properties", {}).get("seq") == 3 for item in items):
            return "item 3 is not acceptable"
        return check_raindrop_items(endpoint, items)

    receiver = receiver_factory(api_key=aws.raindrop_api_key, validator=picky)
    aws.configure(delivery={"raindrop_api_url": receiver.url})
    events = [se.chat(seq) for seq in range(8)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.dead_letter == {3}
    assert ledger.delivered == {0, 1, 2, 4, 5, 6, 7}
    [message] = ledger.dlq_messages
    assert message["reason"] == "rejected"
    assert message["status"] == 400
    assert "item 3 is not acceptable" in message["error"]


@pytest.mark.parametrize("fault", [Fault(status=400), Fault(status=503)], ids=["400", "503"])
def test_failed_enrichment_does_not_hold_back_its_event(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, fault: Fault
) -> None:
    # The traits identify derived from context.traits is a bonus: the interaction it came
    # with counts as forwarded (and is not sent again) whatever happens to it.
    receiver.outage(fault, endpoint="users/identify")
    event = se.chat(0)
    event["context"] = {"traits": {"plan": "pro"}}
    response = invoke_webhook([event], headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, [event], receiver, aws)
    assert ledger.delivered == {0}
    assert receiver.requests_to("users/identify")
    assert [item["event_id"] for item in receiver.accepted("events/track")] == ["trace-0"]


def test_other_client_errors_are_permanent(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    receiver.inject(Fault(status=404), endpoint="events/track")
    events = [se.chat(0), se.chat(1)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.dead_letter == {0, 1}
    assert len(receiver.requests_to("events/track")) == 1


def test_payload_too_large_splits_the_chunk(
    aws: AwsEnv, receiver_factory: Any, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = receiver_factory(
        api_key=aws.raindrop_api_key, validator=check_raindrop_items, max_body_bytes=2_000
    )
    aws.configure(delivery={"raindrop_api_url": receiver.url})
    events = [se.chat(seq) for seq in range(12)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.delivered == set(range(12))
    assert 413 in {r.status for r in receiver.requests}


def test_invalid_events_are_dead_lettered_with_their_reason(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    events = [se.chat(0), se.invalid(1), se.chat(2)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.dead_letter == {1}
    [message] = ledger.dlq_messages
    assert message["reason"] == "invalid"
    assert message["error"] == "event has no userId or anonymousId"


def test_slow_receiver_answers_within_budget_and_queues_the_rest(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.configure(delivery={"budget_seconds": 1})
    receiver.set_latency(5)
    events = [se.chat(seq) for seq in range(30)]
    response = invoke_webhook(events, headers=bearer(aws))
    # Accounted for at the moment we answered: the receiver is still sitting on the requests.
    ledger = account(response, events, receiver, aws)
    assert response.status == 200
    assert ledger.retry == set(range(30))
    assert receiver.connections_accepted == 1
    # The attempt's read timeout was clipped to the deadline, so it timed out and was recorded
    # as such; unclipped, it would still be blocked when the session stopped waiting for it
    # ("attempts: 0", "deadline"), holding a pool thread.
    [message] = ledger.retry_messages
    assert (message["reason"], message["attempts"], message["error"]) == ("deadline", 1, "timeout")


def test_budget_is_clipped_to_the_lambda_remaining_time(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # 3 s left less 2.5 s kept for queueing: half a second to deliver. One attempt, timed out
    # at that deadline; against the 7 s budget it would have been two, and too late to queue.
    receiver.set_latency(5)
    events = [se.chat(0)]
    response = invoke_webhook(events, headers=bearer(aws), timeout=3.0)
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.retry == {0}
    assert receiver.connections_accepted == 1
    [message] = ledger.retry_messages
    assert (message["reason"], message["attempts"], message["error"]) == ("deadline", 1, "timeout")


def test_connection_refused_goes_to_the_retry_queue(
    aws: AwsEnv,
    receiver: RaindropReceiver,
    invoke_webhook: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
) -> None:
    aws.configure(delivery={"raindrop_api_url": f"http://127.0.0.1:{closed_port}/v1"})
    events = [se.chat(0), se.chat(1)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.retry == {0, 1}
    [message] = ledger.retry_messages
    assert message["reason"] == "transient"
    assert message["error"] == "ConnectError"


def test_sqs_down_asks_segment_to_resend(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, sqs_unreachable: str
) -> None:
    receiver.outage(Fault(status=500))
    events = [se.chat(0), se.chat(1)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 503
    assert response.body["unqueued"] == 2
    assert receiver.accepted() == []
    assert aws.drain_retry_queue() == aws.drain_dlq() == []


def test_a_hanging_sqs_still_gets_an_answer_before_the_lambda_times_out(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port that takes connections and never answers: the SQS client waits 30 s per attempt,
    # and retries, far past the 5 s Lambda timeout, unless the writer stops waiting itself.
    lambda_timeout = 5.0
    answers: list[WebhookResponse] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        aws.unreachable("sqs", f"http://127.0.0.1:{silent.getsockname()[1]}")
        receiver.outage(Fault(status=500))
        caller = threading.Thread(
            target=lambda: answers.append(
                invoke_webhook(
                    [se.chat(0), se.chat(1)],
                    headers=bearer(aws),
                    timeout=lambda_timeout,
                )
            ),
            daemon=True,
        )
        caller.start()
        # Generous: it answers at the queueing deadline (timeout less 0.5 s); waiting on the
        # SQS client instead would take minutes.
        caller.join(lambda_timeout + 15)
        assert answers, "the webhook did not answer"
        # It answered with the SQS call still unanswered, not after botocore gave up on it.
        silent.setblocking(False)
        held, _ = silent.accept()
        with held:
            held.setblocking(True)
            held.settimeout(2.0)
            assert held.recv(4).startswith(b"POST")
            held.setblocking(False)
            while True:
                try:
                    assert held.recv(65_536) != b"", "SQS's client had already given up"
                except BlockingIOError:
                    break  # open, and waiting for SQS's answer
        # And SQS was asked once: no attempt was started after the queueing deadline.
        with pytest.raises(BlockingIOError):
            silent.accept()
    [response] = answers
    assert response.status == 503
    assert response.body["unqueued"] == 2


def test_sqs_down_does_not_matter_when_everything_is_delivered(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, sqs_unreachable: str
) -> None:
    events = [se.chat(0), se.noise(1)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    assert response.body["forwarded"] == 1


def test_rotated_raindrop_key_is_picked_up_after_401(
    aws: AwsEnv, receiver_factory: Any, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Warm the cache with the old key, then rotate it in Secrets Manager and at Raindrop.
    old = receiver_factory(api_key=aws.raindrop_api_key, validator=check_raindrop_items)
    aws.configure(delivery={"raindrop_api_url": old.url})
    assert invoke_webhook(se.chat(0), headers=bearer(aws)).status == 200
    rotated = {**aws.secret, "raindrop_api_key": "rk-rotated"}
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id, SecretString=json.dumps(rotated)
    )
    old.stop()
    new = receiver_factory(api_key="rk-rotated", validator=check_raindrop_items, port=old.port)
    aws.drain_retry_queue()
    events = [se.chat(1)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    assert account(response, events, new, aws).delivered == {1}
    assert [r.status for r in new.requests] == [401, 200]


def test_401_with_an_unreadable_secret_is_a_rejection_not_a_crash(
    aws: AwsEnv, receiver_factory: Any, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = receiver_factory(api_key=aws.raindrop_api_key, validator=check_raindrop_items)
    aws.configure(delivery={"raindrop_api_url": old.url})
    assert invoke_webhook(se.chat(0), headers=bearer(aws)).status == 200  # secret now cached
    aws.secretsmanager.delete_secret(
        SecretId=aws.resources.secret_id, ForceDeleteWithoutRecovery=True
    )
    old.stop()
    new = receiver_factory(api_key="rk-other", validator=check_raindrop_items, port=old.port)
    aws.drain_retry_queue()
    events = [se.chat(1)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, new, aws)
    assert ledger.dead_letter == {1}
    assert ledger.dlq_messages[0]["status"] == 401


def test_wrong_raindrop_key_is_dead_lettered(
    aws: AwsEnv, receiver_factory: Any, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = receiver_factory(api_key="some-other-key", validator=check_raindrop_items)
    aws.configure(delivery={"raindrop_api_url": receiver.url})
    events = [se.chat(0)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 200
    ledger = account(response, events, receiver, aws)
    assert ledger.dead_letter == {0}
    assert ledger.dlq_messages[0]["status"] == 401


# --- refusals -----------------------------------------------------------------------------


def _nothing_happened(receiver: RaindropReceiver, aws: AwsEnv) -> None:
    assert receiver.requests == []
    assert aws.drain_retry_queue() == aws.drain_dlq() == []


def test_secret_missing_is_503(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.secretsmanager.delete_secret(
        SecretId=aws.resources.secret_id, ForceDeleteWithoutRecovery=True
    )
    response = invoke_webhook(se.chat(0), headers=bearer(aws))
    assert response.status == 503
    assert response.body == {"error": "forwarder secret is unavailable"}
    _nothing_happened(receiver, aws)


@pytest.mark.parametrize("placeholder", ["REPLACE_ME", ""])
def test_placeholder_raindrop_key_is_503(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, placeholder: str
) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": placeholder}),
    )
    response = invoke_webhook(se.chat(0), headers=bearer(aws))
    assert response.status == 503
    assert "not configured" in response.body["error"]
    _nothing_happened(receiver, aws)


CONFIGURATION_INVALID = "forwarder configuration is invalid; its log says which setting"


def test_bad_configuration_is_503_naming_the_variable_in_the_log_only(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment reader, as Lambda runs it, with one bad variable. The configuration is
    # read before anyone is authenticated: a stranger must not learn it from the answer.
    for name, value in {**to_environment(aws.config), "CHUNK_MAX_ITEMS": "lots"}.items():
        monkeypatch.setenv(name, value)
    webhook.runtime.use(None)
    answers: list[WebhookResponse] = []
    logs = _captured_logs(lambda: answers.append(invoke_webhook(se.chat(0))))
    [response] = answers
    assert response.status == 503
    assert response.body == {"error": CONFIGURATION_INVALID}
    assert "CHUNK_MAX_ITEMS" in logs
    _nothing_happened(receiver, aws)


def test_whole_body_signature(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    event = se.chat(0)
    body = json.dumps(event).encode()
    response = invoke_webhook(body, headers={"X-Signature": sign(body, aws.segment_shared_secret)})
    assert response.status == 200
    account(response, [event], receiver, aws)


def _first_element_signed_batch(aws: AwsEnv, events: list[dict[str, Any]]) -> tuple[bytes, str]:
    # JavaScript's JSON.stringify output: compact, and numbers like 1e+21 kept verbatim.
    first = json.dumps(events[0], separators=(",", ":"))
    first = first.replace('"input_tokens":12', '"input_tokens":1e+21')
    rest = ",".join(json.dumps(event, separators=(",", ":")) for event in events[1:])
    body = f"[{first},{rest}]".encode()
    return body, sign(first.encode(), aws.segment_shared_secret)


def test_first_element_signature_of_a_batch_with_the_token(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    events = [se.chat(0), se.chat(1), se.noise(2)]
    body, signature = _first_element_signed_batch(aws, events)
    response = invoke_webhook(body, headers={"x-signature": signature, **bearer(aws)})
    assert response.status == 200, response.body
    account(response, events, receiver, aws)


def test_first_element_signature_alone_refuses_a_batch_when_a_token_exists(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # The signature covers event 0 only: a signed event with forged ones appended.
    events = [se.chat(0), se.chat(1)]
    body, signature = _first_element_signed_batch(aws, events)
    response = invoke_webhook(body, headers={"x-signature": signature})
    assert response.status == 401
    _nothing_happened(receiver, aws)


def test_first_element_signature_alone_with_only_a_shared_secret(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # Without a token nothing covers events 2..n: a forged tail could ride on one signed event.
    # Refusing with a 4xx would make Segment drop the batch, so it is a 503 naming the fix.
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps(
            {
                "raindrop_api_key": aws.raindrop_api_key,
                "segment_shared_secret": aws.segment_shared_secret,
            }
        ),
    )
    events = [se.chat(0), se.chat(1), se.noise(2)]
    body, signature = _first_element_signed_batch(aws, events)
    response = invoke_webhook(body, headers={"x-signature": signature})
    assert response.status == 503, response.body
    assert "webhook_token" in response.body["error"]
    assert receiver.requests == []
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
    assert aws.queue_depth(aws.resources.dlq_url) == 0
    # One event signed over itself is the whole body: still accepted.
    only = json.dumps(se.chat(3), separators=(",", ":"))
    alone = invoke_webhook(
        f"[{only}]", headers={"x-signature": sign(only.encode(), aws.segment_shared_secret)}
    )
    assert alone.status == 200, alone.body
    assert alone.body["forwarded"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic d3Jvbmc6"},
        {"X-Signature": "0" * 40},
        {"Authorization": "Token something"},
    ],
    ids=["missing", "wrong-bearer", "wrong-basic", "wrong-signature", "unknown-scheme"],
)
def test_bad_credentials_are_401(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, headers: dict[str, str]
) -> None:
    response = invoke_webhook([se.chat(0)], headers=headers)
    assert response.status == 401
    assert response.body == {"error": "unauthorized"}
    _nothing_happened(receiver, aws)


def test_a_just_changed_webhook_token_is_accepted_at_once(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # Segment drops 401s: a token changed in Secrets Manager must not wait for the cache.
    assert invoke_webhook([se.chat(0)], headers=bearer(aws)).status == 200  # cached
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "webhook_token": "wt-new"}),
    )
    events = [se.chat(1)]
    response = invoke_webhook(events, headers={"Authorization": "Bearer wt-new"})
    assert response.status == 200
    assert response.body["forwarded"] == 1
    # The old token is now refused, and a refused request does not re-read again at once.
    assert invoke_webhook([se.chat(2)], headers=bearer(aws)).status == 401


def test_no_credentials_configured_refuses_everything(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({"raindrop_api_key": aws.raindrop_api_key}),
    )
    response = invoke_webhook([se.chat(0)], headers=bearer(aws))
    assert response.status == 401
    _nothing_happened(receiver, aws)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"42", "JSON object or array"),
        (b'"text"', "JSON object or array"),
        (b"", "empty"),
        (b'{"batch": {"type": "track"}}', "'batch' must be a JSON array"),
        (b"[NaN]", "NaN"),
    ],
)
def test_malformed_bodies_are_400(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, body: bytes, problem: str
) -> None:
    response = invoke_webhook(body, headers=bearer(aws))
    assert response.status == 400
    assert problem in response.body["error"]
    _nothing_happened(receiver, aws)


def test_oversized_body_is_413(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.configure(max_body_bytes=4096)
    events = [se.chat(seq) for seq in range(20)]
    response = invoke_webhook(events, headers=bearer(aws))
    assert response.status == 413
    _nothing_happened(receiver, aws)


def test_unknown_route_is_404(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    response = invoke_webhook([se.chat(0)], headers=bearer(aws), path="/elsewhere")
    assert response.status == 404
    _nothing_happened(receiver, aws)


# --- logs ---------------------------------------------------------------------------------


def test_logs_hold_no_secret_prompt_or_trait(
    aws: AwsEnv,
    receiver_factory: Any,
    invoke_webhook: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prompt, trait = "PROMPT-TEXT-7f3a", "TRAIT-VALUE-9c1d"

    def echoing(endpoint: str, items: list[Any]) -> str | None:
        # A Raindrop that quotes the offending content back in its error.
        if any(prompt in json.dumps(item) for item in items):
            return f"cannot accept {prompt}"
        return check_raindrop_items(endpoint, items)

    receiver = receiver_factory(api_key=aws.raindrop_api_key, validator=echoing)
    aws.configure(delivery={"raindrop_api_url": receiver.url})
    chat = se.chat(0)
    chat["properties"]["ai_data"]["input"] = prompt
    chat["context"] = {"traits": {"email": trait}}
    bad = se.invalid(1)
    bad["properties"]["ai_data"]["output"] = prompt
    person = se.identify(2)
    person["traits"]["name"] = trait
    events = [chat, bad, person]
    with forwarder_logs() as buffer:
        assert invoke_webhook(events, headers=bearer(aws)).status == 200
        assert invoke_webhook(events, headers=bearer(trait)).status == 401
        assert invoke_webhook(b"{" + prompt.encode(), headers=bearer(aws)).status == 400
    captured = capsys.readouterr()
    logs = buffer.getvalue() + captured.out + captured.err
    assert "request refused" in logs
    assert "bad request body" in logs
    assert "request processed" in logs
    for secret in (prompt, trait, *aws.secret.values()):
        assert secret not in logs


def _captured_logs(run: Any) -> str:
    with forwarder_logs() as buffer:
        run()
    return buffer.getvalue()


def test_deletions_are_logged_with_a_keyed_hash_that_small_ids_do_not_reverse(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    deletion = {"type": "delete", "userId": "4711", "messageId": "del-1"}

    def run() -> None:
        assert invoke_webhook([deletion], headers=bearer(aws)).body["filtered"] == 1

    lines = [json.loads(line) for line in _captured_logs(run).splitlines() if line.startswith("{")]
    hashes = [line["user_hash"] for line in lines if "user_hash" in line]
    assert len(hashes) == 1
    # Brute force over small numeric ids with the unsalted hash finds nothing...
    unkeyed = {hashlib.sha256(str(n).encode()).hexdigest()[:16] for n in range(10_000)}
    assert hashes[0] not in unkeyed
    # ...while the deployment's own key (derived from its webhook token) reproduces it.
    key = hmac.new(aws.webhook_token.encode(), b"segment-raindrop user hash", "sha256").digest()
    assert hashes[0] == hmac.new(key, b"4711", "sha256").hexdigest()[:16]


def test_text_cut_mid_emoji_is_repaired_delivered_and_counted(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    chat = se.chat(0)
    chat["properties"]["ai_data"]["output"] = "Pricing \ud83d"
    body = json.dumps([chat]).encode()  # the lone surrogate travels as its \\ud83d escape

    answers: list[WebhookResponse] = []
    logs = _captured_logs(lambda: answers.append(invoke_webhook(body, headers=bearer(aws))))

    assert answers[0].status == 200
    assert answers[0].body["forwarded"] == 1
    (item,) = receiver.accepted("events/track")
    assert item["ai_data"]["output"] == "Pricing \ufffd"
    processed = [json.loads(line) for line in logs.splitlines() if "request processed" in line]
    assert processed[0]["texts_repaired"] == 1
    assert "Pricing" not in logs


def test_a_warm_webhook_stops_waiting_on_a_hanging_raindrop_then_resumes(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(
        delivery={
            "read_timeout_seconds": 0.3,
            "max_attempts": 1,
            "breaker_failure_threshold": 2,
            "breaker_cooldown_seconds": 0.5,
        }
    )
    receiver.set_latency(1.0)  # past the read timeout: Raindrop hangs
    events = [se.chat(seq) for seq in range(250)]  # three chunks of at most 100
    first = invoke_webhook(events, headers=bearer(aws))
    assert (first.status, first.body["queued"]) == (200, 250)
    attempted = receiver.connections_accepted

    # The breaker is open: the next request queues everything without calling Raindrop.
    second = invoke_webhook([se.chat(seq) for seq in range(300, 350)], headers=bearer(aws))
    assert (second.status, second.body["queued"]) == (200, 50)
    assert receiver.connections_accepted == attempted

    # Raindrop recovers; after the cool-down one probe goes through and delivery resumes.
    receiver.set_latency(0)
    time.sleep(0.6)
    third = invoke_webhook([se.chat(400)], headers=bearer(aws))
    assert (third.status, third.body["forwarded"]) == (200, 1)
    fourth = invoke_webhook([se.chat(seq) for seq in range(500, 520)], headers=bearer(aws))
    assert fourth.body["forwarded"] == 20


def test_attachments_not_in_raindrops_shape_are_dropped_counted_and_the_event_goes(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    chat = se.chat(0)
    chat["properties"]["attachments"] = [
        {"type": "code", "value": "SELECT 1", "language": "sql", "role": "output"},
        {"type": "video", "value": "x"},  # not a Raindrop attachment type
        "not an object",
    ]
    answers: list[WebhookResponse] = []
    logs = _captured_logs(lambda: answers.append(invoke_webhook([chat], headers=bearer(aws))))
    assert answers[0].body["forwarded"] == 1
    (item,) = receiver.accepted("events/track")
    assert item["attachments"] == [
        {"type": "code", "value": "SELECT 1", "language": "sql", "role": "output"}
    ]
    assert "attachments" not in item["properties"]
    processed = [json.loads(line) for line in logs.splitlines() if "request processed" in line]
    assert processed[0]["attachments_dropped"] == 2
