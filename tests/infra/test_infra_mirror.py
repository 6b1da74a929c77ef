"""Raindrop -> Segment in the stack: the SDK route, the mirror function, the partials table,
its grants, alarms, dashboard and outputs, and the context keys that configure it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions
from traceloop.sdk.tracing.tracing import init_spans_exporter

from infra.config import ConfigError, config_from_context
from segment_raindrop.core.contract import (
    OTLP_TRACES_ROUTES,
    SDK_API_STAGE,
    WEBHOOK_TIMEOUT_SECONDS,
)
from tests.infra.support import (
    MIRROR_HANDLER,
    REPLAY_HANDLER,
    RETRY_HANDLER,
    WEBHOOK_HANDLER,
    actions_on,
    environment,
    function,
    only,
    ref_or_att,
    resources,
    role_statements,
    synth,
)

TABLE_DATA = {"dynamodb:GetItem", "dynamodb:PutItem"}


def _table(template: assertions.Template) -> tuple[str, dict[str, Any]]:
    logical_id, table = only(template, "AWS::DynamoDB::Table")
    properties: dict[str, Any] = table["Properties"]
    return logical_id, properties


def _mirror_method(template: assertions.Template) -> dict[str, Any]:
    proxy_id, _ = only(template, "AWS::ApiGateway::Resource", PathPart="{proxy+}")
    (method,) = [
        m["Properties"]
        for m in resources(template, "AWS::ApiGateway::Method").values()
        if ref_or_att(m["Properties"]["ResourceId"]) == proxy_id
    ]
    return method


def test_the_sdk_route_is_raindrop_v1_proxied_to_the_mirror(
    template: assertions.Template,
) -> None:
    resources_by_id = resources(template, "AWS::ApiGateway::Resource")
    _, proxy = only(template, "AWS::ApiGateway::Resource", PathPart="{proxy+}")
    v1 = resources_by_id[ref_or_att(proxy["Properties"]["ParentId"]) or ""]
    assert v1["Properties"]["PathPart"] == "v1"
    raindrop = resources_by_id[ref_or_att(v1["Properties"]["ParentId"]) or ""]
    assert raindrop["Properties"]["PathPart"] == "raindrop"
    method = _mirror_method(template)
    assert method["HttpMethod"] == "POST"
    # No authorizer: the function compares the SDK's bearer key itself.
    assert method["AuthorizationType"] == "NONE"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    uri = json.dumps(method["Integration"]["Uri"])
    assert function(template, MIRROR_HANDLER)[0] in uri
    assert function(template, WEBHOOK_HANDLER)[0] not in uri


def test_the_route_is_on_the_sdk_api(template: assertions.Template) -> None:
    # With /v1/batch: every body intact, compressed or not; the same stage name, throttling
    # and access log as /segment.
    api_id, _ = only(template, "AWS::ApiGateway::RestApi", Name="segment-raindrop-prod-sdks")
    method = _mirror_method(template)
    assert ref_or_att(method["RestApiId"]) == api_id


def test_mirror_function_like_the_webhook(
    template: assertions.Template, custom_template: assertions.Template
) -> None:
    properties = function(template, MIRROR_HANDLER)[1]["Properties"]
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Timeout"] == WEBHOOK_TIMEOUT_SECONDS
    assert properties["MemorySize"] == 1024
    assert properties["TracingConfig"] == {"Mode": "Active"}
    custom = function(custom_template, MIRROR_HANDLER)[1]["Properties"]
    assert custom["MemorySize"] == 2048
    assert custom["Environment"]["Variables"]["DELIVERY_BUDGET_SECONDS"] == "6.5"


def test_mirror_environment(template: assertions.Template) -> None:
    variables = environment(template, MIRROR_HANDLER)
    table_id, _ = _table(template)
    assert ref_or_att(variables["PARTIALS_TABLE"]) == table_id
    assert variables["SEGMENT_API_URL"] == "https://api.segment.io/v1"
    assert variables["MIRROR_TO_SEGMENT"] == "true"
    # The forwarder's common variables, for the Raindrop side.
    webhook = environment(template, WEBHOOK_HANDLER)
    for name in ("RAINDROP_SECRET_ID", "RAINDROP_API_URL", "RETRY_QUEUE_URL", "DLQ_URL"):
        assert variables[name] == webhook[name]


def test_retry_worker_and_replay_know_where_segment_is(template: assertions.Template) -> None:
    # They deliver the Segment-bound messages the mirror queued, partial patches among them.
    table_id, _ = _table(template)
    for handler in (RETRY_HANDLER, REPLAY_HANDLER):
        assert environment(template, handler)["SEGMENT_API_URL"] == "https://api.segment.io/v1"
        assert ref_or_att(environment(template, handler)["PARTIALS_TABLE"]) == table_id
    assert "SEGMENT_API_URL" not in environment(template, WEBHOOK_HANDLER)


def test_context_sets_the_segment_endpoint_and_switch() -> None:
    template = synth(
        segmentApiUrl="https://events.eu1.segmentapis.com/v1/", mirrorToSegment="false"
    )
    variables = environment(template, MIRROR_HANDLER)
    assert variables["SEGMENT_API_URL"] == "https://events.eu1.segmentapis.com/v1"
    assert variables["MIRROR_TO_SEGMENT"] == "false"
    # Switched off, the route still forwards to Raindrop.
    _mirror_method(template)


def test_table_keys_ttl_and_billing(template: assertions.Template) -> None:
    _, table = _table(template)
    assert table["KeySchema"] == [{"AttributeName": "event_id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "event_id", "AttributeType": "S"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert "GlobalSecondaryIndexes" not in table


def test_the_mirror_and_the_queues_readers_touch_the_table(template: assertions.Template) -> None:
    table_id, _ = _table(template)
    granted = actions_on(role_statements(template, MIRROR_HANDLER), table_id)
    # Exactly what adapters/partials.py calls (a read and conditional puts): no Scan, Query,
    # delete, batch or transaction operations.
    assert granted == TABLE_DATA
    # Queued partial patches are merged by whoever delivers them, the same way.
    for handler in (RETRY_HANDLER, REPLAY_HANDLER):
        assert actions_on(role_statements(template, handler), table_id) == TABLE_DATA
    assert actions_on(role_statements(template, WEBHOOK_HANDLER), table_id) == set()


def test_mirror_reads_the_secret_and_sends_to_both_queues(template: assertions.Template) -> None:
    statements = role_statements(template, MIRROR_HANDLER)
    secret, _ = only(template, "AWS::SecretsManager::Secret")
    retry, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=4 * 86400)
    dlq, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=14 * 86400)
    assert "secretsmanager:GetSecretValue" in actions_on(statements, secret)
    for queue in (retry, dlq):
        granted = actions_on(statements, queue)
        assert "sqs:SendMessage" in granted
        assert "sqs:ReceiveMessage" not in granted


def _alarms(template: assertions.Template) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"].removeprefix("segment-raindrop-prod-"): alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }


@pytest.mark.parametrize("metric", ["MirrorFailures", "MirrorDisabled"])
def test_alarms_on_the_mirrors_own_metrics(template: assertions.Template, metric: str) -> None:
    alarm = _alarms(template)[metric]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("SegmentRaindrop", metric)
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": "segment-raindrop"},
        {"Name": "stage", "Value": "prod"},
    ]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_alarms_on_the_mirror_functions_errors_and_throttles(
    template: assertions.Template,
) -> None:
    mirror_id, _ = function(template, MIRROR_HANDLER)
    alarms = _alarms(template)
    for metric in ("Errors", "Throttles"):
        alarm = alarms[f"Mirror{metric}"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
        assert ref_or_att(alarm["Dimensions"][0]["Value"]) == mirror_id


def test_dashboard_shows_the_mirror(template: assertions.Template) -> None:
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("MirrorEventsSent", "MirrorFailures", "RaindropSdkRequests"):
        assert f'\\"SegmentRaindrop\\",\\"{metric}\\",\\"service\\",\\"segment-raindrop\\"' in body
    assert function(template, MIRROR_HANDLER)[0] in body


def test_outputs(template: assertions.Template) -> None:
    outputs = template.find_outputs("*")
    endpoint = outputs["RaindropSdkEndpoint"]["Value"]["Fn::Join"][1]
    # The stage URL + "raindrop/v1/": the SDK appends "events/track" to what it is given.
    assert endpoint[-1] == "/raindrop/v1/"
    assert endpoint[0] == "https://"
    table_id, _ = _table(template)
    assert ref_or_att(outputs["PartialsTableName"]["Value"]) == table_id


def test_defaults() -> None:
    config = config_from_context({})
    assert config.mirror_to_segment is True
    assert config.segment_api_url == "https://api.segment.io/v1"


@pytest.mark.parametrize(
    "value",
    [
        "http://api.segment.io/v1",  # the write key travels in it: TLS only
        "api.segment.io/v1",
        "https:///v1",
        "https://api.segment.io/v1/batch",  # the mirror appends the endpoint itself
        "https://api.segment.io/v1/track/",
        "https://api.segment .io/v1",
    ],
)
def test_segment_api_url_is_validated(value: str) -> None:
    with pytest.raises(ConfigError, match=r"invalid CDK context: segmentApiUrl\b"):
        config_from_context({"segmentApiUrl": value})


def test_mirror_to_segment_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"invalid CDK context: mirrorToSegment\b"):
        config_from_context({"mirrorToSegment": "sometimes"})
    assert config_from_context({"mirrorToSegment": "false"}).mirror_to_segment is False


def test_spans_from_the_sdk_land_on_the_sdk_apis_traces_route(
    template: assertions.Template,
) -> None:
    # The URL the SDK's exporter computes from the deployed endpoint (its own code): scheme and
    # host only, then /v1/traces. On API Gateway's URL "v1" is then the stage.
    endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/raindrop/v1/"
    netloc = endpoint.split("/")[2]
    exporter: Any = init_spans_exporter(f"https://{netloc}", {})
    stage, _, route = exporter._endpoint.split(netloc, 1)[1].lstrip("/").partition("/")
    assert stage == SDK_API_STAGE
    assert f"/{route}" in OTLP_TRACES_ROUTES

    api_id, _ = only(template, "AWS::ApiGateway::RestApi", Name="segment-raindrop-prod-sdks")
    (stage_props,) = [
        s["Properties"]
        for s in resources(template, "AWS::ApiGateway::Stage").values()
        if ref_or_att(s["Properties"]["RestApiId"]) == api_id
    ]
    assert stage_props["StageName"] == SDK_API_STAGE
    mirror_id = function(template, MIRROR_HANDLER)[0]
    by_id = resources(template, "AWS::ApiGateway::Resource")
    routes = set()
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if mirror_id not in json.dumps(props["Integration"]["Uri"]):
            continue
        parts = []
        resource_id = ref_or_att(props["ResourceId"])
        while resource_id in by_id:
            parts.insert(0, by_id[resource_id]["Properties"]["PathPart"])
            resource_id = ref_or_att(by_id[resource_id]["Properties"]["ParentId"])
        routes.add("/" + "/".join(parts))
        assert ref_or_att(props["RestApiId"]) == api_id
    assert routes == {"/raindrop/v1/{proxy+}", *OTLP_TRACES_ROUTES}
