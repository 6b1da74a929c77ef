"""Alarms, the optional SNS e-mail subscription, and the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions

from infra.app import build_app
from infra.dashboard import EVENT_METRICS
from tests.infra.support import (
    HANDLERS,
    context_with,
    function,
    only,
    ref_or_att,
    referenced,
    resources,
)

FORWARDER_METRICS = (
    *EVENT_METRICS,
    "UnauthorizedRequests",
    "RaindropRequests",
    "RaindropRequestFailures",
    "RaindropLatency",
    "RaindropCircuitOpened",
    "RaindropRedirects",
    "ApiRequestsTooLarge",
    "RetryFailureAge",
    "RaindropSdkRequests",
    "MirrorEventsSent",
    "MirrorFailures",
    "MirrorDisabled",
    "ApiRequestsThrottled",
    "ApiGatewayErrors",
)
# Every forwarder metric of the default stage (cdk.json's "prod"): the stage is a dimension.
PROD_DIMENSIONS = [
    {"Name": "service", "Value": "segment-raindrop"},
    {"Name": "stage", "Value": "prod"},
]


def _alarms(template: assertions.Template) -> dict[str, dict[str, Any]]:
    """Alarm properties by the alarm name's last part."""
    return {
        alarm["Properties"]["AlarmName"].rsplit("-", 1)[-1]: alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def _dimension_target(metric: dict[str, Any]) -> str | None:
    return ref_or_att(metric["Dimensions"][0]["Value"])


def _queue(template: assertions.Template, retention_days: int) -> str:
    return only(template, "AWS::SQS::Queue", MessageRetentionPeriod=retention_days * 86400)[0]


def _depth_of(alarm: dict[str, Any]) -> tuple[str | None, int]:
    """(queue, period) of an alarm on visible + in-flight depth; fails for any other alarm."""
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    expression = next(q for q in queries.values() if "Expression" in q)
    assert expression["Expression"] == "FILL(visible, 0) + FILL(inflight, 0)"
    assert expression.get("ReturnData", True) is True
    stats = {name: queries[name]["MetricStat"] for name in ("visible", "inflight")}
    assert stats["visible"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert stats["inflight"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesNotVisible"
    queues = {_dimension_target(stat["Metric"]) for stat in stats.values()}
    periods = {stat["Period"] for stat in stats.values()}
    assert len(queues) == len(periods) == 1
    assert {stat["Stat"] for stat in stats.values()} == {"Maximum"}
    return queues.pop(), periods.pop()


def test_dead_letter_queue_not_empty_counts_messages_being_replayed(
    template: assertions.Template,
) -> None:
    # Visible only would clear while a replay holds the messages and fire again when it puts
    # back what still fails: one alarm per replay. Visible + in flight only moves on deletes.
    alarm = _alarms(template)["DeadLetterQueueNotEmpty"]
    assert _depth_of(alarm) == (_queue(template, 14), 300)
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (1, 1)


def test_dead_letter_queue_unattended_for_a_week_by_depth_not_age(
    template: assertions.Template,
) -> None:
    # SQS's age metric forgets a message once it has been received three times (every dry run
    # or peek is a receive): "not empty for a week" cannot be reset that way.
    alarms = _alarms(template)
    assert "DeadLetterQueueOldestMessage" not in alarms
    alarm = alarms["DeadLetterQueueUnattended"]
    assert _depth_of(alarm) == (_queue(template, 14), 3600)
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 7 * 24
    # CloudWatch's limit for hourly periods: 7 days of evaluation.
    assert alarm["EvaluationPeriods"] * 3600 <= 7 * 86400


def test_retries_failing_reads_the_forwarders_failure_age(template: assertions.Template) -> None:
    # Raindrop failing for a while shows in the age of first_failure_at, which survives
    # re-queueing; SQS's oldest-message age leaves out exactly these messages.
    alarms = _alarms(template)
    assert "RetryQueueOldestMessage" not in alarms
    alarm = alarms["RetriesFailing"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SegmentRaindrop", "RetryFailureAge")
    assert alarm["Dimensions"] == PROD_DIMENSIONS
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 900
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # One breaching message in the last half hour holds it: late receives come far apart.
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["Period"]) == (6, 1, 300)


def test_retry_queue_stalled_uses_sqs_age_where_it_is_accurate(
    template: assertions.Template,
) -> None:
    # Messages nobody receives stay in SQS's age metric: it is right for "nothing consumes".
    alarm = _alarms(template)["RetryQueueStalled"]
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert _dimension_target(alarm) == _queue(template, 4)
    assert alarm["Statistic"] == "Maximum"
    # Beyond the longest back-off schedule (about 2 hours), well before SQS's 4-day expiry.
    assert 2 * 3600 < alarm["Threshold"] < 4 * 86400
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 3


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("RaindropCircuitOpened", "RaindropCircuitOpened"),
        ("RaindropRedirects", "RaindropRedirects"),
        ("ApiRequestsTooLarge", "ApiRequestsTooLarge"),
        ("ApiRequestsThrottled", "ApiRequestsThrottled"),
        ("ApiGatewayErrors", "ApiGatewayErrors"),
    ],
)
def test_alarm_on_the_first_of_a_forwarder_metric(
    template: assertions.Template, name: str, metric: str
) -> None:
    alarm = _alarms(template)[name]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SegmentRaindrop", metric)
    assert alarm["Dimensions"] == PROD_DIMENSIONS
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def _access_log(template: assertions.Template) -> tuple[str | None, dict[str, str]]:
    """(the log group, the JSON format) both APIs' stages write their access log with."""
    stages = resources(template, "AWS::ApiGateway::Stage").values()
    (access_logs,) = set().union(
        *(referenced(stage["Properties"]["AccessLogSetting"]["DestinationArn"]) for stage in stages)
    )
    (log_format,) = {stage["Properties"]["AccessLogSetting"]["Format"] for stage in stages}
    return access_logs, json.loads(log_format)


def _metric_filters(template: assertions.Template) -> dict[str, dict[str, Any]]:
    """Each access-log metric filter's properties by the metric it publishes."""
    filters = resources(template, "AWS::Logs::MetricFilter").values()
    by_metric = {
        f["Properties"]["MetricTransformations"][0]["MetricName"]: f["Properties"] for f in filters
    }
    assert len(by_metric) == len(filters)
    return by_metric


@pytest.mark.parametrize(
    ("metric", "pattern"),
    [
        # API Gateway answers a body over Lambda's 6 MB payload itself: only its access log
        # sees it.
        ("ApiRequestsTooLarge", '{ $.status = "413" }'),
        # The stage's throttle answers before any function runs.
        ("ApiRequestsThrottled", '{ $.status = "429" }'),
        # API Gateway's own 5xx (a gateway response), not the function's 503s.
        ("ApiGatewayErrors", '{ ($.status = "5*") && ($.errorResponseType != "-") }'),
    ],
)
def test_refusals_are_counted_from_the_access_log_with_the_alarms_dimensions(
    template: assertions.Template, metric: str, pattern: str
) -> None:
    # Both APIs write the one log.
    access_logs, log_format = _access_log(template)
    properties = _metric_filters(template)[metric]
    assert ref_or_att(properties["LogGroupName"]) == access_logs
    assert properties["FilterPattern"] == pattern
    # Strings in the log: hence the quotes.
    assert log_format["status"] == "$context.status"
    assert log_format["errorResponseType"] == "$context.error.responseType"
    (transformation,) = properties["MetricTransformations"]
    assert transformation["MetricNamespace"] == "SegmentRaindrop"
    assert transformation["MetricValue"] == "1"
    # A filter's dimension values come from the event: the log carries the service and the
    # stack's stage as constants (the SDK API's own stage is "v1" whatever the stack's).
    assert transformation["Dimensions"] == [
        {"Key": "service", "Value": "$.service"},
        {"Key": "stage", "Value": "$.stage"},
    ]
    assert (log_format["service"], log_format["stage"]) == ("segment-raindrop", "prod")
    assert _alarms(template)[metric]["MetricName"] == metric


def test_the_functions_are_told_their_stage(
    template: assertions.Template, custom_template: assertions.Template
) -> None:
    # Powertools adds it to every metric (adapters.observability): the alarms' dimension.
    for handler in HANDLERS:
        _, prod = function(template, handler)
        assert prod["Properties"]["Environment"]["Variables"]["STAGE"] == "prod"
        _, staging = function(custom_template, handler)
        assert staging["Properties"]["Environment"]["Variables"]["STAGE"] == "staging"
    _, log_format = _access_log(custom_template)
    assert log_format["stage"] == "staging"
    assert template.find_outputs("Stage")["Stage"]["Value"] == "prod"


def _literal_metrics(template: assertions.Template) -> set[str]:
    """Every metric an alarm reads that is named only by literal values (its namespace, name
    and dimension values: no reference to a resource of the stack, which is per stack anyway).
    """
    found: set[str] = set()
    for alarm in _alarms(template).values():
        metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        if "MetricName" in alarm:
            metrics.append(alarm)
        for metric in metrics:
            dimensions = metric.get("Dimensions", [])
            if all(isinstance(d["Value"], str) for d in dimensions):
                found.add(json.dumps([metric["Namespace"], metric["MetricName"], dimensions]))
    return found


def test_two_stages_side_by_side_share_no_metric_in_any_alarm(
    template: assertions.Template, custom_template: assertions.Template
) -> None:
    # prod and staging deployed in one account and region: staging's failures never fire
    # prod's alarms. The dashboards read the same metrics as the alarms.
    prod, staging = _literal_metrics(template), _literal_metrics(custom_template)
    custom = {m for m in prod if json.loads(m)[0] == "SegmentRaindrop"}
    assert len(custom) >= 10  # the forwarder's own metrics are among them
    assert prod & staging == set()
    _, prod_board = only(template, "AWS::CloudWatch::Dashboard")
    _, staging_board = only(custom_template, "AWS::CloudWatch::Dashboard")
    assert '\\"stage\\",\\"prod\\"' in json.dumps(prod_board["Properties"]["DashboardBody"])
    assert '\\"stage\\",\\"prod\\"' not in json.dumps(staging_board["Properties"]["DashboardBody"])


def test_errors_and_throttles_per_function(template: assertions.Template) -> None:
    alarms = _alarms(template)
    watched = {
        (alarm["MetricName"], _dimension_target(alarm))
        for alarm in alarms.values()
        if alarm.get("Namespace") == "AWS/Lambda"
    }
    expected = {
        (metric, function(template, handler)[0])
        for handler in HANDLERS
        for metric in ("Errors", "Throttles")
    }
    assert watched == expected


def test_api_5xx_and_unauthorized_spike(template: assertions.Template) -> None:
    alarms = _alarms(template)
    # One alarm over both APIs: the sum of their 5XXError, each missing point counted as 0.
    server_errors = alarms["Api5xx"]
    queries = server_errors["Metrics"]
    (expression,) = [query["Expression"] for query in queries if "Expression" in query]
    summed = [query for query in queries if "MetricStat" in query]
    assert [query["MetricStat"]["Metric"]["MetricName"] for query in summed] == ["5XXError"] * 2
    assert {query["MetricStat"]["Metric"]["Namespace"] for query in summed} == {"AWS/ApiGateway"}
    assert expression == " + ".join(f"FILL({query['Id']}, 0)" for query in summed)
    dimensions = [
        {d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]}
        for query in summed
    ]
    assert {d["ApiName"] for d in dimensions} == {
        "segment-raindrop-prod",
        "segment-raindrop-prod-sdks",
    }
    # Each API's own stage: API names alone could coincide across stages.
    stages = resources(template, "AWS::ApiGateway::Stage")
    assert {ref_or_att(d["Stage"]) for d in dimensions} == set(stages)
    spike = alarms["UnauthorizedSpike"]
    assert (spike["Namespace"], spike["MetricName"]) == ("SegmentRaindrop", "UnauthorizedRequests")
    assert spike["Dimensions"] == PROD_DIMENSIONS
    assert spike["Statistic"] == "Sum"
    assert spike["Threshold"] > 1


def test_unverifiable_batches_alarm_on_the_first_one(template: assertions.Template) -> None:
    # Published by the webhook (auth.UNVERIFIABLE_BATCH_REASON): the set-up lacks a token.
    alarm = _alarms(template)["UnverifiableBatches"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SegmentRaindrop", "UnverifiableBatches")
    assert alarm["Dimensions"] == PROD_DIMENSIONS
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


def test_without_alarm_email_synth_and_deploy_warn_and_the_outputs_say_so() -> None:
    # `cdk synth` and `cdk deploy` print a stack's warnings. (has_warning, not find_warning:
    # the messages find_warning returns need a jsii type loaded only by some import orders.)
    _, stack = build_app(context_with())
    assertions.Annotations.from_stack(stack).has_warning(
        "*", assertions.Match.string_like_regexp("No one receives .* -c alarmEmail=")
    )
    outputs = assertions.Template.from_stack(stack).find_outputs("AlarmNotifications")
    assert outputs["AlarmNotifications"]["Value"] == "nobody (set alarmEmail or alarmTopicArn)"


def test_with_alarm_email_no_warning(custom_template: assertions.Template) -> None:
    _, stack = build_app(context_with(alarmEmail="ops@example.com"))
    assertions.Annotations.from_stack(stack).has_no_warning(
        "*", assertions.Match.string_like_regexp("No one receives")
    )
    outputs = custom_template.find_outputs("AlarmNotifications")
    assert outputs["AlarmNotifications"]["Value"] == "ops@example.com"


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
    assert len(alarms) == 23
    for alarm in alarms.values():
        assert [ref_or_att(action) for action in alarm["AlarmActions"]] == [topic_id]
        # Recovery notifications are a setting (alarmOnRecovery), off by default.
        assert "OKActions" not in alarm


EXISTING_TOPIC = "arn:aws:sns:eu-west-1:123456789012:oncall-alerts"


def test_an_existing_topic_instead_of_email_with_recovery_notifications() -> None:
    # Teams that route alarms to chat or paging give their topic; no topic is created.
    _, stack = build_app(context_with(alarmTopicArn=EXISTING_TOPIC, alarmOnRecovery="true"))
    assertions.Annotations.from_stack(stack).has_no_warning(
        "*", assertions.Match.string_like_regexp("No one receives")
    )
    template = assertions.Template.from_stack(stack)
    assert resources(template, "AWS::SNS::Topic") == {}
    alarms = _alarms(template)
    assert len(alarms) == 23
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [EXISTING_TOPIC]
        assert alarm["OKActions"] == [EXISTING_TOPIC]
    outputs = template.find_outputs("AlarmNotifications")
    assert outputs["AlarmNotifications"]["Value"] == EXISTING_TOPIC


def test_cloudwatch_may_publish_to_the_topic_for_this_stacks_alarms_only(
    custom_template: assertions.Template,
) -> None:
    # A topic policy replaces SNS's default: with only the TLS deny in it, every alarm action
    # fails "not authorized to perform SNS:Publish" and no e-mail ever arrives.
    topic_id, _ = only(custom_template, "AWS::SNS::Topic")
    _, policy = only(custom_template, "AWS::SNS::TopicPolicy")
    assert [ref_or_att(topic) for topic in policy["Properties"]["Topics"]] == [topic_id]
    allows = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert ref_or_att(allow["Resource"]) == topic_id
    conditions = allow["Condition"]
    assert conditions["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = json.dumps(conditions["ArnLike"]["aws:SourceArn"])
    assert ":cloudwatch:" in source_arn
    assert ":alarm:segment-raindrop-staging-*" in source_arn
    # Every alarm of the stack is covered by that pattern.
    for name in _alarm_names(custom_template):
        assert name.startswith("segment-raindrop-staging-")


def _alarm_names(template: assertions.Template) -> list[str]:
    return [
        alarm["Properties"]["AlarmName"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    ]


def test_dashboard_shows_the_forwarder_queues_and_functions(
    template: assertions.Template,
) -> None:
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in FORWARDER_METRICS:
        own = f'\\"SegmentRaindrop\\",\\"{metric}\\",\\"service\\",\\"segment-raindrop\\"'
        assert f'{own},\\"stage\\",\\"prod\\"' in body
    for metric in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "Duration",
        "5XXError",
    ):
        assert metric in body
    for handler in HANDLERS:
        assert function(template, handler)[0] in body
    assert "DashboardUrl" in template.find_outputs("*")
