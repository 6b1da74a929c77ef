"""The EventBridge intake on a local endpoint (a moto server): Segment's partner event source,
the rule the stack makes, and the intake queue with its own dead-letter queue.

:func:`provision_eventbridge` creates what the stack's ``segmentEventSource`` does, with the
stack's numbers and the rule's pattern from :func:`segment_raindrop.core.eventbridge.event_pattern`,
so moto's EventBridge filters exactly as the deployed rule would. One difference: moto routes
``PutPartnerEvents`` to the *default* bus (a partner bus's name holds "/", which moto's bus
lookup splits), so the rule sits there; its pattern names the partner sources, as on AWS.

:func:`put_partner_events` sends Segment events the way Segment's Amazon EventBridge (Actions)
destination does: ``PutPartnerEvents`` entries with the partner source, the event's type as
``DetailType`` and the event as ``Detail``, at most 20 a call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3

from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import (
    DLQ_RETENTION_DAYS,
    EVENTBRIDGE_MAX_RECEIVES,
    EVENTBRIDGE_TIMEOUT_SECONDS,
    VISIBILITY_TO_TIMEOUT_RATIO,
)
from segment_raindrop.core.eventbridge import event_pattern
from segment_raindrop_tools.local.aws import DUMMY_CREDENTIAL, sqs_client

# boto3's EventBridge client (no type stubs installed for it).
EventBridgeClient = Any

__all__ = [
    "EventBridgeIntake",
    "eventbridge_client",
    "local_source",
    "partner_entries",
    "provision_eventbridge",
    "put_partner_events",
]


def local_source(prefix: str) -> str:
    """Local mode's partner source, one per resource prefix (one per instance in one moto)."""
    return f"aws.partner/segment.com/{prefix}"


# The account moto serves when given dummy credentials.
LOCAL_ACCOUNT: Final = "123456789012"
# Segment's destination batches at most 20 entries a PutPartnerEvents (its batch_size maximum).
SEGMENT_ENTRIES_PER_CALL: Final = 20
_DAY: Final = 24 * 3600


@dataclass(frozen=True)
class EventBridgeIntake:
    """What :func:`provision_eventbridge` created."""

    queue_url: str
    dlq_url: str
    sources: tuple[str, ...]
    pattern: dict[str, Any]


def eventbridge_client(endpoint_url: str, region: str) -> EventBridgeClient:
    return boto3.client(
        "events",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
    )


def provision_eventbridge(
    *,
    endpoint_url: str,
    region: str = "us-east-1",
    sources: Sequence[str],
    mapping: MappingConfig | None = None,
    prefix: str = "segment-raindrop",
) -> EventBridgeIntake:
    """The partner sources, the intake queue (redriven to its own dead-letter queue after
    ``EVENTBRIDGE_MAX_RECEIVES``) and the rule sending what the mapping forwards to it."""
    sqs = sqs_client(endpoint_url, region)
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-segment-events-dlq",
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_DAYS * _DAY)},
    )["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-segment-events",
        Attributes={
            "VisibilityTimeout": str(EVENTBRIDGE_TIMEOUT_SECONDS * VISIBILITY_TO_TIMEOUT_RATIO),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": EVENTBRIDGE_MAX_RECEIVES}
            ),
        },
    )["QueueUrl"]
    events = eventbridge_client(endpoint_url, region)
    for source in sources:
        # moto records the account again on every creation, then delivers each partner event
        # once per record: a source is created once per moto process (see local_source).
        events.create_partner_event_source(Name=source, Account=LOCAL_ACCOUNT)
    pattern = event_pattern(mapping or MappingConfig(), sources)
    rule = f"{prefix}-segment-events"
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "intake", "Arn": _arn(sqs, queue_url)}])
    return EventBridgeIntake(queue_url, dlq_url, tuple(sources), pattern)


def _arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def partner_entries(events: Sequence[Mapping[str, Any]], source: str) -> list[dict[str, Any]]:
    """Segment's ``PutPartnerEvents`` entries for ``events`` (its destination's defaults:
    ``DetailType`` the event's type, ``Detail`` the whole event)."""
    return [
        {
            "Source": source,
            "DetailType": str(event.get("type") or "unknown"),
            "Detail": json.dumps(event),
            "Resources": [],
        }
        for event in events
    ]


def put_partner_events(
    client: EventBridgeClient, events: Sequence[Mapping[str, Any]], *, source: str
) -> int:
    """Put ``events`` on the partner source as Segment does; returns the entries refused."""
    entries = partner_entries(events, source)
    failed = 0
    for start in range(0, len(entries), SEGMENT_ENTRIES_PER_CALL):
        answer = client.put_partner_events(
            Entries=entries[start : start + SEGMENT_ENTRIES_PER_CALL]
        )
        failed += int(answer.get("FailedEntryCount", 0))
    return failed
