"""Alarms (optionally e-mailed through SNS) and the CloudWatch dashboard."""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import StackConfig
from infra.dashboard import build_dashboard, forwarder_metric
from infra.queues import ForwarderQueues
from segment_raindrop.contract import Metric

PERIOD: Final = cdk.Duration.minutes(5)
# Half the dead-letter retention: a week left to replay before SQS drops the message.
DLQ_MAX_AGE_SECONDS: Final = 7 * 24 * 3600
# The worker backs off 30 s doubling per receive (~2 h over 8 receives); an hour-old message
# means Raindrop has been failing for an hour.
RETRY_MAX_AGE_SECONDS: Final = 3600
# Segment always sends the same credentials, so a burst of 401s is a misconfiguration (token
# rotated on one side only) or someone probing the endpoint.
UNAUTHORIZED_PER_PERIOD: Final = 10
# Published by the webhook when a batch signed over its first element arrives and the secret
# has no webhook_token to demand: the set-up cannot verify Segment's batches, and each one is
# answered 503 (Segment retries for 4 hours). One is enough to act on.


class Monitoring(Construct):
    """Exposes `alarms`, `topic` (None without alarmEmail) and `dashboard`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        api: apigateway.RestApi,
        queues: ForwarderQueues,
        functions: dict[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = f"segment-raindrop-{config.stage}"
        self.alarms: list[cloudwatch.Alarm] = []
        dlq, retry = queues.dead_letter_queue, queues.retry_queue

        self._alarm(
            "DeadLetterQueueNotEmpty",
            dlq.metric_approximate_number_of_messages_visible(statistic="Maximum", period=PERIOD),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="Events are waiting in the dead-letter queue: inspect and replay them.",
        )
        self._alarm(
            "DeadLetterQueueOldestMessage",
            dlq.metric_approximate_age_of_oldest_message(statistic="Maximum", period=PERIOD),
            threshold=DLQ_MAX_AGE_SECONDS,
            description="A dead-lettered event is a week old; SQS deletes it after 14 days.",
        )
        self._alarm(
            "RetryQueueOldestMessage",
            retry.metric_approximate_age_of_oldest_message(statistic="Maximum", period=PERIOD),
            threshold=RETRY_MAX_AGE_SECONDS,
            description="Retries have been failing for an hour: is Raindrop reachable?",
        )
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
        self._alarm(
            "Api5xx",
            api.metric_server_error(statistic="Sum", period=PERIOD),
            threshold=1,
            description="API Gateway answered Segment with 5xx; Segment will retry.",
        )
        self._alarm(
            "UnauthorizedSpike",
            forwarder_metric(Metric.UNAUTHORIZED_REQUESTS, period=PERIOD),
            threshold=UNAUTHORIZED_PER_PERIOD,
            description="Many rejected requests: check the token/shared secret in Segment.",
        )
        self._alarm(
            "UnverifiableBatches",
            forwarder_metric(Metric.UNVERIFIABLE_BATCHES, period=PERIOD),
            threshold=1,
            description=(
                "Segment sent batches the forwarder cannot verify and they are being refused "
                "(503, retried by Segment for 4 hours): add webhook_token to the secret and an "
                "Authorization: Bearer header to the Segment mapping."
            ),
        )

        self.topic = self._notify(config.alarm_email) if config.alarm_email else None
        self.dashboard = build_dashboard(
            self, "Dashboard", name_prefix=self._prefix, api=api, queues=queues, functions=functions
        )

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
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._prefix}-{construct_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            # No data means no traffic (or an empty queue), which is healthy.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms.append(alarm)

    def _notify(self, email: str) -> sns.Topic:
        # TLS is enforced (cdk-nag AwsSolutions-SNS3). No encryption at rest: the topic carries
        # only alarm state changes, CloudWatch cannot publish to a topic under the AWS managed
        # SNS key, and a customer managed key would cost more than the rest of an idle stack.
        topic = sns.Topic(
            self, "AlarmTopic", display_name="segment-raindrop alarms", enforce_ssl=True
        )
        topic.add_subscription(subscriptions.EmailSubscription(email))
        action = cloudwatch_actions.SnsAction(topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return topic
