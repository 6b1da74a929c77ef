"""A short soak (``make soak`` runs the long one): nothing Segment sends is lost under faults,
and nothing Raindrop's SDK sends through the mirror is lost for Raindrop or for Segment."""

from __future__ import annotations

import pytest
from bench import soak


@pytest.mark.slow
def test_a_short_soak_under_faults_loses_nothing() -> None:
    result = soak.run(15, seed=11, say=lambda _line: None)
    verdict = result.verdict
    assert verdict.lost == []
    assert verdict.misplaced == []
    # One event in ten Raindrop refuses for good: those, and only events Raindrop refused on
    # their own, are dead-lettered as rejected; none went down with a neighbour.
    assert verdict.refused > 0
    assert verdict.rejected_with_a_neighbour == []
    assert result.unanswered == 0
    # The run did meet what it is meant to survive, and accounted for every kind of event.
    assert set(result.raindrop_faults) == set(soak._Chaos.MODES)
    assert result.sqs_refused > 0
    assert verdict.delivered > 0
    assert verdict.dead_lettered > 0
    assert verdict.filtered > 0
    assert verdict.sent == (
        verdict.delivered + verdict.dead_lettered + verdict.refused + verdict.filtered
    )
    # Raindrop's SDK (interactions with pending patches and spans, AI events, signals) through
    # the mirror: every item the stack acknowledged is at Raindrop and in Segment's copy.
    sdk = result.sdk
    assert sdk is not None
    assert sdk.lost_raindrop == []
    assert sdk.lost_segment == []
    # A copy the stack could not keep, and said so, is only ever a signal's: for anything
    # Raindrop takes twice without a second copy, the SDK is asked to resend instead.
    assert all(marker.startswith("signal:") for marker in sdk.unkept_reported)
    assert sdk.acknowledged["partial"] > 0
    assert sdk.at_segment == sdk.for_segment > 0
    assert sdk.spans_at_raindrop > 0
