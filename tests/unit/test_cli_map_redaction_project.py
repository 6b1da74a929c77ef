"""``segment-raindrop map`` shows the redactions made per event and the project a request goes
to, as the webhook would (through typer's CliRunner; nothing is sent)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from segment_raindrop_tools.cli import app

EMAIL = "jane.roe@example.com"
PHONE = "555-123-4567"
CHAT = {
    "type": "track",
    "event": "AI Chat Completed",
    "messageId": "m-1",
    "userId": "u-1",
    "timestamp": "2026-11-27T10:00:00Z",
    "properties": {
        "trace_id": "tr-1",
        "ai_data": {"input": f"write to {EMAIL} or call {PHONE}", "output": "done"},
    },
}
PLAIN = {**CHAT, "messageId": "m-2", "properties": {"trace_id": "tr-2", "ai_data": {"input": "hi"}}}

runner = CliRunner()


def run_map(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(
        app, ["map", *args], input=json.dumps([CHAT, PLAIN]), env={"COLUMNS": "240", **(env or {})}
    )


def test_json_counts_each_events_redactions_by_kind() -> None:
    result = run_map("--json", env={"REDACT_PII": "true"})
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    chat, plain = document["events"]
    assert chat["redactions"] == {"email": 1, "phone": 1}
    assert "redactions" not in plain  # nothing redacted in it
    [request] = document["requests"]
    assert request["body"][0]["ai_data"]["input"] == (
        "write to <REDACTED_EMAIL> or call <REDACTED_PHONE>"
    )
    assert EMAIL not in result.stdout
    assert PHONE not in result.stdout


def test_the_table_shows_the_redactions_and_never_the_redacted_text() -> None:
    result = run_map("--context", "redactPii=true")
    assert result.exit_code == 0, result.output
    assert "redacted: 1 email, 1 phone" in result.output
    assert "2 redaction(s)" in result.output
    assert EMAIL not in result.output


def test_without_redaction_nothing_is_counted() -> None:
    result = run_map("--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert all("redactions" not in event for event in document["events"])
    assert EMAIL in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "project"),
    [
        ([], {}, None),
        ([], {"RAINDROP_PROJECT_ID": "acme"}, "acme"),
        (["--project", "support"], {"RAINDROP_PROJECT_ID": "acme"}, "support"),
        (["-p", "support"], {"RAINDROP_PROJECTS": '["support", "billing"]'}, "support"),
    ],
)
def test_the_project_is_chosen_as_the_webhook_chooses_it(
    args: list[str], env: dict[str, str], project: str | None
) -> None:
    result = run_map("--json", *args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["project"] == project
    table = run_map(*args, env=env)
    shown = f"project {project}" if project else "Raindrop's default project"
    assert f"would be sent to {shown}" in table.output


@pytest.mark.parametrize(
    ("slug", "env", "problem"),
    [
        ("Support", {}, "not a Raindrop project slug"),
        ("-support", {}, "not a Raindrop project slug"),
        ("billing", {"RAINDROP_PROJECTS": '["support"]'}, "not in RAINDROP_PROJECTS"),
    ],
)
def test_a_project_the_webhook_would_refuse_cannot_start(
    slug: str, env: dict[str, str], problem: str
) -> None:
    result = run_map("--json", "--project", slug, env=env)
    assert result.exit_code == 2
    assert problem in result.stderr
    assert "404" in result.stderr
