"""Alarms, the optional SNS e-mail subscription, and the dashboard."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import assertions

from infra.dashboard import EVENT_METRICS
from tests.infra.support import HANDLERS, function, only, ref_or_att, resources

FORWARDER_METRICS = (
    *EVENT_METRICS,
    "UnauthorizedRequests",
    "RaindropRequests",
    "RaindropRequestFailures",
    "RaindropLatency",
)


def _alarms(template: assertions.Template) -> dict[str, dict[str, Any]]:
    """Alarm properties by the alarm name's last part."""
    return {
        alarm["Properties"]["AlarmName"].rsplit("-", 1)[-1]: alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def _dimension_target(alarm: dict[str, Any]) -> str | None:
    return ref_or_att(alarm["Dimensions"][0]["Value"])


def test_dead_letter_queue_alarms(template: assertions.Template) -> None:
    dlq, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=14 * 86400)
    alarms = _alarms(template)
    not_empty = alarms["DeadLetterQueueNotEmpty"]
    assert not_empty["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert not_empty["Threshold"] == 0
    assert not_empty["ComparisonOperator"] == "GreaterThanThreshold"
    assert _dimension_target(not_empty) == dlq
    oldest = alarms["DeadLetterQueueOldestMessage"]
    assert oldest["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert _dimension_target(oldest) == dlq
    assert 0 < oldest["Threshold"] < 14 * 86400


def test_retry_queue_age_alarm(template: assertions.Template) -> None:
    retry, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=4 * 86400)
    alarm = _alarms(template)["RetryQueueOldestMessage"]
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert _dimension_target(alarm) == retry


def test_errors_and_throttles_per_function(template: assertions.Template) -> None:
    alarms = _alarms(template)
    watched = {
        (alarm["MetricName"], _dimension_target(alarm))
        for alarm in alarms.values()
        if alarm["Namespace"] == "AWS/Lambda"
    }
    expected = {
        (metric, function(template, handler)[0])
        for handler in HANDLERS
        for metric in ("Errors", "Throttles")
    }
    assert watched == expected


def test_api_5xx_and_unauthorized_spike(template: assertions.Template) -> None:
    alarms = _alarms(template)
    server_errors = alarms["Api5xx"]
    assert (server_errors["Namespace"], server_errors["MetricName"]) == (
        "AWS/ApiGateway",
        "5XXError",
    )
    spike = alarms["UnauthorizedSpike"]
    assert (spike["Namespace"], spike["MetricName"]) == ("SegmentRaindrop", "UnauthorizedRequests")
    assert spike["Dimensions"] == [{"Name": "service", "Value": "segment-raindrop"}]
    assert spike["Statistic"] == "Sum"
    assert spike["Threshold"] > 1


def test_unverifiable_batches_alarm_on_the_first_one(template: assertions.Template) -> None:
    # Published by the webhook (auth.UNVERIFIABLE_BATCH_REASON): the set-up lacks a token.
    alarm = _alarms(template)["UnverifiableBatches"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SegmentRaindrop", "UnverifiableBatches")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "segment-raindrop"}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 300
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "webhook_token" in alarm["AlarmDescription"]


def test_alarms_treat_missing_data_as_healthy(template: assertions.Template) -> None:
    for alarm in _alarms(template).values():
        assert alarm["TreatMissingData"] == "notBreaching"


def test_no_topic_without_alarm_email(template: assertions.Template) -> None:
    assert resources(template, "AWS::SNS::Topic") == {}
    for alarm in _alarms(template).values():
        assert "AlarmActions" not in alarm


def test_alarm_email_subscribes_to_a_tls_only_topic(custom_template: assertions.Template) -> None:
    topic_id, _ = only(custom_template, "AWS::SNS::Topic")
    _, subscription = only(custom_template, "AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    _, policy = only(custom_template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    alarms = _alarms(custom_template)
    assert len(alarms) == 12
    for alarm in alarms.values():
        assert [ref_or_att(action) for action in alarm["AlarmActions"]] == [topic_id]
        assert [ref_or_att(action) for action in alarm["OKActions"]] == [topic_id]


def test_dashboard_shows_the_forwarder_queues_and_functions(
    template: assertions.Template,
) -> None:
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in FORWARDER_METRICS:
        assert f'\\"SegmentRaindrop\\",\\"{metric}\\",\\"service\\",\\"segment-raindrop\\"' in body
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Duration",
        "5XXError",
    ):
        assert metric in body
    for handler in HANDLERS:
        assert function(template, handler)[0] in body
    assert "DashboardUrl" in template.find_outputs("*")
