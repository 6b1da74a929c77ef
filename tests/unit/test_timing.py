"""Deadline arithmetic and back-off, shared by the webhook, the retry worker and replay."""

from __future__ import annotations

import pytest

from segment_raindrop.core.timing import backoff_seconds, deadline_within


def test_the_budget_bounds_the_deadline() -> None:
    assert deadline_within(100.0, budget=7, remaining=10, reserve=2.5) == 107.0


def test_the_time_left_less_the_reserve_bounds_the_deadline() -> None:
    assert deadline_within(100.0, budget=7, remaining=5, reserve=2.5) == 102.5


def test_the_deadline_is_never_before_the_start() -> None:
    assert deadline_within(100.0, budget=7, remaining=1, reserve=2.5) == 100.0


def test_equal_jitter_grows_with_the_attempt_and_is_capped() -> None:
    for attempt in range(1, 12):
        delay = backoff_seconds(30, attempt, 43_000, jitter="equal")
        ceiling = min(43_000, 30 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_seconds(30, 500, 900, jitter="equal") <= 900
    assert backoff_seconds(0, 5, 900, jitter="equal") == 0


@pytest.mark.parametrize("attempt", [1, 2, 3, 8])
def test_full_jitter_stays_between_zero_and_the_ceiling(attempt: int) -> None:
    ceiling = min(2.0, 0.2 * 2 ** (attempt - 1))
    delays = [backoff_seconds(0.2, attempt, 2.0) for _ in range(200)]
    assert all(0 <= delay <= ceiling for delay in delays)
    # Full jitter reaches below half the ceiling, where equal jitter never goes.
    assert min(delays) < ceiling / 2
