"""cfn-lint (errors and warnings, its defaults) finds nothing in the synthesised templates.

Informational checks are left out: they are style advice (Fn::Sub over the Fn::Join that CDK
writes) about code we do not write by hand.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk import assertions
from cfnlint.api import lint  # type: ignore[import-untyped]

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@pytest.mark.parametrize("fixture", ["template", "custom_template"])
def test_template_is_lint_clean(fixture: str, request: pytest.FixtureRequest) -> None:
    template: assertions.Template = request.getfixturevalue(fixture)
    matches = lint(
        json.dumps(template.to_json()),
        regions=REGIONS,
    )
    assert [str(match) for match in matches] == []


def test_lint_is_not_vacuous(template: assertions.Template) -> None:
    broken = template.to_json()
    queue = next(r for r in broken["Resources"].values() if r["Type"] == "AWS::SQS::Queue")
    queue["Properties"]["MessageRetentionPeriod"] = "fortnight"
    matches = lint(json.dumps(broken), regions=REGIONS)
    assert any("fortnight" in str(match) for match in matches)
