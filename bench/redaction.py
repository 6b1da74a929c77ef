"""What REDACT_PII (and REDACT_KEYS) add to mapping the 4,000-event batch.

The same parsed events are mapped with redaction off and on; the difference over the time
without is the overhead (target: under +30%). Parsing is left out of both, so the figure is
against the mapping alone, the smallest base and so the harshest comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import workload
from bench.measure import median_seconds
from segment_raindrop.config import MappingConfig
from segment_raindrop.mapping import map_events
from segment_raindrop.segment import parse_body

TARGET_OVERHEAD = 0.30
# Keys a team might drop: a miss costs the same walk as a hit.
REDACT_KEYS = frozenset({"email", "phone", "address"})


@dataclass(frozen=True)
class RedactionResult:
    events: int
    plain_seconds: float
    redacted_seconds: float
    redactions: int

    @property
    def overhead(self) -> float:
        return self.redacted_seconds / self.plain_seconds - 1

    @property
    def ok(self) -> bool:
        return self.overhead < TARGET_OVERHEAD

    def line(self) -> str:
        """The report's sentence (docs/benchmarks.md)."""
        verdict = "within" if self.ok else "OVER"
        return (
            f"Redaction (`REDACT_PII=true`, `REDACT_KEYS` of {len(REDACT_KEYS)} keys) maps the "
            f"{self.events:,}-event batch in {self.redacted_seconds * 1000:.0f} ms against "
            f"{self.plain_seconds * 1000:.0f} ms without: {self.overhead:+.0%} of the mapping "
            f"time ({verdict} the +{TARGET_OVERHEAD:.0%} target; {self.redactions:,} "
            "redactions made)."
        )


def run(events: int = 4_000) -> RedactionResult:
    parsed = parse_body(workload.body(events)).events
    plain = MappingConfig()
    redacting = MappingConfig(redact_pii=True, redact_keys=REDACT_KEYS)
    redactions = sum(map_events(parsed, redacting).redactions.values())
    return RedactionResult(
        events=events,
        plain_seconds=median_seconds(lambda: map_events(parsed, plain), repeat=15, warmup=2),
        redacted_seconds=median_seconds(lambda: map_events(parsed, redacting), repeat=15, warmup=2),
        redactions=redactions,
    )


if __name__ == "__main__":
    print(run().line())
