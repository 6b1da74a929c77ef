"""The age of a queued message's failure, as the retry worker publishes it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segment_raindrop.service.failure_age import failure_age_seconds

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first_failure_at", "age"),
    [
        ("2026-11-29T11:45:00.000Z", 900.0),  # what the forwarder writes
        ("2026-11-29T11:00:00+00:00", 3600.0),
        ("2026-11-29T12:59:59.5+01:00", 0.5),
        ("2026-11-29T11:59:00", 60.0),  # no zone: UTC
        ("2026-11-29T12:00:05Z", 0.0),  # a clock ahead of ours: never negative
    ],
)
def test_age_from_first_failure(first_failure_at: str, age: float) -> None:
    assert failure_age_seconds(first_failure_at, now=NOW) == pytest.approx(age)


@pytest.mark.parametrize("value", ["", "yesterday", "2026-13-01T00:00:00Z", "12:00"])
def test_unreadable_timestamps_have_no_age(value: str) -> None:
    assert failure_age_seconds(value, now=NOW) is None
