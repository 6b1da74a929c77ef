"""Loading a handler module in Lambda: with the cyclic garbage collector paused, then frozen.

Importing a handler creates about 100,000 objects that live as long as the process (modules,
classes, functions, pydantic's schemas, botocore's tables), and their allocation keeps
triggering the collector, whose passes walk them again and again while they load: measured
from the bundle, about 40 ms of the webhook's ~0.3 s import (docs/benchmarks.md §3). Paused
instead, and what was loaded then frozen (moved out of the collector's reach, as the runtime
is after the first invocation: runtime.py), none of that work is done, neither during the
import nor later: the first invocation inherits no backlog of objects to examine. Frozen
objects are still freed when their last reference goes; only reference cycles that became
garbage during the import (about 0.2 MB for the webhook) are never reclaimed.

Only in Lambda: tests, local mode and the CLI import the handlers into long processes whose
other objects must stay within the collector's reach.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


def in_lambda(environ: Mapping[str, str]) -> bool:
    """Whether this process is a Lambda function's (the variable Lambda sets for its code)."""
    return bool(environ.get("LAMBDA_TASK_ROOT"))


@contextmanager
def handler_loading(environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """In Lambda, pause the collector for the block and freeze what exists after it.

    A collector someone else turned off is left alone, and so is everything outside Lambda.
    """
    if not gc.isenabled() or not in_lambda(os.environ if environ is None else environ):
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
