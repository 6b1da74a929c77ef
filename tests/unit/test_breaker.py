"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.support.logs import forwarder_logs

from segment_raindrop.adapters.breaker import BreakerState, CircuitBreaker, Permit
from segment_raindrop.core.config import ConfigError, DeliveryConfig
from segment_raindrop.core.environment import read_delivery_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(
    clock: FakeClock,
    *,
    threshold: int = 3,
    cooldown: float = 30.0,
    changes: list[tuple[str, str]] | None = None,
) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=threshold,
        cooldown_seconds=cooldown,
        clock=clock,
        on_state_change=None if changes is None else lambda old, new: changes.append((old, new)),
    )


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit is not None
        breaker.record_failure(permit)


def open_breaker(breaker: CircuitBreaker, threshold: int = 3) -> None:
    fail(breaker, threshold)
    assert breaker.state is BreakerState.OPEN


def test_opens_after_the_threshold_of_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.acquire() is not None
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    assert breaker.acquire() is None


def test_a_success_resets_the_count_of_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock)
    fail(breaker, 2)
    permit = breaker.acquire()
    assert permit is not None
    breaker.record_success(permit)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_refuses_everything_until_the_cooldown_has_passed(clock: FakeClock) -> None:
    breaker = make(clock, cooldown=30)
    open_breaker(breaker)
    clock.advance(29.999)
    assert [breaker.acquire() for _ in range(5)] == [None] * 5
    assert breaker.state is BreakerState.OPEN


def test_after_the_cooldown_exactly_one_probe_goes_through(clock: FakeClock) -> None:
    breaker = make(clock, cooldown=30)
    open_breaker(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None
    assert probe.probe
    assert breaker.state is BreakerState.HALF_OPEN
    # However long the probe takes, nobody else gets through meanwhile.
    clock.advance(300)
    assert [breaker.acquire() for _ in range(5)] == [None] * 5


def test_a_successful_probe_closes_the_breaker(clock: FakeClock) -> None:
    changes: list[tuple[str, str]] = []
    breaker = make(clock, changes=changes)
    open_breaker(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record_success(probe)
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.acquire() is not None for _ in range(5))
    # Closed afresh: the failures before the outage are forgotten.
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_opens_the_breaker_for_another_cooldown(clock: FakeClock) -> None:
    changes: list[tuple[str, str]] = []
    breaker = make(clock, cooldown=30, changes=changes)
    open_breaker(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None
    clock.advance(5)
    breaker.record_failure(probe)
    assert breaker.state is BreakerState.OPEN
    # The new cool-down counts from the probe's failure, not from the first opening.
    clock.advance(29)
    assert breaker.acquire() is None
    clock.advance(1)
    second = breaker.acquire()
    assert second is not None
    assert second.probe
    assert changes == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
    ]


def test_late_answers_from_before_the_change_do_not_decide(clock: FakeClock) -> None:
    breaker = make(clock)
    in_flight = [breaker.acquire() for _ in range(3)]
    fail(breaker, 3)
    assert breaker.state is BreakerState.OPEN
    # Requests sent while closed come back after it opened: they neither close it nor
    # extend the cool-down.
    first, second, third = (permit for permit in in_flight if permit is not None)
    breaker.record_success(first)
    assert breaker.state is BreakerState.OPEN
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record_failure(second)
    breaker.record_success(third)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire() is None
    breaker.record_success(probe)
    assert breaker.state is BreakerState.CLOSED


def test_threshold_zero_disables_the_breaker(clock: FakeClock) -> None:
    changes: list[tuple[str, str]] = []
    breaker = make(clock, threshold=0, changes=changes)
    assert not breaker.enabled
    fail(breaker, 1_000)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.acquire() is not None
    assert changes == []


def test_a_failing_hook_does_not_break_the_breaker(clock: FakeClock) -> None:
    def broken(old: str, new: str) -> None:
        raise RuntimeError("metrics are down")

    breaker = CircuitBreaker(
        failure_threshold=1, cooldown_seconds=1, clock=clock, on_state_change=broken
    )
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1)
    assert breaker.acquire() is not None


def test_state_changes_are_logged_with_states_and_counts(clock: FakeClock) -> None:
    breaker = make(clock, threshold=2, cooldown=7)
    with forwarder_logs() as buffer:
        fail(breaker, 2)
        clock.advance(7)
        probe = breaker.acquire()
        assert probe is not None
        breaker.record_success(probe)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(line["breaker_from"], line["breaker_to"], line["level"]) for line in lines] == [
        ("closed", "open", "WARNING"),
        ("open", "half_open", "INFO"),
        ("half_open", "closed", "INFO"),
    ]
    assert lines[0]["consecutive_failures"] == 2
    assert lines[0]["cooldown_seconds"] == 7


def test_concurrent_callers_get_exactly_one_probe(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1, cooldown=1)
    fail(breaker)
    clock.advance(1)
    start = threading.Barrier(16)

    def contend() -> Permit | None:
        start.wait()
        return breaker.acquire()

    with ThreadPoolExecutor(max_workers=16) as pool:
        permits = list(pool.map(lambda _: contend(), range(16)))
    granted = [permit for permit in permits if permit is not None]
    assert len(granted) == 1
    assert granted[0].probe


def test_built_from_the_delivery_settings(clock: FakeClock) -> None:
    config = DeliveryConfig(breaker_failure_threshold=2, breaker_cooldown_seconds=0.5)
    breaker = CircuitBreaker.from_config(config, clock=clock)
    fail(breaker, 2)
    assert breaker.acquire() is None
    clock.advance(0.5)
    assert breaker.acquire() is not None


def test_defaults_and_environment() -> None:
    config = DeliveryConfig()
    assert config.breaker_failure_threshold == 5
    assert config.breaker_cooldown_seconds == 30
    config = read_delivery_config(
        {"BREAKER_FAILURE_THRESHOLD": "0", "BREAKER_COOLDOWN_SECONDS": "2.5"}
    )
    assert config.breaker_failure_threshold == 0
    assert config.breaker_cooldown_seconds == 2.5
    with pytest.raises(ConfigError, match="BREAKER_COOLDOWN_SECONDS"):
        read_delivery_config({"BREAKER_COOLDOWN_SECONDS": "0"})


@pytest.mark.parametrize(
    ("threshold", "cooldown"), [(-1, 1.0), (1, -0.1)], ids=["threshold", "cooldown"]
)
def test_bad_settings_are_refused(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, cooldown_seconds=cooldown)
