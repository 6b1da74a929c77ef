"""cdk-nag AwsSolutions: no unacknowledged finding; each acknowledgement at its resource."""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_sqs as sqs

from infra.app import build_app
from tests.infra.support import context_with

FUNCTIONS = ("Webhook", "RetryWorker", "Replay", "Mirror")
# (construct path below the stack, rule) of every acknowledgement, each with a reason in code.
EXPECTED = {
    ("Secret/Secret", "AwsSolutions-SMG4"),
    *((f"Functions/{name}", "AwsSolutions-L1") for name in FUNCTIONS),
    *((f"Functions/{name}Role", "AwsSolutions-IAM5[Resource::*]") for name in FUNCTIONS),
    *((f"Webhook/{api}", "AwsSolutions-APIG2") for api in ("Api", "SdkApi")),
    ("Partials/Table", "AwsSolutions-DDB3"),
    *(
        (f"Webhook/SdkApi/Default/{path}/POST", rule)
        for path in ("raindrop/v1/{proxy+}", "traces", "v1/traces")
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4")
    ),
    *(
        (f"Webhook/{stage}", rule)
        for stage in ("Api/DeploymentStage.prod", "SdkApi/DeploymentStage.v1")
        for rule in ("AwsSolutions-APIG3", "AwsSolutions-APIG6")
    ),
    *(
        (f"Webhook/{path}/POST", rule)
        for path in (
            "Api/Default/segment",
            "Api/Default/segment/{project}",
            "SdkApi/Default/v1/batch",
        )
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4")
    ),
    (
        "Webhook/Api/CloudWatchRole",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
    ),
}


def _acknowledgements(stack: cdk.Stack) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    prefix = f"{stack.node.path}/"
    for construct in [stack.node.root, *stack.node.find_all()]:
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            for key, reason in entry.data.items():
                path = construct.node.path.removeprefix(prefix)
                found[(path, key.removeprefix("Annotation::"))] = reason
    return found


def _synth(tmp_path: Path, **context: str) -> tuple[cdk.App, cdk.Stack]:
    app, stack = build_app(context_with(context), outdir=str(tmp_path))
    return app, stack


def test_default_stack_passes_with_exactly_the_known_acknowledgements(tmp_path: Path) -> None:
    app, stack = _synth(tmp_path)
    app.synth()  # raises ValidationFailed on any unacknowledged finding
    acknowledgements = _acknowledgements(stack)
    assert set(acknowledgements) == EXPECTED
    for reason in acknowledgements.values():
        assert len(reason) > 80  # a reason, not a shrug


def test_without_tracing_the_xray_acknowledgements_go_too(tmp_path: Path) -> None:
    # Active tracing is what puts the X-Ray statement on '*' into each role.
    app, stack = _synth(tmp_path, tracing="false")
    app.synth()
    assert set(_acknowledgements(stack)) == EXPECTED - {
        (f"Functions/{name}Role", "AwsSolutions-IAM5[Resource::*]") for name in FUNCTIONS
    }


def test_every_variant_passes(custom_template: assertions.Template) -> None:
    # Template.from_stack runs the validation plugins too, so the fixture (imported secret,
    # SNS topic for e-mail, another stage) only exists if cdk-nag found nothing to report.
    assert custom_template.find_resources("AWS::SNS::Topic")


def test_findings_fail_synthesis(tmp_path: Path) -> None:
    # The plugin is really on: a queue without TLS enforcement or a dead-letter queue fails.
    app, stack = _synth(tmp_path)
    sqs.Queue(stack, "Unprotected", encryption=sqs.QueueEncryption.SQS_MANAGED)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert re.search(r"AwsSolutions-SQS[34]", report)
    assert "Unprotected" in report
