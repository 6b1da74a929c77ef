"""Where ``segment-raindrop status`` looks: a stack's outputs, or local mode's state file, and
the AWS clients to look with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

from segment_raindrop.core.contract import StackOutput
from segment_raindrop_tools.cli_common import fail
from segment_raindrop_tools.local.aws import secretsmanager_client, sqs_client
from segment_raindrop_tools.local.state import STATE_FILE, read_state
from segment_raindrop_tools.stack_outputs import stack_outputs
from segment_raindrop_tools.status.alarms import alarm_prefix
from segment_raindrop_tools.status.report import Target

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["Clients", "clients_for", "local_target", "stack_target"]

# A status check should answer promptly: short timeouts, few retries.
_AWS_CONFIG: Final = Config(
    connect_timeout=5, read_timeout=15, retries={"mode": "standard", "total_max_attempts": 3}
)


@dataclass(frozen=True)
class Clients:
    secretsmanager: SecretsManagerClient
    sqs: SQSClient
    cloudwatch: CloudWatchClient | None  # None locally: no CloudWatch there


def stack_target(stack: str, region: str | None) -> Target:
    """The deployed stack's resources, from its outputs; exits (2) when they are unreadable."""
    region = region or boto3.session.Session().region_name
    if region is None:
        fail("which region is the stack in? Pass --region or set AWS_REGION")
    outputs = stack_outputs(stack, region)
    return Target(
        kind="stack",
        name=stack,
        region=region,
        webhook_url=outputs.get(StackOutput.WEBHOOK_URL),
        secret_id=outputs.get(StackOutput.SECRET_ARN),
        retry_queue_url=outputs.get(StackOutput.RETRY_QUEUE_URL),
        dlq_url=outputs.get(StackOutput.DEAD_LETTER_QUEUE_URL),
        alarm_prefix=alarm_prefix(stack),
        stage=outputs.get(StackOutput.STAGE) or _stage_of(stack),
        mirror_to_segment=_flag(outputs.get(StackOutput.MIRROR_TO_SEGMENT)),
        intake_queue_url=outputs.get(StackOutput.SEGMENT_EVENTS_QUEUE_URL),
        intake_dlq_url=outputs.get(StackOutput.SEGMENT_EVENTS_DEAD_LETTER_QUEUE_URL),
    )


def _stage_of(stack: str) -> str | None:
    """A stack deployed before it had the Stage output: its name says the stage
    (infra.app.stack_name)."""
    stage = stack.removeprefix("segment-raindrop-")
    return stage if stage != stack else None


def _flag(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() == "true"


def local_target(data_dir: Path) -> Target:
    """The running local mode's resources, from its state file; exits (2) when none runs."""
    state = read_state(data_dir)
    if state is None:
        fail(
            f"no running local mode found ({data_dir / STATE_FILE} is missing): start "
            "`make local` in another terminal, or pass --stack NAME for a deployment"
        )
    if not _running(state.get("pid")):
        fail(
            f"local mode is not running any more ({data_dir / STATE_FILE} is left from process "
            f"{state.get('pid')}): start `make local` again"
        )
    return Target(
        kind="local",
        name=str(data_dir / STATE_FILE),
        region=_text(state, "region"),
        webhook_url=_text(state, "webhook_url"),
        secret_id=_text(state, "secret_id"),
        retry_queue_url=_text(state, "retry_queue_url"),
        dlq_url=_text(state, "dlq_url"),
        endpoint_url=_text(state, "moto_endpoint"),
        # Local mode always mirrors, into its Segment stand-in.
        mirror_to_segment=True,
        intake_queue_url=_text(state, "intake_queue_url"),
        intake_dlq_url=_text(state, "intake_dlq_url"),
    )


def _text(state: dict[str, Any], key: str) -> str | None:
    value = state.get(key)
    return value if isinstance(value, str) and value else None


def _running(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # nothing to check against: let the checks find out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def clients_for(target: Target) -> Clients:
    if target.kind == "local":
        if target.endpoint_url is None:
            fail("local mode's state file names no AWS endpoint (moto_endpoint)")
        # Bound to moto with dummy credentials: a shell's real ones never go to a local port.
        region = target.region or "us-east-1"
        return Clients(
            secretsmanager=secretsmanager_client(target.endpoint_url, region),
            sqs=sqs_client(target.endpoint_url, region),
            cloudwatch=None,
        )
    options: dict[str, Any] = {"region_name": target.region, "config": _AWS_CONFIG}
    return Clients(
        secretsmanager=boto3.client("secretsmanager", **options),
        sqs=boto3.client("sqs", **options),
        cloudwatch=boto3.client("cloudwatch", **options),
    )
