"""The EventBridge intake as the tests drive it: the partner sources, the rule and the intake
queue provisioned on moto (:mod:`segment_raindrop_tools.local.eventbridge`), Segment events put
with ``PutPartnerEvents``, and the consumer invoked by the emulated SQS event source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from segment_raindrop.handlers import eventbridge
from segment_raindrop_tools.local.event_source import BatchRun, SqsEventSource
from segment_raindrop_tools.local.eventbridge import (
    EventBridgeIntake,
    eventbridge_client,
    provision_eventbridge,
    put_partner_events,
)

SOURCE = "aws.partner/segment.com/abc"
OTHER = "aws.partner/segment.com/def"


@dataclass
class Intake:
    aws: Any
    resources: EventBridgeIntake

    def put(self, events: list[dict[str, Any]], *, source: str = SOURCE) -> None:
        client = eventbridge_client(self.aws.endpoint_url, self.aws.resources.region)
        assert put_partner_events(client, events, source=source) == 0

    def send_raw(self, body: str) -> None:
        self.aws.sqs.send_message(QueueUrl=self.resources.queue_url, MessageBody=body)

    def run(self) -> BatchRun:
        source = SqsEventSource(
            self.aws.sqs,
            self.resources.queue_url,
            eventbridge.handler,
            region=self.aws.resources.region,
            function_name="segment-raindrop-eventbridge",
            batch_size=10,
        )
        run = source.poll_once()
        if run.error is not None:
            raise run.error
        return run

    def depth(self) -> int:
        return int(self.aws.queue_depth(self.resources.queue_url))


@pytest.fixture
def intake(aws: Any) -> Intake:
    resources = provision_eventbridge(
        endpoint_url=aws.endpoint_url,
        region=aws.resources.region,
        sources=(SOURCE, OTHER),
        mapping=aws.config.mapping,
    )
    aws.configure(segment_event_sources={SOURCE: None, OTHER: "team-b"})
    return Intake(aws, resources)
