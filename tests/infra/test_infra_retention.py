"""Data an operator cannot recreate survives `cdk destroy` and construct refactors.

The created secret holds the Raindrop key someone set by hand and the token Segment sends; the
dead-letter queue holds events not replayed yet; the partials table holds Raindrop interactions
not finished yet (not yet in Segment). All are retained by default (`retainData`),
and CloudFormation must never see them as new resources: a changed logical id replaces a
resource, and a changed GenerateSecretString generates a new value.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import assertions

from infra.partials import PARTIALS_TABLE_LOGICAL_ID
from infra.queues import DEAD_LETTER_QUEUE_LOGICAL_ID
from infra.secret import SECRET_LOGICAL_ID
from tests.infra.support import only, ref_or_att, resources, synth

DLQ_RETENTION = 14 * 86400


def test_secret_and_dead_letter_queue_are_retained_by_default(
    template: assertions.Template,
) -> None:
    _, secret = only(template, "AWS::SecretsManager::Secret")
    _, dlq = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=DLQ_RETENTION)
    _, table = only(template, "AWS::DynamoDB::Table")
    for resource in (secret, dlq, table, _dlq_policy(template)):
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"


def _dlq_policy(template: assertions.Template) -> dict[str, Any]:
    """The dead-letter queue's TLS-only policy (enforce_ssl): it stays with the queue."""
    (policy,) = [
        policy
        for policy in resources(template, "AWS::SQS::QueuePolicy").values()
        if [ref_or_att(queue) for queue in policy["Properties"]["Queues"]]
        == [DEAD_LETTER_QUEUE_LOGICAL_ID]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)
    return policy


def test_retain_data_false_deletes_them() -> None:
    template = synth(retainData="false")
    _, secret = only(template, "AWS::SecretsManager::Secret")
    _, dlq = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=DLQ_RETENTION)
    _, table = only(template, "AWS::DynamoDB::Table")
    for resource in (secret, dlq, table, _dlq_policy(template)):
        assert resource["DeletionPolicy"] == "Delete"


def test_nothing_else_is_retained(template: assertions.Template) -> None:
    # What destroy leaves behind is exactly what docs/deploy.md lists, plus API Gateway's
    # account-wide logging set-up, which is not this stack's alone.
    retained = {
        logical_id
        for logical_id, resource in template.to_json()["Resources"].items()
        if resource.get("DeletionPolicy") == "Retain"
    }
    account_id, account = only(template, "AWS::ApiGateway::Account")
    logging_role = ref_or_att(account["Properties"]["CloudWatchRoleArn"])
    dlq_policy = _dlq_policy(template)
    (dlq_policy_id,) = [
        logical_id
        for logical_id, policy in resources(template, "AWS::SQS::QueuePolicy").items()
        if policy == dlq_policy
    ]
    assert retained == {
        SECRET_LOGICAL_ID,
        DEAD_LETTER_QUEUE_LOGICAL_ID,
        dlq_policy_id,
        PARTIALS_TABLE_LOGICAL_ID,
        account_id,
        logging_role,
    }


def test_logical_ids_are_pinned(template: assertions.Template) -> None:
    # The ids these resources were first deployed with; a construct renamed or moved must not
    # change them (CloudFormation would create an empty queue, a secret with a new token).
    assert SECRET_LOGICAL_ID == "SecretA29EB826"
    assert DEAD_LETTER_QUEUE_LOGICAL_ID == "QueuesDeadLetterQueue82AA3FB7"
    assert only(template, "AWS::SecretsManager::Secret")[0] == SECRET_LOGICAL_ID
    assert (
        only(template, "AWS::SQS::Queue", MessageRetentionPeriod=DLQ_RETENTION)[0]
        == DEAD_LETTER_QUEUE_LOGICAL_ID
    )
    assert PARTIALS_TABLE_LOGICAL_ID == "MirrorPartialsTable"
    assert only(template, "AWS::DynamoDB::Table")[0] == PARTIALS_TABLE_LOGICAL_ID


def test_the_secrets_generator_never_changes(template: assertions.Template) -> None:
    # CloudFormation regenerates the whole value when GenerateSecretString changes: the key set
    # by hand becomes REPLACE_ME again and the token changes under Segment (401s, dropped).
    _, secret = only(template, "AWS::SecretsManager::Secret")
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated == {
        "ExcludePunctuation": True,
        "GenerateStringKey": "webhook_token",
        "PasswordLength": 48,
        "SecretStringTemplate": json.dumps({"raindrop_api_key": "REPLACE_ME"}),
    }


def test_the_retry_queue_is_not_kept(template: assertions.Template) -> None:
    # Kept, it would hold messages nothing receives (and so nothing moves to the dead-letter
    # queue) until SQS expires them: docs/deploy.md says to let it drain before destroying.
    retry = [
        resource
        for resource in resources(template, "AWS::SQS::Queue").values()
        if resource["Properties"]["MessageRetentionPeriod"] != DLQ_RETENTION
    ]
    assert [resource["DeletionPolicy"] for resource in retry] == ["Delete"]
