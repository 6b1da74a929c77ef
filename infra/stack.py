"""The one stack: queues, secret, partials table, functions, API, monitoring, and the
outputs users need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.api import WebhookApi
from infra.bundling import lambda_code
from infra.config import StackConfig
from infra.eventbridge import SegmentEventIntake
from infra.functions import RETRY_TIMEOUT, ForwarderFunctions
from infra.monitoring import Monitoring
from infra.partials import PartialsTable
from infra.queues import ForwarderQueues
from infra.secret import ForwarderSecret
from segment_raindrop.core.contract import StackOutput, segment_batch_size

NO_ALARM_RECIPIENT = "nobody (set alarmEmail or alarmTopicArn)"


class SegmentRaindropStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        project_root: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        queues = ForwarderQueues(self, "Queues", config=config, retry_worker_timeout=RETRY_TIMEOUT)
        secret = ForwarderSecret(self, "Secret", config=config)
        partials = PartialsTable(self, "Partials", config=config)
        functions = ForwarderFunctions(
            self,
            "Functions",
            config=config,
            code=lambda_code(project_root, skip_bundling=config.skip_bundling),
            secret=secret,
            queues=queues,
            partials=partials,
        )
        api = self._api(config, functions)
        intake = (
            SegmentEventIntake(self, "SegmentEvents", config=config, consumer=functions.eventbridge)
            if functions.eventbridge is not None
            else None
        )
        monitored = {
            "Webhook": functions.webhook,
            "RetryWorker": functions.retry_worker,
            "Replay": functions.replay,
            "Mirror": functions.mirror,
            "EventBridge": functions.eventbridge,
        }
        monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            apis=api.apis if api is not None else (),
            queues=queues,
            functions={name: f for name, f in monitored.items() if f is not None},
            intake=intake,
        )
        if api is not None:
            self._api_outputs(config, api)
        if intake is not None:
            self._intake_outputs(intake)
        self._alarm_outputs(config)
        self._common_outputs(
            config,
            queues=queues,
            functions=functions,
            secret=secret,
            partials=partials,
            monitoring=monitoring,
        )

    def _api(self, config: StackConfig, functions: ForwarderFunctions) -> WebhookApi | None:
        """The public APIs; none with webhook=false (no webhook or mirror function either)."""
        webhook, mirror = functions.webhook_entry, functions.mirror_entry
        if webhook is None or mirror is None:
            return None
        return WebhookApi(self, "Webhook", config=config, handler=webhook, mirror_handler=mirror)

    def _intake_outputs(self, intake: SegmentEventIntake) -> None:
        self._output(
            StackOutput.SEGMENT_EVENTS_QUEUE_URL,
            intake.queue.queue_url,
            "EventBridge intake queue (Segment's events from the partner event source)",
        )
        self._output(
            StackOutput.SEGMENT_EVENTS_DEAD_LETTER_QUEUE_URL,
            intake.dead_letter_queue.queue_url,
            "EventBridge intake's dead-letter queue (records to redrive)",
        )
        self._output(
            StackOutput.SEGMENT_EVENT_BUSES,
            ",".join(bus.event_bus_name for bus in intake.buses),
            "Event buses associated with Segment's partner event sources",
        )

    def _alarm_outputs(self, config: StackConfig) -> None:
        self._output(
            StackOutput.ALARM_NOTIFICATIONS,
            config.alarm_recipients or NO_ALARM_RECIPIENT,
            "who the alarms notify (context alarmEmail, alarmTopicArn)",
        )
        if config.alarm_recipients is None:
            # cdk synth and cdk deploy print this: a dropped batch or a full dead-letter queue
            # must not wait for someone to open the dashboard.
            cdk.Annotations.of(self).add_warning_v2(
                "segment-raindrop:no-alarm-recipient",
                "No one receives this stack's alarms (413s Segment drops, dead letters, "
                "failures): deploy with -c alarmEmail=you@example.com or "
                "-c alarmTopicArn=<an SNS topic's ARN>.",
            )

    def _api_outputs(self, config: StackConfig, api: WebhookApi) -> None:
        self._output(
            StackOutput.WEBHOOK_URL, api.webhook_url, "Paste into Segment's Webhooks destination"
        )
        self._output(
            StackOutput.SEGMENT_LIBRARY_HOST,
            api.sdk_host,
            "host for Segment's server libraries (they post to /v1/batch, gzip or not; "
            "write key = token)",
        )
        self._output(
            StackOutput.SEGMENT_BATCH_SIZE,
            str(segment_batch_size(config.segment_p99_event_bytes)),
            "the largest Webhooks (Actions) batch size that fits Lambda's payload for events of "
            f"{config.segment_p99_event_bytes} bytes at p99 (context segmentP99EventBytes)",
        )
        self._output(
            StackOutput.RAINDROP_SDK_ENDPOINT,
            api.raindrop_sdk_endpoint,
            'Raindrop SDK: raindrop.init(api_key=..., endpoint="<this>") forwards to Raindrop '
            "and mirrors into Segment",
        )

    def _common_outputs(
        self,
        config: StackConfig,
        *,
        queues: ForwarderQueues,
        functions: ForwarderFunctions,
        secret: ForwarderSecret,
        partials: PartialsTable,
        monitoring: Monitoring,
    ) -> None:
        self._output(
            StackOutput.PARTIALS_TABLE_NAME,
            partials.table.table_name,
            "Open Raindrop interactions (begin/finish) merged before they go to Segment",
        )
        self._output(
            StackOutput.STAGE,
            config.stage,
            "the stage dimension of this stack's metrics (namespace SegmentRaindrop)",
        )
        self._output(
            StackOutput.MIRROR_TO_SEGMENT,
            # webhook=false: no mirror function, so no Segment write key is needed either.
            "true" if config.mirror_to_segment and config.webhook else "false",
            "whether Raindrop's SDK traffic is mirrored into Segment (needs segment_write_key)",
        )
        self._output(StackOutput.RETRY_QUEUE_URL, queues.retry_queue.queue_url, "Retry queue")
        self._output(
            StackOutput.DEAD_LETTER_QUEUE_URL,
            queues.dead_letter_queue.queue_url,
            "Dead-letter queue",
        )
        self._output(
            StackOutput.REPLAY_FUNCTION_NAME,
            functions.replay.function_name,
            "Invoke to replay dead letters",
        )
        self._output(
            StackOutput.SECRET_ARN,
            secret.secret.secret_arn,
            "Raindrop key, webhook token, Segment write key",
        )
        self._output(
            StackOutput.DASHBOARD_URL,
            cdk.Fn.join(
                "",
                [
                    "https://",
                    cdk.Aws.REGION,
                    ".console.aws.amazon.com/cloudwatch/home?region=",
                    cdk.Aws.REGION,
                    "#dashboards:name=",
                    monitoring.dashboard.dashboard_name,
                ],
            ),
            "CloudWatch dashboard",
        )

    def _output(self, name: StackOutput, value: str, description: str) -> None:
        cdk.CfnOutput(self, name.value, value=value, description=description)
