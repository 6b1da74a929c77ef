"""``segment-raindrop status``: one look at whether the forwarder is healthy.

Against a deployed stack (``--stack NAME``) or, with nothing to pass, the running local mode.
Exit status (:class:`~segment_raindrop_tools.cli_common.ExitCode`): 0 healthy; 1 something needs
attention (secret not ready, dead letters waiting, an alarm in ALARM, the test event not
forwarded, or a queue, the secret, the alarms or the metrics unreadable); 2 could not start
(stack unreadable, no local mode running).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from segment_raindrop_tools.cli_common import DataDirOption, ExitCode
from segment_raindrop_tools.local.options import DEFAULT_DATA_DIR
from segment_raindrop_tools.status.inspect import inspect
from segment_raindrop_tools.status.render import render
from segment_raindrop_tools.status.target import clients_for, local_target, stack_target

__all__ = ["status"]


def status(
    *,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            help="The deployed stack to inspect (segment-raindrop-<stage>). Without it: the "
            "running local mode.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region of the stack.", show_default=False)
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    send_ping: Annotated[
        bool,
        typer.Option(
            "--ping",
            help="Also send one test AI Chat Completed event to the webhook (it reaches "
            "Raindrop) and show the answer.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Show whether the forwarder is healthy: secret, queues, alarms, the last hour's counts.

    Never prints a secret value.

    Exit status: 0 healthy, 1 something needs attention, 2 could not start.
    """
    target = stack_target(stack, region) if stack else local_target(data_dir)
    report = inspect(target, clients_for(target), send_ping=send_ping, now=datetime.now(UTC))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report, Console(soft_wrap=False))
    raise typer.Exit(ExitCode.OK if report.ok else ExitCode.INCOMPLETE)
