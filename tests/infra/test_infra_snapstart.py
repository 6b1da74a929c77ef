"""`-c snapStart=true`: SnapStart on the two API functions, which the APIs then invoke through
an alias of the published version; without it the stack is as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions
from cfnlint.api import lint  # type: ignore[import-untyped]

from infra.app import build_app
from infra.config import ConfigError, config_from_context
from infra.functions import LIVE_ALIAS
from tests.infra.support import (
    MIRROR_HANDLER,
    REPLAY_HANDLER,
    RETRY_HANDLER,
    WEBHOOK_HANDLER,
    context_with,
    function,
    ref_or_att,
    resources,
)

SNAPSHOTTED = (WEBHOOK_HANDLER, MIRROR_HANDLER)


@pytest.fixture(scope="module")
def snap_template() -> assertions.Template:
    # Template.from_stack runs cdk-nag: it raises on any unacknowledged finding.
    _, stack = build_app(context_with(snapStart="true"))
    template = assertions.Template.from_stack(stack)
    # CDK's warning that SnapStart needs a published version is answered (the alias).
    assertions.Annotations.from_stack(stack).has_no_warning(
        "*", assertions.Match.string_like_regexp("SnapStart only supports published")
    )
    return template


def _integration_targets(template: assertions.Template) -> set[str]:
    """The logical ids the API methods' Lambda integrations invoke."""
    targets = set()
    for method in resources(template, "AWS::ApiGateway::Method").values():
        uri = method["Properties"].get("Integration", {}).get("Uri")
        if uri is None:
            continue
        for part in json.dumps(uri).split('"'):
            if part.startswith("Functions"):
                targets.add(part)
    return targets


def _versions(template: assertions.Template) -> dict[str, Any]:
    return resources(template, "AWS::Lambda::Version")


def test_snapstart_on_the_api_functions_only(snap_template: assertions.Template) -> None:
    for handler in SNAPSHOTTED:
        _, resource = function(snap_template, handler)
        assert resource["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    # The workers are invoked by SQS or by hand, where a cold start costs no one a timeout.
    for handler in (RETRY_HANDLER, REPLAY_HANDLER):
        _, resource = function(snap_template, handler)
        assert "SnapStart" not in resource["Properties"]


def test_each_api_function_has_a_live_alias_of_its_current_version(
    snap_template: assertions.Template,
) -> None:
    versions = _versions(snap_template)
    aliases = resources(snap_template, "AWS::Lambda::Alias")
    assert len(versions) == len(aliases) == 2
    for handler in SNAPSHOTTED:
        function_id, _ = function(snap_template, handler)
        (version_id,) = [
            vid
            for vid, version in versions.items()
            if ref_or_att(version["Properties"]["FunctionName"]) == function_id
        ]
        # Replaced versions are deleted: each one's cached snapshot is charged while it exists.
        assert versions[version_id]["DeletionPolicy"] == "Delete"
        (alias,) = [
            alias
            for alias in aliases.values()
            if ref_or_att(alias["Properties"]["FunctionName"]) == function_id
        ]
        assert alias["Properties"]["Name"] == LIVE_ALIAS
        assert ref_or_att(alias["Properties"]["FunctionVersion"]) == version_id


def test_the_apis_invoke_the_aliases(snap_template: assertions.Template) -> None:
    aliases = set(resources(snap_template, "AWS::Lambda::Alias"))
    assert _integration_targets(snap_template) == aliases
    permissions = resources(snap_template, "AWS::Lambda::Permission")
    invoked = {
        ref_or_att(permission["Properties"]["FunctionName"])
        for permission in permissions.values()
        if permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    assert invoked == aliases


def test_the_snapstart_template_is_lint_clean(snap_template: assertions.Template) -> None:
    matches = lint(json.dumps(snap_template.to_json()), regions=["us-east-1", "eu-west-1"])
    assert [str(match) for match in matches] == []


def test_without_the_key_nothing_changes(template: assertions.Template) -> None:
    for handler in SNAPSHOTTED:
        _, resource = function(template, handler)
        assert "SnapStart" not in resource["Properties"]
    assert not _versions(template)
    assert not resources(template, "AWS::Lambda::Alias")
    functions = set(resources(template, "AWS::Lambda::Function"))
    assert _integration_targets(template) <= functions
    assert {function(template, handler)[0] for handler in SNAPSHOTTED} <= (
        _integration_targets(template)
    )


def test_the_key_is_validated() -> None:
    assert config_from_context(context_with(snapStart="true")).snap_start is True
    assert config_from_context(context_with()).snap_start is False
    with pytest.raises(ConfigError, match="snapStart"):
        config_from_context(context_with(snapStart="sometimes"))
