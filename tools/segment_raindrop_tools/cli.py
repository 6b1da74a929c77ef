"""The ``segment-raindrop`` console script: operator commands (never shipped to Lambda).

Each command lives in its own module and is registered here.
"""

from __future__ import annotations

import typer
import typer.core
from rich.markup import escape

from segment_raindrop_tools import cli_local
from segment_raindrop_tools.cli_common import forwarder_logs_as_lines, stderr
from segment_raindrop_tools.cli_map import map_command
from segment_raindrop_tools.cli_replay import replay
from segment_raindrop_tools.cli_status import status

_display_type_rich = typer.core.TyperOption.display_type_rich


def _no_type_for_flags(option: typer.core.TyperOption, ctx: typer.Context) -> str | None:
    """Typer (0.29) labels every flag ``<bool>`` in --help, as if ``--dry-run`` took a value:
    a flag takes none, so it shows no type."""
    if option.is_flag:
        return None
    return _display_type_rich(option, ctx)


typer.core.TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign,assignment]

app = typer.Typer(
    name="segment-raindrop",
    help="Operator tools for the Segment → Raindrop forwarder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Operator tools for the Segment → Raindrop forwarder."""
    # The forwarder's code logs JSON lines to stdout, where each command prints for people (or
    # its --json): while a command runs, only its warnings and errors, each as one line on
    # stderr. Local mode routes them itself (a log file, or stdout with --verbose).
    if ctx.invoked_subcommand != "local":
        ctx.with_resource(forwarder_logs_as_lines(_to_stderr))


def _to_stderr(line: str) -> None:
    stderr.print(f"[yellow]forwarder {escape(line)}[/]", highlight=False, soft_wrap=True)


app.command("replay")(replay)
app.command("status")(status)
app.command("map")(map_command)
cli_local.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
