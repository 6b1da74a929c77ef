"""The REST API: POST /segment, Lambda proxy, throttling, JSON access logs, tracing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions

from segment_raindrop.core.contract import segment_batch_size
from tests.infra.support import (
    WEBHOOK_HANDLER,
    function,
    only,
    ref_or_att,
    referenced,
    resources,
    synth,
)

WEBHOOK_API = "segment-raindrop-prod"
SDK_API = "segment-raindrop-prod-sdks"


def _api(template: assertions.Template, name: str) -> tuple[str, dict[str, Any]]:
    logical_id, api = only(template, "AWS::ApiGateway::RestApi", Name=name)
    properties: dict[str, Any] = api["Properties"]
    return logical_id, properties


def _stages(template: assertions.Template) -> list[dict[str, Any]]:
    return [stage["Properties"] for stage in resources(template, "AWS::ApiGateway::Stage").values()]


def _stage(template: assertions.Template, api: str = WEBHOOK_API) -> dict[str, Any]:
    api_id, _ = _api(template, api)
    (stage,) = [s for s in _stages(template) if ref_or_att(s["RestApiId"]) == api_id]
    return stage


def _root(api_id: str) -> dict[str, Any]:
    # How CDK writes the parent of a resource directly under an API's root.
    return {"Fn::GetAtt": [api_id, "RootResourceId"]}


def test_two_regional_rest_apis(template: assertions.Template) -> None:
    apis = resources(template, "AWS::ApiGateway::RestApi").values()
    assert sorted(api["Properties"]["Name"] for api in apis) == [WEBHOOK_API, SDK_API]
    for api in apis:
        assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_json_reaches_the_webhook_as_text_and_sdk_bodies_intact(
    template: assertions.Template,
) -> None:
    # Without binary media types a body travels as text, JSON-escaped: about 15% more bytes of
    # Lambda's payload instead of the third base64 costs (docs/deploy.md, "Batch size").
    assert "BinaryMediaTypes" not in _api(template, WEBHOOK_API)[1]
    # gzip bodies come as application/json: only a wildcard keeps them from being read as text.
    assert _api(template, SDK_API)[1]["BinaryMediaTypes"] == ["*/*"]


def test_post_segment_and_the_libraries_batch_are_proxied_to_the_webhook(
    template: assertions.Template,
) -> None:
    webhook_api, _ = _api(template, WEBHOOK_API)
    sdk_api, _ = _api(template, SDK_API)
    segment_id, segment = only(template, "AWS::ApiGateway::Resource", PathPart="segment")
    assert segment["Properties"]["ParentId"] == _root(webhook_api)
    project_id, project = only(template, "AWS::ApiGateway::Resource", PathPart="{project}")
    # POST /segment/{project}: one Segment destination per source, each to its own project.
    assert ref_or_att(project["Properties"]["ParentId"]) == segment_id
    # /v1/batch, where Segment's libraries post, on the SDK API only.
    batch_id, batch = only(template, "AWS::ApiGateway::Resource", PathPart="batch")
    v1_id, _ = only(template, "AWS::ApiGateway::Resource", PathPart="v1", ParentId=_root(sdk_api))
    assert ref_or_att(batch["Properties"]["ParentId"]) == v1_id
    # The other method, POST /raindrop/v1/{proxy+}, is the mirror's (test_infra_mirror.py).
    webhook_id = function(template, WEBHOOK_HANDLER)[0]
    methods = [
        m["Properties"]
        for m in resources(template, "AWS::ApiGateway::Method").values()
        if webhook_id in json.dumps(m["Properties"]["Integration"]["Uri"])
    ]
    assert {
        (ref_or_att(method["ResourceId"]), ref_or_att(method["RestApiId"])) for method in methods
    } == {(segment_id, webhook_api), (project_id, webhook_api), (batch_id, sdk_api)}
    for method in methods:
        assert method["AuthorizationType"] == "NONE"  # the function authenticates every request
        assert method["HttpMethod"] == "POST"
        assert method["Integration"]["Type"] == "AWS_PROXY"


def test_stage_is_throttled_and_traced_without_execution_logs_or_detailed_metrics(
    template: assertions.Template,
) -> None:
    # Execution logging (any LoggingLevel but OFF) makes API Gateway create its own log group,
    # outside the stack: never expiring and left behind on destroy. The access log holds what
    # it would (status, integration status and error). Per-method metrics are unused cost.
    stages = _stages(template)
    assert len(stages) == 2
    # The SDK API's stage is "v1", where the SDK's span exporter posts (test_infra_mirror).
    assert _stage(template)["StageName"] == "prod"
    assert _stage(template, SDK_API)["StageName"] == "v1"
    # Each API has its own route limits: Raindrop's SDKs drop a batch after about 1.5 s of
    # 429s, so the SDK API's are higher (docs/deploy.md, "Throttling and Lambda concurrency").
    limits = {WEBHOOK_API: (100, 200), SDK_API: (500, 1000)}
    for api, (rate, burst) in limits.items():
        stage = _stage(template, api)
        assert stage["TracingEnabled"] is True
        assert stage["MethodSettings"] == [
            {
                "DataTraceEnabled": False,
                "HttpMethod": "*",
                "LoggingLevel": "OFF",
                "MetricsEnabled": False,
                "ResourcePath": "/*",
                "ThrottlingBurstLimit": burst,
                "ThrottlingRateLimit": rate,
            }
        ]
    # So every log group the APIs write to is one of the stack's, with its retention.
    groups = resources(template, "AWS::Logs::LogGroup")
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30
    for stage in stages:
        assert referenced(stage["AccessLogSetting"]["DestinationArn"]) <= set(groups)


def test_throttling_and_stage_follow_the_context(custom_template: assertions.Template) -> None:
    assert _stage(custom_template, "segment-raindrop-staging")["StageName"] == "staging"
    limits = {"segment-raindrop-staging": (25, 50), "segment-raindrop-staging-sdks": (40, 80)}
    for api, (rate, burst) in limits.items():
        settings = _stage(custom_template, api)["MethodSettings"][0]
        assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (rate, burst)


def test_access_logs_are_json_in_one_group_of_their_own(template: assertions.Template) -> None:
    webhook, library = (_stage(template, api)["AccessLogSetting"] for api in (WEBHOOK_API, SDK_API))
    assert webhook == library
    access = webhook
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


def test_webhook_url_and_library_host_outputs(template: assertions.Template) -> None:
    url = json.dumps(template.find_outputs("WebhookUrl")["WebhookUrl"]["Value"])
    assert url.endswith('"/segment"]]}')
    assert _api(template, WEBHOOK_API)[0] in url
    host = json.dumps(template.find_outputs("SegmentLibraryHost")["SegmentLibraryHost"]["Value"])
    assert _api(template, SDK_API)[0] in host
    assert _api(template, WEBHOOK_API)[0] not in host


@pytest.mark.parametrize(
    ("p99_event_bytes", "batch_size"),
    [(None, segment_batch_size(4_000)), ("1200", 4_000), ("32000", segment_batch_size(32_000))],
)
def test_the_segment_batch_size_that_fits_is_an_output(
    p99_event_bytes: str | None, batch_size: int
) -> None:
    template = synth(segmentP99EventBytes=p99_event_bytes) if p99_event_bytes else synth()
    output = template.find_outputs("SegmentBatchSize")["SegmentBatchSize"]
    assert output["Value"] == str(batch_size)
    assert f"{p99_event_bytes or 4000} bytes" in output["Description"]


def test_segment_batch_sizes_for_common_event_sizes() -> None:
    # The figures docs/deploy.md's table shows (tests/infra/test_infra_operator_docs.py).
    assert segment_batch_size(1_200) == 4_000  # Segment's maximum
    assert segment_batch_size(4_000) == 1_244  # more than Segment's default of 1,000
    assert segment_batch_size(32_000) == 155  # Segment's largest event
