"""Every command's --help: flags show no value, since they take none."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from segment_raindrop_tools.cli import app

runner = CliRunner()
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_is_checked() -> None:
    assert {"replay", "status", "map", "local"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_take_no_value_in_help(command: str) -> None:
    # Typer 0.29 labelled every flag "<bool>", as if `--dry-run <bool>` were the usage.
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output
    # Options with values still show their type.
    if command == "replay":
        assert "<int range>" in result.output
