"""Replay from an operator's machine maps, redacts and routes as the deployment does.

`segment-raindrop replay --stack` reads the stack's replay function's settings; the operator's
shell, which may lack them or hold others, does not decide how dead letters are sent. Through
the CLI, against moto (SQS, Secrets Manager, Lambda, CloudFormation) and the receiver.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.config import ReplayConfig
from segment_raindrop.core.environment import variable_names
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop_tools import events as se
from segment_raindrop_tools.cli import app
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.support.queues import fast, fresh_runtimes, operator_shell, put_message, raw_dlq
from tests.support.stack import deploy_stack

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["fast", "fresh_runtimes"]  # fixtures, imported for use by name

STACK = "segment-raindrop-prod"
SECRETS = (
    "Write to jane.doe@example.com, card 4111 1111 1111 1111, "
    "key sk-proj-abcdefghijklmnopqrstuvwx1234"
)
runner = CliRunner()


def _bare_shell(aws: AwsEnv, **settings: str) -> dict[str, str]:
    """An operator's shell: AWS credentials and moto's endpoint, none of the forwarder's
    settings unless given."""
    shell = operator_shell(aws)
    for name in variable_names(ReplayConfig):
        shell.pop(name, None)
    return shell | settings


def _replay(shell: dict[str, str], *args: str) -> Any:
    return runner.invoke(
        app, ["replay", "--region", "us-east-1", "--wait-seconds", "0", *args], env=shell
    )


def _chat_with_secrets() -> dict[str, Any]:
    event = se.chat(1)
    event["properties"]["ai_data"]["input"] = SECRETS
    return event


def test_replay_redacts_and_routes_as_deployed(aws: AwsEnv, receiver: RaindropReceiver) -> None:
    deployed = aws.configure(mapping={"redact_pii": True}, delivery={"project_id": "prod-app"})
    deploy_stack(aws, STACK, deployed)
    # A message written before messages carried their project: the deployment's is used.
    put_message(aws, QueueTarget.DEAD_LETTER, [_chat_with_secrets()], project=None)

    result = _replay(_bare_shell(aws), "--stack", STACK, "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    [item] = receiver.accepted("events/track")
    sent = json.dumps(item)
    for leaked in ("jane.doe@example.com", "4111 1111 1111 1111", "sk-proj-"):
        assert leaked not in sent
    assert "<REDACTED_EMAIL>" in sent
    [request] = receiver.requests_to("events/track")
    assert request.headers["x-raindrop-project-id"] == "prod-app"
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_a_setting_of_the_shell_that_differs_is_refused_then_printed_when_meant(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    deployed = aws.configure(mapping={"redact_pii": True}, delivery={"project_id": "prod-app"})
    deploy_stack(aws, STACK, deployed)
    put_message(aws, QueueTarget.DEAD_LETTER, [_chat_with_secrets()], project=None)
    before = raw_dlq(aws)
    shell = _bare_shell(aws, RAINDROP_PROJECT_ID="staging", REDACT_PII="false")

    refused = _replay(shell, "--stack", STACK, "--yes")

    assert refused.exit_code == 2
    assert "RAINDROP_PROJECT_ID: yours 'staging', deployed 'prod-app'" in refused.stderr
    assert "REDACT_PII: yours 'false', deployed 'true'" in refused.stderr
    assert receiver.requests == []
    assert raw_dlq(aws) == before

    meant = _replay(
        _bare_shell(aws, RAINDROP_PROJECT_ID="staging"), "--stack", STACK, "--yes",
        "--override-deployment",
    )  # fmt: skip
    assert meant.exit_code == 0, meant.output
    assert "overriding the deployment's RAINDROP_PROJECT_ID: 'staging'" in meant.stderr
    [request] = receiver.requests_to("events/track")
    assert request.headers["x-raindrop-project-id"] == "staging"
    assert "jane.doe@example.com" not in json.dumps(receiver.accepted("events/track"))


def test_events_the_deployment_forwards_are_replayed_with_its_names(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    deployed = aws.configure(mapping={"forward_event_names": ["Chat Message Sent"]})
    deploy_stack(aws, STACK, deployed)
    sent = se.chat(7, name="Chat Message Sent")
    put_message(aws, QueueTarget.DEAD_LETTER, [sent])

    result = _replay(_bare_shell(aws), "--stack", STACK, "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert [item["event_id"] for item in receiver.accepted("events/track")] == ["trace-7"]
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_a_shell_configured_otherwise_keeps_what_it_would_filter_and_says_so(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    # Without --stack, from a shell that lacks the deployment's FORWARD_EVENT_NAMES: the
    # events would be filtered, so the message is kept, and the run is not ok.
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(7, name="Chat Message Sent")])
    before = raw_dlq(aws)
    shell = _bare_shell(
        aws, DLQ_URL=aws.resources.dlq_url, RAINDROP_SECRET_ID=aws.resources.secret_id
    )

    result = _replay(shell, "--yes", "--json")

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is False
    assert summary["messages_kept"] == 1
    assert any("would now be filtered" in error for error in summary["errors"])
    assert receiver.requests == []
    assert raw_dlq(aws) == before

    # Only when asked are they dropped.
    dropped = _replay(shell, "--yes", "--json", "--drop-filtered")
    assert dropped.exit_code == 0, dropped.output
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_an_invalid_message_whose_events_are_now_filtered_is_kept_too(
    aws: AwsEnv, receiver: RaindropReceiver
) -> None:
    put_message(
        aws,
        QueueTarget.DEAD_LETTER,
        [se.chat(8, name="Chat Message Sent")],
        reason=FailureReason.INVALID,
    )
    shell = _bare_shell(
        aws, DLQ_URL=aws.resources.dlq_url, RAINDROP_SECRET_ID=aws.resources.secret_id
    )
    result = _replay(shell, "--yes", "--json")
    assert result.exit_code == 1, result.output
    assert aws.queue_depth(aws.resources.dlq_url) == 1
