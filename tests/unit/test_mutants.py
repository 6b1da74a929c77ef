"""``make mutate``'s mutants still point at real code (the run itself is not part of the suite)."""

from __future__ import annotations

from bench.mutants import MUTANTS
from bench.mutate import stale


def test_every_mutant_still_matches_its_code_exactly_once() -> None:
    # A refactor that moves or rewords mutated code must update bench/mutants.py, or the
    # mutation run would silently stop testing that behaviour.
    assert stale(MUTANTS) == []


def test_the_mutants_cover_every_loss_critical_area() -> None:
    areas = {mutant.area for mutant in MUTANTS}
    assert areas >= {
        "auth",
        "parsing",
        "chunking",
        "delivery",
        "breaker",
        "queueing",
        "settlement",
        "retry",
        "replay",
        "credentials",
        "webhook",
    }
    assert len(MUTANTS) >= 51
