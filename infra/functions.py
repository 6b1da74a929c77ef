"""The four Lambda functions and their permissions (CDK grant helpers only).

Handlers and environment variables follow docs/architecture.md ("Runtime contract").
"""

from __future__ import annotations

from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import LOG_RETENTION_DAYS, StackConfig
from infra.partials import PartialsTable
from infra.queues import ForwarderQueues
from infra.secret import ForwarderSecret
from segment_raindrop.core.config import (
    DeliveryConfig,
    ForwarderConfig,
    MirrorConfig,
    TelemetryConfig,
)
from segment_raindrop.core.contract import (
    EVENTBRIDGE_BUDGET_SECONDS,
    EVENTBRIDGE_TIMEOUT_SECONDS,
    METRICS_NAMESPACE,
    REPLAY_BUDGET_SECONDS,
    REPLAY_TIMEOUT_SECONDS,
    RETRY_BATCH_SIZE,
    RETRY_BUDGET_SECONDS,
    RETRY_TIMEOUT_SECONDS,
    SERVICE_NAME,
    WEBHOOK_TIMEOUT_SECONDS,
)
from segment_raindrop.core.environment import to_environment

RUNTIME: Final = lambda_.Runtime.PYTHON_3_13
# What adapters/partials.py does with the partial events' table: a consistent read and a
# conditional put (a finished interaction stays as a marker; nothing is deleted). No Scan,
# Query, batch or transaction operations.
PARTIALS_ACTIONS: Final = ("dynamodb:GetItem", "dynamodb:PutItem")

WEBHOOK_TIMEOUT: Final = cdk.Duration.seconds(WEBHOOK_TIMEOUT_SECONDS)
RETRY_TIMEOUT: Final = cdk.Duration.seconds(RETRY_TIMEOUT_SECONDS)
# Replay drains the dead-letter queue in one long run (Lambda's maximum); its budget applies
# per message (the replay caps it at 60 s), so a hung Raindrop cannot hold the whole run.
REPLAY_TIMEOUT: Final = cdk.Duration.seconds(REPLAY_TIMEOUT_SECONDS)
# The workers handle at most ten 1 MiB messages at a time; the webhook's memory (and with it
# its CPU share) is configurable because it parses Segment batches of several megabytes.
WORKER_MEMORY_MB: Final = 512
# With `-c snapStart=true`, the alias of each API function's current version the APIs invoke.
LIVE_ALIAS: Final = "live"

_L1_REASON: Final = (
    "The functions target Python 3.13 on purpose: the bundle's compiled wheels (pydantic-core, "
    "wrapt) are installed for cp313 by infra/bundling.py and the code is tested on that version; "
    "moving to a newer runtime is a deliberate change of both."
)

_XRAY_REASON: Final = (
    "The only statement on '*' is the one CDK adds for active tracing (context key 'tracing'): "
    "xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level "
    "permissions."
)


def _snap_start_options(snap_start: bool) -> dict[str, Any]:
    """SnapStart on every published version, and no version kept once the alias has moved on:
    each cached snapshot is charged for as long as its version exists."""
    if not snap_start:
        return {}
    return {
        "snap_start": lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS,
        "current_version_options": lambda_.VersionOptions(removal_policy=cdk.RemovalPolicy.DESTROY),
    }


def log_retention(config: StackConfig) -> logs.RetentionDays:
    """The context's `logRetentionDays` as CDK's enum (validated against the same table)."""
    member: logs.RetentionDays = getattr(
        logs.RetentionDays, LOG_RETENTION_DAYS[config.log_retention_days]
    )
    return member


def forwarder_config(
    config: StackConfig,
    secret: ForwarderSecret,
    queues: ForwarderQueues,
    *,
    budget_seconds: float,
    mirror: MirrorConfig | None = None,
    event_sources: dict[str, str | None] | None = None,
) -> ForwarderConfig:
    """A function's configuration, as the runtime's own model validates it; ``mirror`` holds
    the Raindrop -> Segment settings of the functions that send to Segment, ``event_sources``
    the EventBridge consumer's partner sources and their projects."""
    return ForwarderConfig(
        secret_id=secret.secret_id,
        retry_queue_url=queues.retry_queue.queue_url,
        dlq_url=queues.dead_letter_queue.queue_url,
        # The redrive policy moves a message after this many receives; the worker must agree.
        retry_max_attempts=config.retry_max_receives,
        mapping=config.mapping,
        delivery=DeliveryConfig(
            raindrop_api_url=config.raindrop_api_url,
            project_id=config.raindrop_project_id,
            projects=None
            if config.raindrop_projects is None
            else frozenset(config.raindrop_projects),
            budget_seconds=budget_seconds,
        ),
        **({} if mirror is None else {"mirror": mirror}),
        **({} if event_sources is None else {"segment_event_sources": event_sources}),
    )


def segment_delivery(config: StackConfig, partials: PartialsTable) -> MirrorConfig:
    """Where Segment-bound deliveries go: the mirror sends them, and the retry worker and the
    replay deliver the ones that were queued, so all three are told. Queued partial patches
    (the table failed when they came) are merged in the partials table when delivered."""
    return MirrorConfig(
        segment_api_url=config.segment_api_url, partials_table=partials.table.table_name
    )


def mirror_settings(config: StackConfig, partials: PartialsTable) -> MirrorConfig:
    """The mirror function's: Segment's URL, the partial events' table, and whether it mirrors."""
    return MirrorConfig(
        enabled=config.mirror_to_segment,
        accepts_webhook_token=config.mirror_accepts_webhook_token,
        segment_api_url=config.segment_api_url,
        partials_table=partials.table.table_name,
    )


def function_environment(forwarder: ForwarderConfig, config: StackConfig) -> dict[str, str]:
    """A function's variables: the forwarder's (written by the runtime's own environment
    contract) and Powertools'."""
    return {
        **to_environment(forwarder),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        # The stage dimension of every metric (the alarms and dashboard read this stage's only).
        **to_environment(TelemetryConfig(stage=config.stage)),
        "POWERTOOLS_LOG_LEVEL": config.log_level,
        # The handlers build Powertools' Tracer (and import the X-Ray SDK) only when this says
        # tracing is on, so a function deployed without tracing does not load it at all.
        "POWERTOOLS_TRACE_DISABLED": "false" if config.tracing else "true",
        # Handler responses can hold event payloads (user data): keep them out of X-Ray.
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        # The bundle ships no pydantic plugin; without this pydantic scans every installed
        # distribution's entry points for one when it builds the first model (~10 ms of each
        # cold start).
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }


class ForwarderFunctions(Construct):
    """Exposes `webhook`, `retry_worker`, `replay`, `mirror` and `eventbridge`
    (lambda_.Function; `webhook` and `mirror` None with `webhook=false`, `eventbridge` None
    without `segmentEventSource`) and `all` (those that exist)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        code: lambda_.Code,
        secret: ForwarderSecret,
        queues: ForwarderQueues,
        partials: PartialsTable,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._code = code
        self._secret = secret
        self._queues = queues

        self.webhook = (
            None
            if not config.webhook
            else self._function(
                "Webhook",
                handler="segment_raindrop.handlers.webhook.handler",
                description="Segment webhook: forwards events to Raindrop",
                timeout=WEBHOOK_TIMEOUT,
                memory_mb=config.webhook_memory_mb,
                budget_seconds=config.delivery_budget_seconds,
                snap_start=config.snap_start,
            )
        )
        self.retry_worker = self._function(
            "RetryWorker",
            handler="segment_raindrop.handlers.retry_worker.handler",
            description="Retries deliveries from the retry queue",
            timeout=RETRY_TIMEOUT,
            memory_mb=WORKER_MEMORY_MB,
            budget_seconds=RETRY_BUDGET_SECONDS,
            mirror=segment_delivery(config, partials),
        )
        self.replay = self._function(
            "Replay",
            handler="segment_raindrop.handlers.replay.handler",
            description="Replays the dead-letter queue into Raindrop",
            timeout=REPLAY_TIMEOUT,
            memory_mb=WORKER_MEMORY_MB,
            budget_seconds=REPLAY_BUDGET_SECONDS,
            mirror=segment_delivery(config, partials),
        )
        # Raindrop's SDK waits for the answer like Segment does (its read timeout is 15 s), so
        # the mirror gets the webhook's timeout, memory and delivery budget.
        self.mirror = (
            None
            if not config.webhook
            else self._function(
                "Mirror",
                handler="segment_raindrop.handlers.raindrop_sdk.handler",
                description="Raindrop SDK endpoint: forwards to Raindrop, mirrors into Segment",
                timeout=WEBHOOK_TIMEOUT,
                memory_mb=config.webhook_memory_mb,
                budget_seconds=config.delivery_budget_seconds,
                mirror=mirror_settings(config, partials),
                snap_start=config.snap_start,
            )
        )
        # Segment's events through EventBridge, from the intake queue (infra/eventbridge.py
        # adds the event source). Nobody waits on it: the retry worker's timeout and memory.
        self.eventbridge = (
            None
            if not config.segment_event_source
            else self._function(
                "EventBridge",
                handler="segment_raindrop.handlers.eventbridge.handler",
                description="Segment events through EventBridge: forwards them to Raindrop",
                timeout=cdk.Duration.seconds(EVENTBRIDGE_TIMEOUT_SECONDS),
                memory_mb=WORKER_MEMORY_MB,
                budget_seconds=EVENTBRIDGE_BUDGET_SECONDS,
                event_sources=config.event_sources,
            )
        )
        self.all = tuple(
            function
            for function in (
                self.webhook,
                self.retry_worker,
                self.replay,
                self.mirror,
                self.eventbridge,
            )
            if function is not None
        )
        # What the APIs invoke: with SnapStart a published version, through an alias (only
        # versions resume from snapshots; the unpublished $LATEST would initialise as before).
        self.webhook_entry = self._entry(self.webhook, "Webhook")
        self.mirror_entry = self._entry(self.mirror, "Mirror")

        self.retry_worker.add_event_source(
            event_sources.SqsEventSource(
                queues.retry_queue,
                batch_size=RETRY_BATCH_SIZE,
                # One failed message must not send the other nine back to the queue.
                report_batch_item_failures=True,
                # Without it SQS scales the worker out to hundreds of invocations on a backlog,
                # stampeding a recovering Raindrop and starving the webhook of concurrency.
                max_concurrency=config.retry_max_concurrency,
            )
        )
        self._grant(secret, queues, partials)

    def _entry(
        self, function: lambda_.Function | None, construct_id: str
    ) -> lambda_.IFunction | None:
        if function is None or not self._config.snap_start:
            return function
        return lambda_.Alias(
            self,
            f"{construct_id}Live",
            alias_name=LIVE_ALIAS,
            version=function.current_version,
            description="the published version the API invokes (SnapStart)",
        )

    def _grant(
        self, secret: ForwarderSecret, queues: ForwarderQueues, partials: PartialsTable
    ) -> None:
        retry, dlq = queues.retry_queue, queues.dead_letter_queue
        for function in self.all:
            secret.secret.grant_read(function)
        # Webhook and EventBridge consumer: queue what Raindrop did not take (retry) or
        # rejected (dead letter). The consumer's intake queue is granted by its event source.
        for intake in (self.webhook, self.eventbridge):
            if intake is not None:
                retry.grant_send_messages(intake)
                dlq.grant_send_messages(intake)
        # Retry worker: consume (receive, delete, change visibility for back-off), re-queue,
        # dead-letter what Raindrop rejects.
        retry.grant_consume_messages(self.retry_worker)
        retry.grant_send_messages(self.retry_worker)
        dlq.grant_send_messages(self.retry_worker)
        # Replay: read the dead-letter queue and put back what still fails; events still being
        # isolated go on to the retry queue.
        dlq.grant_consume_messages(self.replay)
        dlq.grant_send_messages(self.replay)
        retry.grant_send_messages(self.replay)
        # Mirror: like the webhook it queues what Raindrop or Segment did not take; the
        # retry worker and the replay deliver those messages with the grants above (the write
        # key is in the same secret). It merges partial events in the table.
        if self.mirror is not None:
            retry.grant_send_messages(self.mirror)
            dlq.grant_send_messages(self.mirror)
            partials.table.grant(self.mirror, *PARTIALS_ACTIONS)
        # Retry worker and replay: queued partial patches are merged as the mirror merges them.
        for function in (self.retry_worker, self.replay):
            partials.table.grant(function, *PARTIALS_ACTIONS)

    def _function(
        self,
        construct_id: str,
        *,
        handler: str,
        description: str,
        timeout: cdk.Duration,
        memory_mb: int,
        budget_seconds: float,
        mirror: MirrorConfig | None = None,
        snap_start: bool = False,
        event_sources: dict[str, str | None] | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=log_retention(self._config),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # Our own role, so the function gets no AWS managed policy: it may write to its own
        # log group (below), send traces (added by CDK with active tracing) and what _grant adds.
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"segment-raindrop {construct_id} function",
        )
        function = lambda_.Function(
            self,
            construct_id,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=self._code,
            description=description,
            timeout=timeout,
            memory_size=memory_mb,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE if self._config.tracing else lambda_.Tracing.DISABLED,
            environment=function_environment(
                forwarder_config(
                    self._config,
                    self._secret,
                    self._queues,
                    budget_seconds=budget_seconds,
                    mirror=mirror,
                    event_sources=event_sources,
                ),
                self._config,
            ),
            **_snap_start_options(snap_start),
        )
        log_group.grant_write(role)
        # CDK makes the function depend on its role explicitly although `Role: GetAtt` already
        # implies it; cfn-lint flags the duplicate (W3005). Harmless, so silenced right here.
        cfn_function = function.node.default_child
        assert isinstance(cfn_function, cdk.CfnResource)
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        cdk.Validations.of(function).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions-L1", reason=_L1_REASON)
        )
        if snap_start:
            # CDK warns that only published versions resume from snapshots: _entry publishes
            # one and points the APIs at it.
            cdk.Annotations.of(function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "the APIs invoke the `live` alias of the current version",
            )
        if self._config.tracing:
            cdk.Validations.of(role).acknowledge(
                cdk.Acknowledgment(id="AwsSolutions-IAM5[Resource::*]", reason=_XRAY_REASON)
            )
        return function
