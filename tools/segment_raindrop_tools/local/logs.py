"""Where local mode puts the forwarder's JSON logs, so its console stays lines for people.

Without ``--verbose``: every log line the forwarder writes at INFO and above goes to
``forwarder.log`` in the data directory (JSON, as CloudWatch would get it), and each warning or
error also prints one console line with its level and message (``log       warning: circuit
breaker changed state``). With ``--verbose``: the JSON lines go to stdout among the
console's lines, as they did before, with the CloudWatch metrics documents (EMF).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

from segment_raindrop.adapters.observability import logger as forwarder_logger
from segment_raindrop_tools.cli_common import LogLines, forwarder_logs_to
from segment_raindrop_tools.local.console import Console

__all__ = ["LOG_FILE", "ForwarderLogs"]

LOG_FILE = "forwarder.log"


class ForwarderLogs:
    """Routes the forwarder's logs for one local mode run; :meth:`close` puts them back."""

    def __init__(self, *, verbose: bool, data_dir: Path, console: Console) -> None:
        self.path: Path | None = None
        self._stack = ExitStack()
        if verbose:
            previous = forwarder_logger.log_level
            forwarder_logger.setLevel(logging.INFO)
            self._stack.callback(forwarder_logger.setLevel, previous)
            return
        self.path = data_dir / LOG_FILE
        stream = self._stack.enter_context(self.path.open("a", encoding="utf-8"))
        self._stack.enter_context(forwarder_logs_to(stream, logging.INFO))
        name = self.path.name
        echo = LogLines(lambda line: console.line(f"log       {line}  (details: {name})"))
        underlying = logging.getLogger(forwarder_logger.name)  # the logger Powertools wraps
        underlying.addHandler(echo)
        self._stack.callback(underlying.removeHandler, echo)

    def close(self) -> None:
        self._stack.close()
