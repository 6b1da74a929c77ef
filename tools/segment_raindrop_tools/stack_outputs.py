"""A deployed stack's outputs (their names: ``StackOutput``), as ``--stack`` reads them."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop_tools.cli_common import fail

_AWS_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 5}
)


def stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    """The CloudFormation stack's outputs by key; exits with a clear error when unreadable."""
    cloudformation = boto3.client("cloudformation", region_name=region, config=_AWS_CONFIG)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        fail(f"cannot read the outputs of stack {stack!r}: {exc}")
    if not stacks:
        fail(f"stack {stack!r} not found")
    return {
        output["OutputKey"]: output["OutputValue"]
        for output in stacks[0].get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }
