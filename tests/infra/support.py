"""Helpers for the infra tests: synthesise the app like `cdk synth` and look into templates."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

# jsii reads these when its node process starts, i.e. on the first `import aws_cdk`.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_VERSION_CHECK", "1")

from aws_cdk import assertions

from infra.app import PROJECT_ROOT, build_app

WEBHOOK_HANDLER = "segment_raindrop.handlers.webhook.handler"
RETRY_HANDLER = "segment_raindrop.handlers.retry_worker.handler"
REPLAY_HANDLER = "segment_raindrop.handlers.replay.handler"
MIRROR_HANDLER = "segment_raindrop.handlers.raindrop_sdk.handler"
HANDLERS = (WEBHOOK_HANDLER, RETRY_HANDLER, REPLAY_HANDLER, MIRROR_HANDLER)


def cdk_json_context() -> dict[str, Any]:
    """The context `cdk synth` gets from cdk.json: feature flags and our defaults."""
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    return context


def context_with(overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return {**cdk_json_context(), "skipBundling": True, **(overrides or {}), **kwargs}


def synth(overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> assertions.Template:
    """The template `cdk synth` would produce (cdk-nag included), without bundling."""
    _, stack = build_app(context_with(overrides, **kwargs))
    return assertions.Template.from_stack(stack)


def resources(template: assertions.Template, resource_type: str) -> dict[str, Any]:
    found: dict[str, Any] = dict(template.find_resources(resource_type))
    return found


def matching(template: assertions.Template, resource_type: str, **match: Any) -> list[str]:
    """Logical ids of the resources of a type whose properties include `match`."""
    return [
        logical_id
        for logical_id, resource in resources(template, resource_type).items()
        if all(resource.get("Properties", {}).get(key) == value for key, value in match.items())
    ]


def only(template: assertions.Template, resource_type: str, **match: Any) -> tuple[str, Any]:
    """(logical id, resource) of the one resource of a type whose properties include `match`."""
    found = matching(template, resource_type, **match)
    assert len(found) == 1, f"{len(found)} {resource_type} match {match}"
    return found[0], resources(template, resource_type)[found[0]]


def function(template: assertions.Template, handler: str) -> tuple[str, Any]:
    return only(template, "AWS::Lambda::Function", Handler=handler)


def environment(template: assertions.Template, handler: str) -> dict[str, Any]:
    variables: dict[str, Any] = function(template, handler)[1]["Properties"]["Environment"][
        "Variables"
    ]
    return variables


def ref_or_att(value: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def role_statements(template: assertions.Template, handler: str) -> list[dict[str, Any]]:
    """Every policy statement attached to a function's role."""
    role_id = ref_or_att(function(template, handler)[1]["Properties"]["Role"])
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_on(statements: list[dict[str, Any]], logical_id: str) -> set[str]:
    """The actions granted on the resource with this logical id (by Ref or GetAtt)."""
    granted: set[str] = set()
    for statement in statements:
        targets = statement["Resource"]
        targets = targets if isinstance(targets, list) else [targets]
        if any(ref_or_att(target) == logical_id for target in targets):
            actions = statement["Action"]
            granted.update([actions] if isinstance(actions, str) else actions)
    return granted


def referenced(value: Any) -> set[str]:
    """Every logical id referenced anywhere inside a value (Ref, GetAtt, inside joins)."""
    found: set[str] = set()
    if isinstance(value, dict):
        target = ref_or_att(value)
        if target is not None and not target.startswith("AWS::"):
            found.add(target)
        for item in value.values():
            found |= referenced(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced(item)
    return found
