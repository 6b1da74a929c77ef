"""The REST API: POST /segment, Lambda proxy, throttling, JSON access logs, tracing."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import assertions

from tests.infra.support import (
    WEBHOOK_HANDLER,
    function,
    only,
    ref_or_att,
    referenced,
    resources,
)

# How CDK writes the parent of a resource directly under the API's root.
_ROOT = {"Fn::GetAtt": ["WebhookApi427E2EB3", "RootResourceId"]}


def _stage(template: assertions.Template) -> dict[str, Any]:
    properties: dict[str, Any] = only(template, "AWS::ApiGateway::Stage")[1]["Properties"]
    return properties


def test_one_regional_rest_api(template: assertions.Template) -> None:
    _, api = only(template, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["Name"] == "segment-raindrop-prod"
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_every_body_reaches_the_function_base64_encoded(template: assertions.Template) -> None:
    # gzip bodies come as application/json: only a wildcard keeps them from being read as text.
    _, api = only(template, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["BinaryMediaTypes"] == ["*/*"]


def test_post_segment_and_sdk_batch_are_proxied_to_the_webhook(
    template: assertions.Template,
) -> None:
    segment_id, _ = only(template, "AWS::ApiGateway::Resource", PathPart="segment")
    project_id, project = only(template, "AWS::ApiGateway::Resource", PathPart="{project}")
    batch_id, batch = only(template, "AWS::ApiGateway::Resource", PathPart="batch")
    v1_id = ref_or_att(batch["Properties"]["ParentId"])
    _, v1 = only(template, "AWS::ApiGateway::Resource", PathPart="v1", ParentId=_ROOT)
    assert v1 == resources(template, "AWS::ApiGateway::Resource")[v1_id]
    # POST /segment/{project}: one Segment destination per source, each to its own project.
    assert ref_or_att(project["Properties"]["ParentId"]) == segment_id
    # The other method, POST /raindrop/v1/{proxy+}, is the mirror's (test_infra_mirror.py).
    webhook_id = function(template, WEBHOOK_HANDLER)[0]
    methods = [
        m["Properties"]
        for m in resources(template, "AWS::ApiGateway::Method").values()
        if webhook_id in json.dumps(m["Properties"]["Integration"]["Uri"])
    ]
    assert {ref_or_att(method["ResourceId"]) for method in methods} == {
        segment_id,
        project_id,
        batch_id,
    }
    for method in methods:
        assert method["AuthorizationType"] == "NONE"  # the function authenticates every request
        assert method["HttpMethod"] == "POST"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        uri = json.dumps(method["Integration"]["Uri"])
        assert function(template, WEBHOOK_HANDLER)[0] in uri


def test_stage_is_throttled_and_traced_without_execution_logs_or_detailed_metrics(
    template: assertions.Template,
) -> None:
    # Execution logging (any LoggingLevel but OFF) makes API Gateway create its own log group,
    # outside the stack: never expiring and left behind on destroy. The access log holds what
    # it would (status, integration status and error). Per-method metrics are unused cost.
    stage = _stage(template)
    assert stage["StageName"] == "prod"
    assert stage["TracingEnabled"] is True
    settings = stage["MethodSettings"]
    assert settings == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "LoggingLevel": "OFF",
            "MetricsEnabled": False,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": 200,
            "ThrottlingRateLimit": 100,
        }
    ]
    # So every log group the API writes to is one of the stack's, with its retention.
    groups = resources(template, "AWS::Logs::LogGroup")
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30
    assert referenced(stage["AccessLogSetting"]["DestinationArn"]) <= set(groups)


def test_throttling_and_stage_follow_the_context(custom_template: assertions.Template) -> None:
    stage = _stage(custom_template)
    assert stage["StageName"] == "staging"
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] == 25
    assert stage["MethodSettings"][0]["ThrottlingBurstLimit"] == 50


def test_access_logs_are_json_in_their_own_group(template: assertions.Template) -> None:
    access = _stage(template)["AccessLogSetting"]
    (group_id,) = referenced(access["DestinationArn"])
    group = resources(template, "AWS::Logs::LogGroup")[group_id]
    assert group["Properties"]["RetentionInDays"] == 30
    fields = json.loads(access["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["status"] == "$context.status"
    assert fields["integrationLatencyMs"] == "$context.integrationLatency"
    assert fields["integrationError"] == "$context.integrationErrorMessage"
    assert fields["errorMessage"] == "$context.error.message"
    assert not any("header" in value.lower() for value in fields.values())


def test_api_gateway_may_write_logs(template: assertions.Template) -> None:
    _, account = only(template, "AWS::ApiGateway::Account")
    role_id = ref_or_att(account["Properties"]["CloudWatchRoleArn"])
    assert role_id is not None
    role = resources(template, "AWS::IAM::Role")[role_id]
    assert "apigateway.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    # Shared by every API in the account and region: kept when this stack is destroyed.
    assert account["DeletionPolicy"] == "Retain"


def test_webhook_url_output(template: assertions.Template) -> None:
    url = template.find_outputs("WebhookUrl")["WebhookUrl"]["Value"]
    joined = json.dumps(url)
    assert joined.endswith('"/segment"]]}')
    assert only(template, "AWS::ApiGateway::RestApi")[0] in joined
