"""What the console script's commands share: exit codes, failing with a message, and Ctrl-C.

Exit status, for every command: 0 done, 1 ran but not everything was done (replay kept
messages, send-sample was refused), 2 could not start, 130 aborted by a second Ctrl-C.
"""

from __future__ import annotations

import io
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, NoReturn, TypeAlias

import typer
from rich.console import Console
from rich.markup import escape

from segment_raindrop.adapters.observability import logger as forwarder_logger

__all__ = [
    "CurrentStderr",
    "ExitCode",
    "LogLines",
    "fail",
    "forwarder_logs_as_lines",
    "forwarder_logs_to",
    "interrupts",
    "stderr",
]


class ExitCode(IntEnum):
    OK = 0
    INCOMPLETE = 1
    CANNOT_START = 2
    ABORTED = 130  # 128 + SIGINT, what a shell reports for a process Ctrl-C ended


stderr = Console(stderr=True)
# What signal.signal returns and takes back.
_Handler: TypeAlias = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def fail(message: str, code: ExitCode = ExitCode.CANNOT_START) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # soft_wrap: the message stays one line, however narrow the terminal (or none at all).
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is at the time of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextmanager
def forwarder_logs_to(stream: io.TextIOBase | IO[str], level: int) -> Iterator[None]:
    """The forwarder's Powertools JSON logs, at ``level`` and above, to ``stream`` meanwhile.

    Powertools writes them to stdout, where a command's human output (or its ``--json``) goes:
    the commands point them elsewhere (stderr, a file) for their duration.
    """
    handler = forwarder_logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    previous_level = forwarder_logger.log_level
    previous_stream = handler.setStream(stream)
    forwarder_logger.setLevel(level)
    try:
        yield
    finally:
        handler.setStream(previous_stream)
        forwarder_logger.setLevel(previous_level)


class LogLines(logging.Handler):
    """Each forwarder warning or error as one line for people: its level and message (a fixed
    phrase; the JSON record's fields stay out), handed to ``write``."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__(level=logging.WARNING)
        self._write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        self._write(f"{record.levelname.lower()}: {message}")


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


@contextmanager
def forwarder_logs_as_lines(write: Callable[[str], None]) -> Iterator[None]:
    """The forwarder's warnings and errors as :class:`LogLines` meanwhile; no JSON anywhere."""
    handler = LogLines(write)
    underlying = logging.getLogger(forwarder_logger.name)  # the logger Powertools wraps
    with forwarder_logs_to(_Discard(), logging.WARNING):
        underlying.addHandler(handler)
        try:
            yield
        finally:
            underlying.removeHandler(handler)


@contextmanager
def interrupts(
    *,
    graceful: Callable[[], None],
    abort: Callable[[], None],
    signals: Sequence[signal.Signals] = (signal.SIGINT,),
    same_press_seconds: float = 0.0,
) -> Iterator[None]:
    """First Ctrl-C (any of ``signals``): ``graceful()``; the next one: ``abort()``.

    ``abort`` raises (KeyboardInterrupt) or exits the process. A signal arriving within
    ``same_press_seconds`` of the first is taken for the same Ctrl-C delivered twice (``uv run``
    and make forward it to their process group) and ignored. Outside the main thread, where
    Python cannot handle signals (embedded use), nothing is installed.
    """
    first: list[float] = []

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
            graceful()
        elif now - first[0] > same_press_seconds:
            abort()

    previous: dict[signal.Signals, _Handler] = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, on_signal)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# Local mode's data directory, as every command that uses it takes it.
DataDirOption: TypeAlias = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SEGMENT_RAINDROP_DATA_DIR",
        help="Local mode's data directory: its state file and the received items.",
    ),
]
