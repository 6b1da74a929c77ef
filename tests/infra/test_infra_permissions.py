"""Least privilege: exactly what each function needs, on exactly its resources."""

from __future__ import annotations

from typing import Any

from aws_cdk import assertions

from tests.infra.support import (
    HANDLERS,
    MIRROR_HANDLER,
    RETRY_HANDLER,
    WEBHOOK_HANDLER,
    actions_on,
    function,
    only,
    ref_or_att,
    role_statements,
)

READ_SECRET = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}


def _ids(template: assertions.Template) -> tuple[str, str, str]:
    secret, _ = only(template, "AWS::SecretsManager::Secret")
    retry, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=4 * 86400)
    dlq, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=14 * 86400)
    return secret, retry, dlq


def _expected(template: assertions.Template, handler: str) -> dict[str, set[str]]:
    secret, retry, dlq = _ids(template)
    if handler in (WEBHOOK_HANDLER, MIRROR_HANDLER):
        return {secret: READ_SECRET, retry: SEND, dlq: SEND}
    if handler == RETRY_HANDLER:
        return {secret: READ_SECRET, retry: CONSUME | SEND, dlq: SEND}
    # Replay: what still fails goes back to the DLQ; what is still being isolated, on to retry.
    return {secret: READ_SECRET, retry: SEND, dlq: CONSUME | SEND}


def test_each_function_gets_what_it_needs_and_no_more(template: assertions.Template) -> None:
    for handler in HANDLERS:
        statements = role_statements(template, handler)
        for logical_id, actions in _expected(template, handler).items():
            assert actions_on(statements, logical_id) == actions, (handler, logical_id)


def _on_everything(template: assertions.Template, handler: str) -> list[dict[str, Any]]:
    return [s for s in role_statements(template, handler) if s["Resource"] == "*"]


def test_only_xray_is_granted_on_every_resource(template: assertions.Template) -> None:
    for handler in HANDLERS:
        on_everything = _on_everything(template, handler)
        assert len(on_everything) == 1
        assert set(on_everything[0]["Action"]) == XRAY


def test_without_tracing_nothing_is_granted_on_every_resource(
    custom_template: assertions.Template,
) -> None:
    for handler in HANDLERS:
        assert _on_everything(custom_template, handler) == []


def test_functions_write_only_their_own_log_group(template: assertions.Template) -> None:
    for handler in HANDLERS:
        properties = function(template, handler)[1]["Properties"]
        own = ref_or_att(properties["LoggingConfig"]["LogGroup"])
        assert own is not None
        statements = role_statements(template, handler)
        log_targets = {ref_or_att(s["Resource"]) for s in statements if set(s["Action"]) & LOGS}
        assert log_targets == {own}
        assert actions_on(statements, own) == LOGS


def test_nothing_is_allowed_to_everyone(template: assertions.Template) -> None:
    for handler in HANDLERS:
        for statement in role_statements(template, handler):
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert "*" not in action, action


def test_only_api_gateway_may_invoke_the_webhook_and_the_mirror(
    template: assertions.Template,
) -> None:
    webhook, _ = function(template, WEBHOOK_HANDLER)
    mirror, _ = function(template, MIRROR_HANDLER)
    permissions = template.find_resources("AWS::Lambda::Permission")
    invoked = {ref_or_att(p["Properties"]["FunctionName"]) for p in permissions.values()}
    assert invoked == {webhook, mirror}
    for permission in permissions.values():
        properties = permission["Properties"]
        assert properties["Principal"] == "apigateway.amazonaws.com"
        assert "SourceArn" in properties
