"""The synthesised template deployed into moto's CloudFormation over HTTP on 127.0.0.1.

moto cannot create AWS::SecretsManager::Secret (its Ref resolves to nothing and breaks the
grants), so the secret is created in moto first and imported by ARN, as `-c secretArn=...`
would. The Lambda code asset is zipped and uploaded to moto's S3 where the template expects it.
`alarmEmail` is set so that the SNS resources are part of the template too.
"""

from __future__ import annotations

import io
import json
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from infra.app import build_app
from tests.infra.support import HANDLERS, context_with

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
# What moto's CloudFormation (5.2.5) accepts in a template but does not create. Compared
# exactly, so a moto upgrade that adds one of them shows up here.
SKIPPED_BY_MOTO = {
    "AWS::ApiGateway::Account",
    "AWS::ApiGateway::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::MetricFilter",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _client(service: str, endpoint: str) -> Any:
    # Typed as Any: boto3-stubs types clients per literal service name only.
    make: Any = boto3.client
    return make(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _zip(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


def _upload_assets(outdir: Path, stack_name: str, endpoint: str) -> None:
    s3 = _client("s3", endpoint)
    manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())
    for asset in manifest["files"].values():
        source = outdir / asset["source"]["path"]
        body = _zip(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
        for destination in asset["destinations"].values():
            bucket = (
                destination["bucketName"]
                .replace("${AWS::AccountId}", ACCOUNT)
                .replace("${AWS::Region}", REGION)
            )
            if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)


@pytest.fixture(scope="module")
def deployed(
    endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(template, described stack) after create_stack in moto."""
    secret_arn = _client("secretsmanager", endpoint).create_secret(
        Name="segment-raindrop",
        SecretString=json.dumps({"raindrop_api_key": "rk", "webhook_token": "wt"}),
    )["ARN"]
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(
        context_with(secretArn=secret_arn, alarmEmail="ops@example.com"), outdir=str(outdir)
    )
    app.synth()
    _upload_assets(outdir, stack.stack_name, endpoint)
    # The template reads the bootstrap version from SSM, as it does in a bootstrapped account.
    _client("ssm", endpoint).put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String"
    )
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    cloudformation = _client("cloudformation", endpoint)
    cloudformation.create_stack(
        StackName=stack.stack_name,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=stack.stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    (described,) = cloudformation.describe_stacks(StackName=stack.stack_name)["Stacks"]
    return template, described


def _outputs(described: dict[str, Any]) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}


def test_stack_is_created(deployed: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, described = deployed
    assert described["StackStatus"] == "CREATE_COMPLETE"


def test_moto_creates_everything_but_the_types_it_skips(
    deployed: tuple[dict[str, Any], dict[str, Any]], endpoint: str
) -> None:
    template, described = deployed
    created = {
        resource["LogicalResourceId"]
        for resource in _client("cloudformation", endpoint).list_stack_resources(
            StackName=described["StackName"]
        )["StackResourceSummaries"]
    }
    missing = {
        resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if logical_id not in created
    }
    assert missing == SKIPPED_BY_MOTO


def test_queues_exist_with_the_redrive_policy(
    deployed: tuple[dict[str, Any], dict[str, Any]], endpoint: str
) -> None:
    _, described = deployed
    outputs = _outputs(described)
    sqs = _client("sqs", endpoint)
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    retry = sqs.get_queue_attributes(QueueUrl=outputs["RetryQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(retry["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 8
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 86400
    assert int(retry["VisibilityTimeout"]) == 360
    assert int(dlq["MaximumMessageSize"]) == int(retry["MaximumMessageSize"]) == 1_048_576
    # (Moving a message by receiving it 8 times cannot be shown here: moto hands messages on a
    # queue with an event source mapping to its Lambda emulation, which needs Docker.)


def test_functions_and_event_source_exist(
    deployed: tuple[dict[str, Any], dict[str, Any]], endpoint: str
) -> None:
    _, described = deployed
    lambda_client = _client("lambda", endpoint)
    functions = lambda_client.list_functions()["Functions"]
    assert sorted(f["Handler"] for f in functions) == sorted(HANDLERS)
    for function in functions:
        # (moto's CloudFormation drops Architectures; the template tests check arm64.)
        assert function["Runtime"] == "python3.13"
    replay = _outputs(described)["ReplayFunctionName"]
    assert lambda_client.get_function(FunctionName=replay)["Configuration"]["Handler"] == (
        "segment_raindrop.handlers.replay.handler"
    )
    (mapping,) = lambda_client.list_event_source_mappings()["EventSourceMappings"]
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
