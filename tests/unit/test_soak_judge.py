"""The soak's verdict on the SDK's items: a missing Segment copy is lost unless the stack's
2xx answer said it could not keep it (``mirror_unkept``)."""

from __future__ import annotations

from typing import Any

from bench.soak_sdk import judge


def _ledger(**extra: Any) -> dict[str, Any]:
    return {
        "interactions": [],
        "events": ["ev-1", "ev-2"],
        "signals": ["ev-1:thumbs-3"],
        "spans": [],
        "acknowledged": ["event:ev-1", "event:ev-2", "signal:ev-1:thumbs-3"],
        "refused": [],
        **extra,
    }


RAINDROP = {
    "events/track": [{"event_id": "ev-1"}, {"event_id": "ev-2"}],
    "signals/track": [{"event_id": "ev-1", "signal_name": "thumbs-3"}],
}
SEGMENT = [{"type": "track", "messageId": "m1", "properties": {"trace_id": "ev-1"}}]


def _segment_events() -> list[dict[str, Any]]:
    return [dict(event) for event in SEGMENT]


def test_a_missing_copy_is_lost_unless_the_answer_said_so() -> None:
    silent = judge(
        _ledger(), raindrop=RAINDROP, segment_events=_segment_events(), span_names=set(),
        span_exports_ok=True,
    )  # fmt: skip
    told = judge(
        _ledger(unkept=["signal:ev-1:thumbs-3"]), raindrop=RAINDROP,
        segment_events=_segment_events(), span_names=set(), span_exports_ok=True,
    )  # fmt: skip
    assert "signal:ev-1:thumbs-3" in silent.lost_segment
    assert "signal:ev-1:thumbs-3" not in told.lost_segment
    assert told.unkept_reported == ["signal:ev-1:thumbs-3"]
    # Only what the answer named is excused.
    assert "event:ev-2" in told.lost_segment
    assert told.lost_raindrop == []
