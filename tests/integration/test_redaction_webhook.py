"""REDACT_PII and REDACT_KEYS through the real webhook handler: what Raindrop receives (the
recording receiver's items) holds no personal data, while the queues keep the original."""

from __future__ import annotations

import json

from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.logs import forwarder_logs

EMAIL = "jane.roe@example.com"
CARD = "4242 4242 4242 4242"
KEY = "sk-proj-" + "Ab3" * 10
PROMPT = f"My card is {CARD}, write to {EMAIL}, key {KEY}"


def _events() -> list[dict[str, object]]:
    chat = se.chat(
        1,
        input=PROMPT,
        support_email=EMAIL,
        billing={"card": CARD, "phone": "555-123-4567", "internal_note": "drop me"},
        internal_note="drop me too",
    )
    chat["context"] = {"traits": {"email": EMAIL, "internal_note": "x", "plan": "pro"}}
    identify = se.identify_call(
        {"email": EMAIL, "ip": "203.0.113.9", "internal_note": "x"},
        userId="user-2",
        messageId="msg-2",
        timestamp=se.TIMESTAMP,
    )
    return [chat, identify]


def test_items_raindrop_receives_are_redacted(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(mapping={"redact_pii": True, "redact_keys": ["internal_note"]})

    with forwarder_logs() as buffer:
        response = invoke_webhook(_events(), headers=bearer(aws))

    assert response.status == 200, response.body
    assert response.body["forwarded"] == 2
    sent = b"".join(request.body for request in receiver.requests).decode()
    for secret in (EMAIL, CARD, KEY, "555-123-4567", "203.0.113.9", "drop me", "internal_note"):
        assert secret not in sent
    [track] = receiver.accepted("events/track")
    assert track["ai_data"]["input"] == (
        "My card is <REDACTED_CARD>, write to <REDACTED_EMAIL>, key <REDACTED_CREDENTIAL>"
    )
    assert track["properties"]["support_email"] == "<REDACTED_EMAIL>"
    assert track["properties"]["billing"] == {
        "card": "<REDACTED_CARD>",
        "phone": "<REDACTED_PHONE>",
    }
    identifies = {item["user_id"]: item["traits"] for item in receiver.accepted("users/identify")}
    assert identifies == {
        "user-1": {"email": "<REDACTED_EMAIL>", "plan": "pro"},
        "user-2": {"email": "<REDACTED_EMAIL>", "ip": "<REDACTED_IP>"},
    }
    # The log line counts redactions by kind and never holds what was redacted.
    logged = buffer.getvalue()
    [line] = [
        entry
        for entry in map(json.loads, logged.splitlines())
        if entry.get("message") == "request processed"
    ]
    assert line["redactions"] == {"card": 2, "email": 4, "credential": 1, "phone": 1, "ip": 1}
    assert EMAIL not in logged
    assert CARD not in logged


def test_without_redaction_everything_is_sent_as_it_came(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    response = invoke_webhook(_events(), headers=bearer(aws))

    assert response.status == 200
    [track] = receiver.accepted("events/track")
    assert track["ai_data"]["input"] == PROMPT
    assert track["properties"]["internal_note"] == "drop me too"


def test_queued_events_keep_the_original(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.configure(mapping={"redact_pii": True})
    receiver.outage(Fault(status=503))

    response = invoke_webhook(_events(), headers=bearer(aws))

    assert response.status == 200
    assert response.body["queued"] == 2
    assert all(EMAIL not in request.body.decode() for request in receiver.requests)
    queued = [event for message in aws.drain_retry_queue() for event in message["events"]]
    # The queues stay in the account: the original, so a retry redacts with the rules then.
    [chat] = [event for event in queued if event["type"] == "track"]
    assert chat["properties"]["support_email"] == EMAIL


def test_content_read_from_outside_properties_is_redacted_too(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # A team whose events carry the prompt at the top level and files in context: FIELD_PATHS
    # reads them from there, and redaction must follow wherever the content comes from.
    aws.configure(
        mapping={
            "redact_pii": True,
            "field_paths": {
                "ai_data.input": ["prompt"],
                "ai_data.output": ["context.answer.text"],
                "attachments": ["context.files"],
            },
        }
    )
    chat = se.chat(1)
    chat["prompt"] = PROMPT
    chat["context"] = {
        "answer": {"text": f"I wrote to {EMAIL}"},
        "files": [{"type": "text", "value": f"card {CARD}", "role": "input"}],
    }

    response = invoke_webhook([chat], headers=bearer(aws))

    assert response.status == 200, response.body
    [track] = receiver.accepted("events/track")
    assert track["ai_data"]["input"] == (
        "My card is <REDACTED_CARD>, write to <REDACTED_EMAIL>, key <REDACTED_CREDENTIAL>"
    )
    assert track["ai_data"]["output"] == "I wrote to <REDACTED_EMAIL>"
    assert track["attachments"] == [
        {"type": "text", "value": "card <REDACTED_CARD>", "role": "input"}
    ]
    assert response.body["forwarded"] == 1
