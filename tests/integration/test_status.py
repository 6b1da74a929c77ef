"""``segment-raindrop status --stack``: against moto's server (CloudFormation outputs, Secrets
Manager, SQS, CloudWatch alarms and metrics) and, for ``--ping``, the real webhook handler
behind local mode's HTTP front with the Raindrop receiver.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.contract import (
    METRICS_NAMESPACE,
    Metric,
    StackOutput,
    metric_dimensions,
)
from segment_raindrop_tools import events as se
from segment_raindrop_tools.cli import app
from segment_raindrop_tools.local.eventbridge import provision_eventbridge
from segment_raindrop_tools.local.front import Exchange, WebhookFront
from segment_raindrop_tools.local.invocations import SerialInvocations
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import REGION, AwsEnv
from tests.support.queues import put_message

STACK = "segment-raindrop-test"
PREFIX = f"{STACK}-"
runner = CliRunner()


def _client(aws: AwsEnv, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _create_stack(
    aws: AwsEnv, *, webhook_url: str = "http://127.0.0.1:9/segment", **outputs: str
) -> None:
    values = {
        "WebhookUrl": webhook_url,
        "RetryQueueUrl": aws.resources.retry_queue_url,
        "DeadLetterQueueUrl": aws.resources.dlq_url,
        "SecretArn": aws.resources.secret_id,
        **outputs,
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": STACK}}},
        "Outputs": {key: {"Value": value} for key, value in values.items()},
    }
    _client(aws, "cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


def _alarm(aws: AwsEnv, name: str, *, firing: bool = False) -> None:
    cloudwatch = _client(aws, "cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=METRICS_NAMESPACE,
        MetricName=Metric.EVENTS_DEAD_LETTERED.value,
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    if firing:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing")


def _metric(
    aws: AwsEnv, metric: Metric, value: float, minutes_ago: float, *, stage: str = "test"
) -> None:
    """A value of ``metric`` as the functions and the access log's filters publish it for
    ``stage`` (the stack's, by default: its name ends in it)."""
    _client(aws, "cloudwatch").put_metric_data(
        Namespace=METRICS_NAMESPACE,
        MetricData=[
            {
                "MetricName": metric.value,
                "Dimensions": [
                    {"Name": name, "Value": value}
                    for name, value in metric_dimensions(stage).items()
                ],
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=minutes_ago),
            }
        ],
    )


def _set_secret(aws: AwsEnv, **changes: str | None) -> None:
    value = {**aws.secret, **changes}
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({k: v for k, v in value.items() if v is not None}),
    )


def _status(aws: AwsEnv, *args: str) -> Any:
    return runner.invoke(
        app,
        ["status", "--stack", STACK, "--region", REGION, *args],
        # The webhook behind --ping runs in this process: its metrics would print here.
        env={"AWS_ENDPOINT_URL": aws.endpoint_url, "POWERTOOLS_METRICS_DISABLED": "true"},
        catch_exceptions=False,
    )


def _report(result: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def _assert_no_secret_values(aws: AwsEnv, output: str) -> None:
    for value in aws.secret.values():
        assert value not in output


def test_a_healthy_stack_exits_0_with_the_last_hours_counts(aws: AwsEnv) -> None:
    _create_stack(aws)
    _alarm(aws, f"{PREFIX}DeadLetterQueueNotEmpty")
    _alarm(aws, f"{PREFIX}WebhookErrors")
    # Not this stack's: a longer stage sharing the prefix, and another project.
    _alarm(aws, f"{PREFIX}eu-WebhookErrors", firing=True)
    _alarm(aws, "other-project-Errors", firing=True)
    _metric(aws, Metric.EVENTS_RECEIVED, 7, minutes_ago=30)
    _metric(aws, Metric.EVENTS_RECEIVED, 5, minutes_ago=2)
    _metric(aws, Metric.EVENTS_RECEIVED, 100, minutes_ago=90)  # outside the hour
    _metric(aws, Metric.EVENTS_FORWARDED, 10, minutes_ago=2)
    _metric(aws, Metric.EVENTS_FILTERED, 2, minutes_ago=2)
    _metric(aws, Metric.RETRY_FAILURE_AGE, 40, minutes_ago=5)
    # Another stage in the same account and region: none of its counts are this stack's.
    _metric(aws, Metric.EVENTS_RECEIVED, 1000, minutes_ago=2, stage="test-eu")
    _metric(aws, Metric.API_REQUESTS_THROTTLED, 9, minutes_ago=2, stage="staging")

    result = _status(aws, "--json")

    assert result.exit_code == 0, result.output
    report = _report(result)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["secret"] == {
        "readable": True,
        "raindrop_key_configured": True,
        "webhook_token": True,
        "webhook_token_previous": False,
        "segment_shared_secret": True,
        "segment_write_key_needed": False,
        "segment_write_key_configured": False,
        "error": None,
        "ready": True,
    }
    assert report["dead_letter_queue"]["total"] == report["retry_queue"]["total"] == 0
    assert report["alarms"]["total"] == 2
    assert report["alarms"]["in_alarm"] == []
    counts = report["counts"]
    assert (counts["received"], counts["forwarded"], counts["filtered"]) == (12, 10, 2)
    assert (counts["queued"], counts["dead_lettered"]) == (0, 0)
    assert (counts["too_large"], counts["throttled"], counts["gateway_errors"]) == (0, 0, 0)
    assert counts["retry_failure_age_seconds"] == 40
    assert report["ping"] is None
    _assert_no_secret_values(aws, result.output)

    summary = _status(aws)
    assert summary.exit_code == 0, summary.output
    assert "Healthy: nothing needs attention." in summary.stdout
    assert "received 12, forwarded 10, queued 0, dead-lettered 0" in summary.stdout
    _assert_no_secret_values(aws, summary.output)


def test_what_needs_attention_exits_1_and_is_listed(aws: AwsEnv) -> None:
    _create_stack(aws)
    _set_secret(aws, raindrop_api_key="REPLACE_ME")
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)], first_failure_at="2026-11-20T10:00:00Z")
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(2)], first_failure_at="2026-11-18T08:30:00Z")
    put_message(aws, QueueTarget.RETRY, [se.chat(3)])
    _alarm(aws, f"{PREFIX}DeadLetterQueueNotEmpty", firing=True)
    _alarm(aws, f"{PREFIX}WebhookErrors")

    result = _status(aws, "--json")

    assert result.exit_code == 1, result.output
    report = _report(result)
    assert report["ok"] is False
    assert report["secret"]["ready"] is False
    assert report["secret"]["raindrop_key_configured"] is False
    assert report["dead_letter_queue"]["total"] == 2
    assert report["retry_queue"]["total"] == 1
    assert report["dead_letters"] == {
        "oldest_failure_at": "2026-11-18T08:30:00Z",
        "peeked": 2,
        "error": None,
    }
    assert [alarm["name"] for alarm in report["alarms"]["in_alarm"]] == [
        f"{PREFIX}DeadLetterQueueNotEmpty"
    ]
    problems = "\n".join(report["problems"])
    assert "Raindrop key in the secret is missing or a placeholder" in problems
    assert "dead-letter queue holds 2 message(s)" in problems
    assert f"alarm {PREFIX}DeadLetterQueueNotEmpty is in ALARM" in problems
    assert len(report["problems"]) == 3  # a retry message alone is no problem
    # Peeking left the dead letters where they were, visible to a replay at once.
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.resources.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "2"

    summary = _status(aws)
    assert summary.exit_code == 1
    assert "Needs attention:" in summary.stdout
    assert "oldest failure 2026-11-18T08:30:00Z" in summary.stdout
    assert "DeadLetterQueueNotEmpty" in summary.stdout
    _assert_no_secret_values(aws, summary.output)


def test_requests_refused_as_too_large_need_attention(aws: AwsEnv) -> None:
    # Counted from the access log (infra/api.py): Segment dropped these batches.
    _create_stack(aws)
    _alarm(aws, f"{PREFIX}WebhookErrors")
    _metric(aws, Metric.API_REQUESTS_TOO_LARGE, 2, minutes_ago=10)
    _metric(aws, Metric.API_REQUESTS_TOO_LARGE, 1, minutes_ago=3)

    result = _status(aws, "--json")

    assert result.exit_code == 1, result.output
    report = _report(result)
    assert report["counts"]["too_large"] == 3
    assert report["problems"] == [
        "3 request(s) were too large for Lambda and answered 413, which Segment drops: lower "
        "the Webhooks batch size (stack output SegmentBatchSize)"
    ]
    summary = _status(aws)
    assert summary.exit_code == 1
    # The console wraps the table's lines.
    printed = " ".join(summary.stdout.split())
    assert "3 request(s) too large (413, dropped by Segment)" in printed


def test_requests_refused_by_api_gateway_need_attention(aws: AwsEnv) -> None:
    # Counted from the access log (infra/api.py): 429s from the stage's throttle, which
    # Raindrop's SDK drops, and 5xx API Gateway answered itself. The Stage output names the
    # metrics' stage.
    _create_stack(aws, Stage="blue")
    _alarm(aws, f"{PREFIX}WebhookErrors")
    _metric(aws, Metric.API_REQUESTS_THROTTLED, 4, minutes_ago=10, stage="blue")
    _metric(aws, Metric.API_GATEWAY_ERRORS, 2, minutes_ago=3, stage="blue")
    _metric(aws, Metric.API_GATEWAY_ERRORS, 50, minutes_ago=3)  # stage "test": not this one

    result = _status(aws, "--json")

    assert result.exit_code == 1, result.output
    report = _report(result)
    counts = report["counts"]
    assert (counts["too_large"], counts["throttled"], counts["gateway_errors"]) == (0, 4, 2)
    assert [problem.split(" (")[0] for problem in report["problems"]] == [
        "4 request(s) were answered 429 by API Gateway's throttle",
        "API Gateway answered 2 request(s) with 5xx itself",
    ]
    summary = _status(aws)
    assert summary.exit_code == 1
    printed = " ".join(summary.stdout.split())
    assert "0 request(s) too large (413, dropped by Segment), 4 throttled (429), 2 answered " in (
        printed
    )


def test_with_the_mirror_on_the_segment_write_key_is_part_of_ready(aws: AwsEnv) -> None:
    _create_stack(aws, MirrorToSegment="true")
    _alarm(aws, f"{PREFIX}WebhookErrors")
    _set_secret(aws, segment_write_key="REPLACE_ME")

    result = _status(aws, "--json")

    assert result.exit_code == 1, result.output
    report = _report(result)
    assert report["secret"]["segment_write_key_needed"] is True
    assert report["secret"]["ready"] is False
    assert report["problems"] == [
        "the mirror is on but the secret has no segment_write_key (or a placeholder): "
        "Raindrop's SDK traffic reaches Raindrop, not Segment (docs/deploy.md, section 4)"
    ]
    assert "Segment write key NOT set (mirror on)" in " ".join(_status(aws).stdout.split())

    _set_secret(aws, segment_write_key="wk_real_key_1234567890")
    ready = _report(_status(aws, "--json"))
    assert ready["secret"]["ready"] is True
    assert ready["ok"] is True


def test_a_secret_without_a_token_is_not_ready(aws: AwsEnv) -> None:
    _create_stack(aws)
    _alarm(aws, f"{PREFIX}WebhookErrors")
    _set_secret(aws, webhook_token=None, webhook_token_previous="old-token")

    report = _report(_status(aws, "--json"))

    assert report["secret"]["webhook_token"] is False
    assert report["secret"]["webhook_token_previous"] is True
    assert report["problems"] == [
        "the secret has no webhook_token: Segment's requests cannot authenticate"
    ]


def test_what_cannot_be_read_is_said(aws: AwsEnv) -> None:
    unknown = runner.invoke(
        app,
        ["status", "--stack", "no-such-stack", "--region", REGION],
        env={"AWS_ENDPOINT_URL": aws.endpoint_url},
    )
    assert unknown.exit_code == 2
    assert "cannot read the outputs of stack 'no-such-stack'" in unknown.stderr

    no_region = runner.invoke(
        app, ["status", "--stack", STACK], env={"AWS_DEFAULT_REGION": None, "AWS_REGION": None}
    )
    assert no_region.exit_code == 2
    assert "Pass --region or set AWS_REGION" in no_region.stderr

    _create_stack(aws, DeadLetterQueueUrl=aws.resources.dlq_url + "-gone")
    report = _report(_status(aws, "--json"))
    assert report["dead_letter_queue"]["error"] is not None
    problems = "\n".join(report["problems"])
    assert "the dead-letter queue could not be read" in problems
    # No alarm with the stack's prefix: the wrong region, or not this stack's name.
    assert f"no alarms named {PREFIX}* were found" in problems


# --ping through the real webhook handler over HTTP


@pytest.fixture
def webhook_url(aws: AwsEnv, receiver: RaindropReceiver) -> Iterator[str]:
    exchanges: list[Exchange] = []
    errors: list[BaseException] = []
    front = WebhookFront(
        ("127.0.0.1", 0),
        invocations=SerialInvocations(),
        on_exchange=exchanges.append,
        on_handler_error=errors.append,
    )
    front.start()
    try:
        yield f"http://127.0.0.1:{front.port}/segment"
    finally:
        front.stop()
    assert errors == []


def test_ping_sends_one_authenticated_event_that_reaches_raindrop(
    aws: AwsEnv, receiver: RaindropReceiver, webhook_url: str
) -> None:
    _create_stack(aws, webhook_url=webhook_url)
    _alarm(aws, f"{PREFIX}WebhookErrors")

    result = _status(aws, "--ping", "--json")

    assert result.exit_code == 0, result.output
    ping = _report(result)["ping"]
    assert ping["ok"] is True
    assert ping["status"] == 200
    assert ping["answer"]["forwarded"] == 1
    assert ping["trace_id"].startswith("status-ping-")
    (item,) = receiver.accepted("events/track")
    assert item["event_id"] == ping["trace_id"]
    assert item["user_id"] == "segment-raindrop-status"
    (request,) = receiver.requests
    assert request.path.endswith("/events/track")


def test_a_ping_raindrop_does_not_take_needs_attention(
    aws: AwsEnv, receiver: RaindropReceiver, webhook_url: str
) -> None:
    _create_stack(aws, webhook_url=webhook_url)
    _alarm(aws, f"{PREFIX}WebhookErrors")
    aws.configure(delivery={"max_attempts": 1, "budget_seconds": 2})
    receiver.outage()

    result = _status(aws, "--ping")

    assert result.exit_code == 1, result.output
    assert "the test event did not get through: HTTP 200: received 1, forwarded 0" in (
        " ".join(result.stdout.split())
    )
    assert aws.queue_depth(aws.resources.retry_queue_url) == 1


def test_the_eventbridge_intake_is_reported(aws: AwsEnv) -> None:
    intake = provision_eventbridge(
        endpoint_url=aws.endpoint_url, region=REGION, sources=["aws.partner/segment.com/st"]
    )
    _create_stack(
        aws,
        **{
            StackOutput.SEGMENT_EVENTS_QUEUE_URL.value: intake.queue_url,
            StackOutput.SEGMENT_EVENTS_DEAD_LETTER_QUEUE_URL.value: intake.dlq_url,
        },
    )
    aws.sqs.send_message(QueueUrl=intake.dlq_url, MessageBody="{}")

    result = _status(aws, "--json")

    assert result.exit_code == 1, result.output
    report = _report(result)
    assert report["intake_queue"]["total"] == 0
    assert report["intake_dead_letter_queue"]["total"] == 1
    assert any("EventBridge intake's dead-letter queue holds 1" in p for p in report["problems"])
    summary = _status(aws)
    assert "EventBridge intake" in summary.stdout
    assert "Intake dead letters" in summary.stdout


def test_a_stack_without_the_intake_reports_none(aws: AwsEnv) -> None:
    _create_stack(aws)

    report = _report(_status(aws, "--json"))

    assert report["intake_queue"] is None
    assert report["intake_dead_letter_queue"] is None
