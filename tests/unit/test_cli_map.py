"""``segment-raindrop map``: through typer's CliRunner, and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segment_raindrop_tools.cli import app
from segment_raindrop_tools.local.receiver import RaindropReceiver

FIXTURE = Path(__file__).parent.parent / "fixtures" / "ai_conversation.json"
TEAM_PATHS = {
    "event_id": ["properties.request_id", "messageId"],
    "ai_data.input": ["properties.prompt"],
    "ai_data.output": ["properties.completion"],
    "ai_data.convo_id": ["properties.conversation_id"],
}
TEAM_EVENT = {
    "type": "track",
    "event": "AI Chat Completed",
    "messageId": "m-1",
    "userId": "u-1",
    "timestamp": "2026-11-27T10:00:00Z",
    "properties": {
        "request_id": "req-1",
        "prompt": "hi",
        "completion": "hello",
        "conversation_id": "c-1",
    },
}

runner = CliRunner()


def run_map(*args: str, input: bytes | str, env: dict[str, str] | None = None) -> Any:
    # Wide enough that rich does not wrap the phrases the tests look for.
    return runner.invoke(app, ["map", *args], input=input, env={"COLUMNS": "240", **(env or {})})


def test_table_from_stdin_shows_every_outcome() -> None:
    result = run_map(input=FIXTURE.read_bytes())
    assert result.exit_code == 0, result.output
    output = result.output
    for shown in (
        "users/identify",
        "events/track",
        "signals/track",
        '"signal_type": "edit"',
        '"attachment_id": "att_query"',
        "page calls are not forwarded",
        "track event is not an AI event",
        "1 attachment(s) dropped",
        "7 events: 5 mapped, 2 filtered, 0 invalid",
        "nothing was sent",
    ):
        assert shown in output, shown


def test_json_gives_the_request_bodies_per_endpoint() -> None:
    result = run_map("--json", input=FIXTURE.read_bytes())
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    bodies = {request["endpoint"]: request["body"] for request in document["requests"]}
    assert [item["event_id"] for item in bodies["events/track"]] == ["tr_conv_1", "tr_conv_2"]
    assert [item["signal_type"] for item in bodies["signals/track"]] == ["edit", "feedback"]
    # The explicit identify absorbed the chat's context traits; its own "plan" won.
    [person] = bodies["users/identify"]
    assert person["traits"]["plan"] == "team"
    assert person["traits"]["email"] == "ada@example.com"
    events = document["events"]
    assert [event["outcome"] for event in events] == ["mapped"] * 5 + ["filtered"] * 2
    assert events[1]["dropped_attachments"] == 1
    assert [a["name"] for a in events[1]["items"][0]["item"]["attachments"]] == ["query.sql"]
    assert events[5]["reason"] == "page calls are not forwarded"


def test_file_argument_single_event_and_batch_envelope(tmp_path: Path) -> None:
    events = json.loads(FIXTURE.read_text())
    single = tmp_path / "single.json"
    single.write_text(json.dumps(events[1]))
    envelope = tmp_path / "batch.json"
    envelope.write_text(json.dumps({"batch": events, "sentAt": "2026-11-27T10:03:00Z"}))
    one = json.loads(run_map("--json", str(single), input="").stdout)
    assert [e["outcome"] for e in one["events"]] == ["mapped"]
    batch = json.loads(run_map("--json", str(envelope), input="").stdout)
    assert len(batch["events"]) == len(events)


def test_context_uses_cdk_json_keys() -> None:
    result = run_map(
        "--json",
        "--context",
        f"fieldPaths={json.dumps(TEAM_PATHS)}",
        "-c",
        'eventRenames={"AI Chat Completed": "chat"}',
        input=json.dumps(TEAM_EVENT),
    )
    assert result.exit_code == 0, result.output
    [request] = json.loads(result.stdout)["requests"]
    [item] = request["body"]
    assert item["event"] == "chat"
    assert item["event_id"] == "req-1"
    assert item["ai_data"] == {"input": "hi", "output": "hello", "convo_id": "c-1"}


def test_environment_is_read_as_the_functions_read_it() -> None:
    result = run_map(
        "--json", input=json.dumps(TEAM_EVENT), env={"FIELD_PATHS": json.dumps(TEAM_PATHS)}
    )
    assert result.exit_code == 0, result.output
    [request] = json.loads(result.stdout)["requests"]
    assert request["body"][0]["event_id"] == "req-1"


@pytest.mark.parametrize(
    ("args", "env", "problem"),
    [
        (["-c", "stage=prod"], {}, "--context stage: not a mapping setting"),
        (["-c", "fieldPaths"], {}, "expected KEY=VALUE"),
        (["-c", 'fieldPaths={"prompt": ["properties.p"]}'], {}, "fieldPaths"),
        (["-c", 'fieldPaths={"event_id": ["a..b"]}'], {}, "malformed path 'a..b'"),
        ([], {"FIELD_PATHS": '{"event_id": []}'}, "FIELD_PATHS"),
    ],
)
def test_bad_configuration_cannot_start(args: list[str], env: dict[str, str], problem: str) -> None:
    result = run_map(*args, input=json.dumps(TEAM_EVENT), env=env)
    assert result.exit_code == 2
    assert problem in result.stderr


def test_invalid_events_show_their_reason_and_exit_1() -> None:
    event = {**TEAM_EVENT, "properties": {"trace_id": "t", "signal_type": "edit"}}
    event["event"] = "AI Feedback Submitted"
    result = run_map(input=json.dumps(event))
    assert result.exit_code == 1
    assert "edit signal has no properties.after" in result.output


def test_a_body_that_is_not_json_cannot_start() -> None:
    result = run_map(input="{not json")
    assert result.exit_code == 2
    assert "error: body is" in result.stderr


def test_as_a_process_from_stdin_sending_nothing(
    receiver_factory: Callable[..., RaindropReceiver],
) -> None:
    # Even pointed at a Raindrop API, map sends nothing: the receiver hears no request.
    receiver = receiver_factory()
    env = {**os.environ, "RAINDROP_API_URL": receiver.url}
    with FIXTURE.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "segment_raindrop_tools.cli", "map", "--json"],
            stdin=stdin,
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    document = json.loads(done.stdout)
    assert [r["endpoint"] for r in document["requests"]] == [
        "events/track",
        "signals/track",
        "users/identify",
    ]
    assert receiver.requests == []


def test_map_does_not_load_the_cdk() -> None:
    # Loading CDK (jsii, node) would take seconds; settings are validated by MappingConfig.
    code = (
        "import sys, segment_raindrop_tools.cli\n"
        "heavy = {'aws_cdk', 'jsii', 'infra'} & {name.split('.')[0] for name in sys.modules}\n"
        "print(sorted(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
