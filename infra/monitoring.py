"""Alarms (optionally e-mailed through SNS) and the CloudWatch dashboard.

Each alarm is built on what its source reports reliably (docs/deploy.md lists them and how to
fire each one on purpose):
- Queue depth is visible + in flight, so a replay (which holds messages invisible while it
  works) neither clears nor re-raises an alarm.
- SQS's ApproximateAgeOfOldestMessage leaves out messages received three times or more, which
  the retry worker's back-off makes every failing message within minutes and every dry run or
  peek makes of the dead-letter messages it reads. How long Raindrop has been failing comes
  from the forwarder's own RetryFailureAge instead; SQS's age is used only where nothing
  receives the messages (a stalled retry worker), which is exactly when it is accurate.
"""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StackConfig
from infra.dashboard import across_apis, build_dashboard, forwarder_metric, rule_metric
from infra.eventbridge import SegmentEventIntake
from infra.queues import ForwarderQueues
from segment_raindrop.core.contract import DLQ_RETENTION_DAYS, Metric

PERIOD: Final = cdk.Duration.minutes(5)
HOUR: Final = cdk.Duration.hours(1)
# The dead-letter queue has not been empty for a week: with SQS deleting messages 14 days
# after their first enqueue, at most a week is left to replay. Depth, unlike age, is not reset
# by the receives of a dry run. CloudWatch evaluates at most 7 days (with hourly periods).
DLQ_UNATTENDED_HOURS: Final = 7 * 24
# The retry worker has been handing Raindrop events that first failed this long ago: with the
# default back-off (30 s doubling) a message reaches it on its 6th or 7th receive.
RETRY_FAILURE_AGE_SECONDS: Final = 15 * 60
# Kept in ALARM this long after the last such message: late receives come 15-60 min apart.
RETRY_FAILURE_AGE_PERIODS: Final = 6
# Nothing has received the oldest retry message for this long (SQS still counts messages not
# received three times): the worker is not consuming, and SQS deletes retry messages after
# 4 days without moving them to the dead-letter queue.
RETRY_STALLED_SECONDS: Final = 6 * 3600
# Segment always sends the same credentials, so a burst of 401s is a misconfiguration (token
# rotated on one side only) or someone probing the endpoint.
UNAUTHORIZED_PER_PERIOD: Final = 10
# The EventBridge intake's oldest record has waited this long: the consumer is not keeping up
# or not consuming (records fail only when SQS is unreachable, so SQS's age counts them).
INTAKE_BACKLOG_SECONDS: Final = 15 * 60


def queue_depth(queue: sqs.IQueue, *, period: cdk.Duration, label: str) -> cloudwatch.IMetric:
    """Messages visible + in flight: a replay moves messages between the two, never out of the
    sum, until it deletes them. FILL: a series missing a minute does not blank the sum."""
    return cloudwatch.MathExpression(
        expression="FILL(visible, 0) + FILL(inflight, 0)",
        using_metrics={
            "visible": queue.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=period
            ),
            "inflight": queue.metric_approximate_number_of_messages_not_visible(
                statistic="Maximum", period=period
            ),
        },
        period=period,
        label=label,
    )


class Monitoring(Construct):
    """Exposes `alarms`, `topic` (the stack's own, None without alarmEmail), `topics` (every
    topic the alarms notify: that one and alarmTopicArn's) and `dashboard`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        apis: tuple[apigateway.RestApi, ...],
        queues: ForwarderQueues,
        functions: dict[str, lambda_.IFunction],
        intake: SegmentEventIntake | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = f"segment-raindrop-{config.stage}"
        self._stage = config.stage
        self.alarms: list[cloudwatch.Alarm] = []
        self._queue_alarms(queues)
        if intake is not None:
            self._intake_alarms(intake)
        self._raindrop_alarms()
        self._mirror_alarms()
        self._function_alarms(functions)
        if apis:  # none with webhook=false
            self._api_alarms(apis)
        self.topic = self._email_topic(config.alarm_email) if config.alarm_email else None
        self.topics: list[sns.ITopic] = [self.topic] if self.topic else []
        if config.alarm_topic_arn:
            self.topics.append(
                sns.Topic.from_topic_arn(self, "ExistingAlarmTopic", config.alarm_topic_arn)
            )
        self._notify(self.topics, on_recovery=config.alarm_on_recovery)
        self.dashboard = build_dashboard(
            self,
            "Dashboard",
            name_prefix=self._prefix,
            stage=config.stage,
            apis=apis,
            queues=queues,
            functions=functions,
            intake=intake,
        )

    def _intake_alarms(self, intake: SegmentEventIntake) -> None:
        self._alarm(
            "SegmentEventsBacklog",
            intake.queue.metric_approximate_age_of_oldest_message(
                statistic="Maximum", period=PERIOD
            ),
            threshold=INTAKE_BACKLOG_SECONDS,
            periods=3,
            description=(
                "Segment's events have waited over 15 minutes on the EventBridge intake queue: "
                "the EventBridge function is not keeping up (raise segmentEventMaxConcurrency) "
                "or not consuming (its errors, its event source)."
            ),
        )
        self._alarm(
            "SegmentEventsDeadLetterQueueNotEmpty",
            queue_depth(intake.dead_letter_queue, period=PERIOD, label="intake dead letters"),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=(
                "Records of the EventBridge intake could not be processed (SQS unreachable for "
                "the function, or EventBridge could not deliver for 24 hours): redrive them to "
                "the intake queue (docs/runbook.md)."
            ),
        )
        self._alarm(
            "SegmentEventsRuleFailing",
            cloudwatch.MathExpression(
                expression=" + ".join(f"FILL(r{n}, 0)" for n in range(len(intake.rules))),
                using_metrics={
                    f"r{n}": rule_metric(rule, bus, "FailedInvocations", period=PERIOD)
                    for n, (rule, bus) in enumerate(zip(intake.rules, intake.buses, strict=True))
                },
                period=PERIOD,
                label="failed deliveries to the intake queue",
            ),
            threshold=1,
            description=(
                "EventBridge failed to put Segment's events on the intake queue (it retries for "
                "24 hours, then dead-letters them): check the queue's policy and encryption."
            ),
        )

    def _queue_alarms(self, queues: ForwarderQueues) -> None:
        dlq, retry = queues.dead_letter_queue, queues.retry_queue
        self._alarm(
            "DeadLetterQueueNotEmpty",
            queue_depth(dlq, period=PERIOD, label="dead-letter messages"),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="Events are waiting in the dead-letter queue: inspect and replay them.",
        )
        self._alarm(
            "DeadLetterQueueUnattended",
            queue_depth(dlq, period=HOUR, label="dead-letter messages"),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            periods=DLQ_UNATTENDED_HOURS,
            description=(
                "The dead-letter queue has not been empty for a week: SQS deletes messages "
                f"{DLQ_RETENTION_DAYS} days after their first failure. Replay them now."
            ),
        )
        self._alarm(
            "RetriesFailing",
            self._own(Metric.RETRY_FAILURE_AGE, statistic="Maximum", period=PERIOD),
            threshold=RETRY_FAILURE_AGE_SECONDS,
            periods=RETRY_FAILURE_AGE_PERIODS,
            datapoints=1,
            description=(
                "The retry worker is still failing to deliver events that first failed over "
                f"{RETRY_FAILURE_AGE_SECONDS // 60} minutes ago: is Raindrop reachable, is the "
                "key right?"
            ),
        )
        self._alarm(
            "RetryQueueStalled",
            retry.metric_approximate_age_of_oldest_message(statistic="Maximum", period=PERIOD),
            threshold=RETRY_STALLED_SECONDS,
            periods=3,
            description=(
                "A retry-queue message has waited 6 hours without being received: the retry "
                "worker is not consuming (event source disabled, function failing to start). "
                "SQS deletes retry messages after 4 days without dead-lettering them."
            ),
        )

    def _raindrop_alarms(self) -> None:
        self._alarm(
            "RaindropCircuitOpened",
            self._own(Metric.RAINDROP_CIRCUIT_OPENED, period=PERIOD),
            threshold=1,
            description=(
                "Raindrop kept failing and the forwarder stopped calling it for a while; events "
                "are being queued for the retry worker."
            ),
        )
        self._alarm(
            "RaindropRedirects",
            self._own(Metric.RAINDROP_REDIRECTS, period=PERIOD),
            threshold=1,
            description=(
                "Raindrop answered with a redirect, which the forwarder does not follow: fix "
                "raindropApiUrl (the events are queued meanwhile)."
            ),
        )

    def _mirror_alarms(self) -> None:
        # Raindrop -> Segment. A failure is an event Segment will not get without a replay;
        # a disabled mirror means apps send through the SDK route while the secret has no
        # segment_write_key, so Segment gets nothing (Raindrop still gets everything).
        self._alarm(
            "MirrorFailures",
            self._own(Metric.MIRROR_FAILURES, period=PERIOD),
            threshold=1,
            description=(
                "Events from Raindrop's SDK could not be mirrored into Segment (dead-lettered): "
                "check segment_write_key and segmentApiUrl, then replay (docs/runbook.md)."
            ),
        )
        self._alarm(
            "MirrorPartialsLost",
            self._own(Metric.MIRROR_PARTIALS_LOST, period=PERIOD),
            threshold=1,
            description=(
                "A finished Raindrop interaction reached the mirror with nothing of its start "
                "in the partials table (it expired or was never stored): Segment did not get "
                "it. Raindrop has it; the log line 'interaction lost' names its event_id."
            ),
        )
        self._alarm(
            "MirrorDisabled",
            self._own(Metric.MIRROR_DISABLED, period=PERIOD),
            threshold=1,
            description=(
                "Raindrop's SDK is sending through the stack but nothing reaches Segment: the "
                "secret has no segment_write_key (or the placeholder). Raindrop still gets "
                "every event."
            ),
        )

    def _function_alarms(self, functions: dict[str, lambda_.IFunction]) -> None:
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                function.metric_errors(statistic="Sum", period=PERIOD),
                threshold=1,
                description=f"The {name} function raised errors (see its logs).",
            )
            self._alarm(
                f"{name}Throttles",
                function.metric_throttles(statistic="Sum", period=PERIOD),
                threshold=1,
                description=f"The {name} function was throttled (account concurrency).",
            )

    def _api_alarms(self, apis: tuple[apigateway.RestApi, ...]) -> None:
        self._alarm(
            "Api5xx",
            across_apis(apis, "5XXError", label="5xx answers", period=PERIOD),
            threshold=1,
            description="API Gateway answered Segment with 5xx; Segment will retry.",
        )
        self._alarm(
            "ApiRequestsTooLarge",
            self._own(Metric.API_REQUESTS_TOO_LARGE, period=PERIOD),
            threshold=1,
            description=(
                "Requests were answered 413 (most by API Gateway, before the function runs: "
                "over Lambda's 6 MB payload). Segment drops them: lower its batch size."
            ),
        )
        self._alarm(
            "ApiRequestsThrottled",
            self._own(Metric.API_REQUESTS_THROTTLED, period=PERIOD),
            threshold=1,
            description=(
                "Requests were answered 429 by API Gateway's throttle, before any function ran. "
                "Raindrop's SDK drops a batch after about 1.5 s of 429s (Segment retries): raise "
                "the route limits (context sdkThrottleRateLimit / throttleRateLimit) within the "
                "account's Lambda concurrency (docs/deploy.md)."
            ),
        )
        self._alarm(
            "ApiGatewayErrors",
            self._own(Metric.API_GATEWAY_ERRORS, period=PERIOD),
            threshold=1,
            description=(
                "API Gateway answered 5xx itself (integration failure or timeout, a crashed "
                "function, or Lambda out of concurrency): see errorResponseType in the access "
                "log and the functions' Throttles and Errors."
            ),
        )
        self._alarm(
            "UnauthorizedSpike",
            self._own(Metric.UNAUTHORIZED_REQUESTS, period=PERIOD),
            threshold=UNAUTHORIZED_PER_PERIOD,
            description="Many rejected requests: check the token/shared secret in Segment.",
        )
        # Published by the webhook when a batch signed over its first element arrives and the
        # secret has no webhook_token to demand: each one is answered 503 (Segment retries for
        # 4 hours). One is enough to act on.
        self._alarm(
            "UnverifiableBatches",
            self._own(Metric.UNVERIFIABLE_BATCHES, period=PERIOD),
            threshold=1,
            description=(
                "Segment sent batches the forwarder cannot verify and they are being refused "
                "(503, retried by Segment for 4 hours): add webhook_token to the secret and an "
                "Authorization: Bearer header to the Segment mapping."
            ),
        )

    def _own(
        self, metric: Metric, *, statistic: str = "Sum", period: cdk.Duration
    ) -> cloudwatch.IMetric:
        """This stage's own metric (never another stage's: the stage is a dimension)."""
        return forwarder_metric(metric, stage=self._stage, statistic=statistic, period=period)

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
        periods: int = 1,
        datapoints: int | None = None,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._prefix}-{construct_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints or periods,
            # No data means no traffic (or an empty queue), which is healthy.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms.append(alarm)

    def _email_topic(self, email: str) -> sns.Topic:
        # TLS is enforced (cdk-nag AwsSolutions-SNS3). No encryption at rest: the topic carries
        # only alarm state changes, CloudWatch cannot publish to a topic under the AWS managed
        # SNS key, and a customer managed key would cost more than the rest of an idle stack.
        topic = sns.Topic(
            self, "AlarmTopic", display_name="segment-raindrop alarms", enforce_ssl=True
        )
        # enforce_ssl makes CDK write a topic policy, which replaces SNS's default one: without
        # this statement nothing may publish and every alarm action fails "not authorized".
        topic.add_to_resource_policy(self._cloudwatch_may_publish(topic))
        topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _notify(self, topics: list[sns.ITopic], *, on_recovery: bool) -> None:
        """Every alarm notifies each topic when it fires and, with alarmOnRecovery, when it
        returns to OK (off by default: twice the messages for one incident)."""
        for topic in topics:
            action = cloudwatch_actions.SnsAction(topic)
            for alarm in self.alarms:
                alarm.add_alarm_action(action)
                if on_recovery:
                    alarm.add_ok_action(action)

    def _cloudwatch_may_publish(self, topic: sns.ITopic) -> iam.PolicyStatement:
        """CloudWatch may publish for this stack's alarms (their names share the prefix; so
        do a longer stage's, e.g. prod-eu for prod, still this project's) in this account only:
        the confused-deputy guard AWS documents for service principals."""
        stack = cdk.Stack.of(self)
        alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{self._prefix}-*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        return iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            effect=iam.Effect.ALLOW,
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": alarms},
            },
        )
