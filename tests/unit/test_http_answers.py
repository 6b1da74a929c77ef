"""What an HTTP answer means for a chunk (adapters/http_answers.py)."""

from __future__ import annotations

from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
)

from segment_raindrop.adapters.http_answers import retry_after_seconds

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def test_a_retry_after_date_past_year_9999_is_ignored_not_raised() -> None:
    assert retry_after_seconds("Mon, 01 Jan 99999999999999999999 00:00:00 GMT") is None
