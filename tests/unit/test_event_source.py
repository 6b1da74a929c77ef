"""Lambda's SQS event source as local mode and the tests emulate it: the pure parts."""

from __future__ import annotations

from typing import Any

import pytest

from segment_raindrop_tools.local.event_source import failed_ids, sqs_lambda_event


def test_sqs_messages_become_a_lambda_sqs_event() -> None:
    message: Any = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh-1",
        "Body": "{}",
        "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MessageAttributes": {
            "source": {"StringValue": "webhook", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }
    event = sqs_lambda_event([message], queue_arn="arn:aws:sqs:us-east-1:1:q", region="us-east-1")
    [record] = event["Records"]
    assert record["messageId"] == "m-1"
    assert record["receiptHandle"] == "rh-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["source"]["stringValue"] == "webhook"
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:1:q"


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        ({"batchItemFailures": []}, set()),
        (None, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ({"batchItemFailures": "nonsense"}, {"a", "b"}),
        ("nonsense", {"a", "b"}),
    ],
)
def test_batch_item_failures_are_read_like_lambda(response: Any, failed: set[str]) -> None:
    assert failed_ids(response, {"a", "b"}) == failed
