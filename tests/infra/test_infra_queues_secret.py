"""Queues (encryption, TLS, sizes, redrive) and the secret (created or imported)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions

from tests.infra.support import HANDLERS, environment, only, ref_or_att, resources, synth

RETRY_RETENTION = 4 * 86400
DLQ_RETENTION = 14 * 86400


def _queues(template: assertions.Template) -> tuple[tuple[str, Any], tuple[str, Any]]:
    return (
        only(template, "AWS::SQS::Queue", MessageRetentionPeriod=RETRY_RETENTION),
        only(template, "AWS::SQS::Queue", MessageRetentionPeriod=DLQ_RETENTION),
    )


def test_two_encrypted_queues_of_1_mib_messages(template: assertions.Template) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    assert len(queues) == 2
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert queue["Properties"]["MaximumMessageSize"] == 1_048_576


def test_dead_letter_queue_keeps_messages_14_days(template: assertions.Template) -> None:
    (_, retry), (_, dlq) = _queues(template)
    assert dlq["Properties"]["MessageRetentionPeriod"] == 1_209_600
    # A moved message keeps its first enqueue time: the DLQ must outlive the retry queue.
    assert retry["Properties"]["MessageRetentionPeriod"] < DLQ_RETENTION


@pytest.mark.parametrize(("fixture", "receives"), [("template", 8), ("custom_template", 5)])
def test_retry_queue_redrives_after_the_configured_receives(
    fixture: str, receives: int, request: pytest.FixtureRequest
) -> None:
    template: assertions.Template = request.getfixturevalue(fixture)
    (_, retry), (dlq_id, _) = _queues(template)
    redrive = retry["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == receives
    assert ref_or_att(redrive["deadLetterTargetArn"]) == dlq_id


def test_both_queues_deny_requests_without_tls(template: assertions.Template) -> None:
    (retry_id, _), (dlq_id, _) = _queues(template)
    protected: set[str | None] = set()
    for policy in resources(template, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if (
                statement["Effect"] == "Deny"
                and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                and statement["Action"] == "sqs:*"
            ):
                protected.update(ref_or_att(queue) for queue in policy["Properties"]["Queues"])
    assert protected == {retry_id, dlq_id}


def test_outputs_name_the_queues_and_replay(template: assertions.Template) -> None:
    (retry_id, _), (dlq_id, _) = _queues(template)
    outputs = template.find_outputs("*")
    assert ref_or_att(outputs["RetryQueueUrl"]["Value"]) == retry_id
    assert ref_or_att(outputs["DeadLetterQueueUrl"]["Value"]) == dlq_id
    replay_id = only(
        template, "AWS::Lambda::Function", Handler="segment_raindrop.handlers.replay.handler"
    )[0]
    assert ref_or_att(outputs["ReplayFunctionName"]["Value"]) == replay_id


def test_created_secret_generates_the_token_and_a_placeholder_key(
    template: assertions.Template,
) -> None:
    secret_id, secret = only(template, "AWS::SecretsManager::Secret")
    generated = secret["Properties"]["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"raindrop_api_key": "REPLACE_ME"}
    assert generated["GenerateStringKey"] == "webhook_token"
    assert generated["ExcludePunctuation"] is True
    assert generated["PasswordLength"] >= 32
    assert ref_or_att(template.find_outputs("SecretArn")["SecretArn"]["Value"]) == secret_id


def test_secret_imported_by_name(custom_template: assertions.Template) -> None:
    assert resources(custom_template, "AWS::SecretsManager::Secret") == {}
    for handler in HANDLERS:
        assert environment(custom_template, handler)["RAINDROP_SECRET_ID"] == (
            "segment-raindrop/staging"
        )
    arn = json.dumps(custom_template.find_outputs("SecretArn")["SecretArn"]["Value"])
    assert ":secret:segment-raindrop/staging" in arn


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:forwarder-AbC123",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:forwarder",
    ],
    ids=["complete", "partial"],
)
def test_secret_imported_by_arn(arn: str) -> None:
    template = synth(secretArn=arn)
    assert resources(template, "AWS::SecretsManager::Secret") == {}
    for handler in HANDLERS:
        assert environment(template, handler)["RAINDROP_SECRET_ID"] == arn
    assert template.find_outputs("SecretArn")["SecretArn"]["Value"] == arn
