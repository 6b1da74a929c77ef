"""The commands' shared helpers: failing with a message, and the Ctrl-C state machine."""

from __future__ import annotations

import signal

import pytest
import typer

from segment_raindrop_tools.cli_common import ExitCode, fail, interrupts


def test_fail_prints_one_error_line_and_exits_with_the_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = "which dead-letter queue? " + "x" * 200  # longer than any terminal
    with pytest.raises(typer.Exit) as exited:
        fail(message, ExitCode.INCOMPLETE)
    assert exited.value.exit_code == 1
    assert capsys.readouterr().err == f"error: {message}\n"


def test_fail_defaults_to_could_not_start() -> None:
    with pytest.raises(typer.Exit) as exited:
        fail("no [markup] here")
    assert exited.value.exit_code == ExitCode.CANNOT_START == 2


class Presses:
    def __init__(self) -> None:
        self.graceful = 0
        self.aborted = 0

    def stop(self) -> None:
        self.graceful += 1

    def abort(self) -> None:
        self.aborted += 1


def test_first_ctrl_c_is_graceful_the_second_aborts() -> None:
    presses = Presses()
    before = signal.getsignal(signal.SIGINT)
    with interrupts(graceful=presses.stop, abort=presses.abort):
        signal.raise_signal(signal.SIGINT)
        assert (presses.graceful, presses.aborted) == (1, 0)
        signal.raise_signal(signal.SIGINT)
        assert (presses.graceful, presses.aborted) == (1, 1)
    assert signal.getsignal(signal.SIGINT) is before


def test_the_same_press_forwarded_twice_counts_once() -> None:
    presses = Presses()
    with interrupts(
        graceful=presses.stop,
        abort=presses.abort,
        signals=(signal.SIGINT, signal.SIGTERM),
        same_press_seconds=3_600,
    ):
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    assert (presses.graceful, presses.aborted) == (1, 0)


def test_abort_may_raise_keyboard_interrupt_out_of_the_block() -> None:
    def abort() -> None:
        raise KeyboardInterrupt

    presses = Presses()
    with interrupts(graceful=presses.stop, abort=abort):
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert presses.graceful == 1
