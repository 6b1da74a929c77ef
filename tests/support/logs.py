"""Reading what the forwarder logs, for tests that check what reaches (and never reaches) logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from segment_raindrop.adapters.observability import logger


@contextmanager
def forwarder_logs() -> Iterator[io.StringIO]:
    """Every line the forwarder's Powertools logger writes meanwhile, at INFO and above.

    The logger holds the stream it was created with, so it is pointed at a buffer (and back);
    the level is set because an earlier test (or local mode) may have raised it.
    """
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    original = handler.setStream(buffer)
    level = logger.log_level
    logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        handler.setStream(original)
        logger.setLevel(level)
