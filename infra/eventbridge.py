"""The EventBridge intake: Segment's Amazon EventBridge (Actions) destination -> partner event
source -> event bus -> rule -> SQS queue -> the consumer function, in batches.

For each partner source in `segmentEventSource` the stack creates the event bus associated
with it (a partner source feeds exactly one bus, named after it) and a rule on that bus whose
pattern keeps only what the mapping forwards (`core/eventbridge.event_pattern`, from the same
mapping settings the functions get), so filtered events never cost a queue message or an
invocation. Every rule targets the one intake queue: encrypted, TLS only, with its own
dead-letter queue, which takes both the records the consumer failed `EVENTBRIDGE_MAX_RECEIVES`
times (redrive) and the events EventBridge itself could not deliver after 24 hours of retries.
The queue policies let only these rules send (`aws:SourceArn`).
"""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from constructs import Construct

from infra.config import StackConfig
from infra.queues import consumed_queue, dead_letter_queue
from segment_raindrop.core.contract import EVENTBRIDGE_MAX_RECEIVES, EVENTBRIDGE_TIMEOUT_SECONDS
from segment_raindrop.core.eventbridge import event_pattern

# Segment's records wait this long for the consumer (SQS's default), the dead-letter queue
# longest: a message keeps its first enqueue time there.
INTAKE_RETENTION: Final = cdk.Duration.days(4)
# EventBridge retries a target for up to 24 hours (its maximum), then the target's dead-letter
# queue takes the event.
TARGET_MAX_EVENT_AGE: Final = cdk.Duration.hours(24)
TARGET_RETRY_ATTEMPTS: Final = 185

_DLQ_SQS3_REASON: Final = (
    "This is the dead-letter queue of the EventBridge intake queue (and the EventBridge "
    "targets' dead-letter queue): what lands here waits for an operator's redrive, it has no "
    "dead-letter queue of its own."
)


class SegmentEventIntake(Construct):
    """Exposes `buses`, `rules`, `queue` and `dead_letter_queue`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        consumer: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue", config=config)
        cdk.Validations.of(self.dead_letter_queue).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions-SQS3", reason=_DLQ_SQS3_REASON)
        )
        self.queue = consumed_queue(
            self,
            "Queue",
            consumer_timeout_seconds=EVENTBRIDGE_TIMEOUT_SECONDS,
            dead_letter=self.dead_letter_queue,
            max_receives=EVENTBRIDGE_MAX_RECEIVES,
            retention_period=INTAKE_RETENTION,
        )
        self.buses: list[events.EventBus] = []
        self.rules: list[events.Rule] = []
        for n, source in enumerate(config.event_sources):
            pattern = event_pattern(config.mapping, [source])
            # Named after the source (CDK sets the name from event_source_name).
            bus = events.EventBus(self, f"Bus{n}", event_source_name=source)
            rule = events.Rule(
                self,
                f"Rule{n}",
                event_bus=bus,
                description="Segment events the mapping forwards, to the intake queue",
                event_pattern=events.EventPattern(
                    source=pattern["source"], detail=pattern["detail"]
                ),
            )
            # The target adds the queue policy statements (this rule only, by aws:SourceArn),
            # on the queue and on the dead-letter queue.
            rule.add_target(
                targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                )
            )
            self.buses.append(bus)
            self.rules.append(rule)
        consumer.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=config.segment_event_batch_size,
                max_batching_window=cdk.Duration.seconds(config.segment_event_batch_window_seconds)
                if config.segment_event_batch_window_seconds
                else None,
                # One record that could not be queued must not send the others back.
                report_batch_item_failures=True,
                # Bounds what the intake sends Raindrop at once, and what it takes of the
                # account's concurrency (docs/architecture.md, "Concurrency toward Raindrop").
                max_concurrency=config.segment_event_max_concurrency,
            )
        )
