"""The queue writer against moto over HTTP: messages split at SQS's 1 MiB, events too large for
any message recorded, and SendMessageBatch's partial failures resent or answered for.

Where SQS has to misbehave in a way moto never does, a thin proxy around a real moto client
changes only that, and says so."""

from __future__ import annotations

from typing import Any

from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.aws import sqs_client
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import REGION, AwsEnv
from tests.integration.conftest import Invoke
from tests.integration.test_webhook import account
from tests.support.auth import bearer
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
)
from tests.support.runtimes import use_webhook_clients

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


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
    use_webhook_clients(aws, sqs=proxy)
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
    use_webhook_clients(aws, sqs=proxy)
    receiver.outage(Fault(status=503))
    events = _invalid_and_transient(4)
    response = invoke_webhook(events, headers=bearer(aws))
    # Resending a malformed entry cannot help: one offer, then Segment is asked to resend.
    assert response.status == 503, response.body
    assert response.body["unqueued"] == 2
    assert proxy.victim_offers == 1
    queued = aws.drain_retry_queue() + aws.drain_dlq()
    assert len(queued) == 1  # the other message went through
