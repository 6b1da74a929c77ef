"""What REDACT_PII (and REDACT_KEYS) add to mapping the 4,000-event batch.

The same parsed events are mapped with redaction off and on; the difference over the time
without is the overhead (target: under +30%). Parsing is left out of both, so the figure is
against the mapping alone, the smallest base and so the harshest comparison.

To be fair the batch must give redaction work to do, and no help: the benchmarks' usual
traffic, every chat's prompt and answer made unique (the sample generator composes them from a
dozen phrases, so they repeat, and redaction remembers long strings it found clean within a
request: real prompts do not repeat, though the system prompt does), with personal data
written into one chat in ten (an e-mail address and a phone number, and in one
chat in fifty a card number too), as users paste them into prompts. Every event's
``context.traits`` and every identify's traits also hold the user's e-mail address, and
``REDACT_KEYS`` names none of the keys that hold personal data, so nothing is dropped
unexamined.

Times are CPU seconds of this process (the machine is shared: wall time would measure the
neighbours), the two configurations alternating, medians of the runs.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import workload
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop_tools import events as segment_events
from segment_raindrop_tools import samples

TARGET_OVERHEAD = 0.30
# Keys a team might drop that this traffic does not carry (or carries without personal data,
# like identify's address.city): the e-mail addresses in traits must be found by their pattern.
REDACT_KEYS = frozenset({"ssn", "phone_number", "address"})
WITH_CONTACT_EVERY = 10  # chats
WITH_CARD_EVERY = 50  # chats
REPEAT = 15


@dataclass(frozen=True)
class RedactionResult:
    events: int
    plain_seconds: float
    redacted_seconds: float
    redactions: dict[str, int]

    @property
    def overhead(self) -> float:
        return self.redacted_seconds / self.plain_seconds - 1

    @property
    def ok(self) -> bool:
        return self.overhead < TARGET_OVERHEAD

    def line(self) -> str:
        """The report's sentence (docs/benchmarks.md)."""
        verdict = "within" if self.ok else "OVER"
        kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(self.redactions.items()))
        return (
            f"Redaction (`REDACT_PII=true`, `REDACT_KEYS` of {len(REDACT_KEYS)} keys) maps the "
            f"{self.events:,}-event batch in {self.redacted_seconds * 1000:.0f} ms of CPU "
            f"against {self.plain_seconds * 1000:.0f} ms without: {self.overhead:+.0%} of the "
            f"mapping time ({verdict} the +{TARGET_OVERHEAD:.0%} target; "
            f"{sum(self.redactions.values()):,} redactions made: {kinds})."
        )


def _personal(number: int) -> str:
    """A sentence with an e-mail address and a phone number (and sometimes a card number)."""
    sentence = f" Reach me at pat.lee{number}@example.org or 555-{number % 1000:03d}-0199."
    if number % WITH_CARD_EVERY == 0:
        sentence += " My card is 4111 1111 1111 1111."
    return sentence


def _unique(number: int) -> str:
    """A word no other chat has (letters only: it gives the gates nothing to find)."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[digit]
        if not number:
            return f" ({letters})"


def _edit_chat(ai_data: dict[str, Any], number: int) -> None:
    messages = ai_data["input"]
    extra = _unique(number) + (_personal(number) if number % WITH_CONTACT_EVERY == 0 else "")
    if isinstance(messages, list):
        messages[-1]["content"] += extra
    else:
        ai_data["input"] = f"{messages}{extra}"
    if isinstance(ai_data.get("output"), str):
        ai_data["output"] += _unique(number)


def with_personal_data(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` (changed in place): every chat's prompt and answer unique, and personal data
    in one chat prompt in ten."""
    chats = [event for event in events if event.get("event") == segment_events.AI_CHAT]
    for number, chat in enumerate(chats):
        properties = chat["properties"]
        ai_data = properties["ai_data"]
        if isinstance(ai_data, str):  # the Classic destination's JSON text
            decoded = json.loads(ai_data)
            _edit_chat(decoded, number)
            properties["ai_data"] = json.dumps(decoded, ensure_ascii=False)
        else:
            _edit_chat(ai_data, number)
    return events


def body(events: int) -> bytes:
    traffic = samples.batch(events, seed=events, prompt_chars=workload.PROMPT_CHARS)
    return samples.body(with_personal_data(traffic))


def _cpu_seconds(action: Callable[[], object]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


def run(events: int = 4_000) -> RedactionResult:
    parsed = parse_body(body(events)).events
    plain = MappingConfig()
    redacting = MappingConfig(redact_pii=True, redact_keys=REDACT_KEYS)
    redactions = dict(map_events(parsed, redacting).redactions)

    def plain_run() -> object:
        return map_events(parsed, plain)

    def redacting_run() -> object:
        return map_events(parsed, redacting)

    for _ in range(2):  # warm-up
        plain_run()
        redacting_run()
    # Alternating, so a busy spell on the shared machine falls on both alike.
    plain_times, redacting_times = [], []
    for _ in range(REPEAT):
        plain_times.append(_cpu_seconds(plain_run))
        redacting_times.append(_cpu_seconds(redacting_run))
    return RedactionResult(
        events=events,
        plain_seconds=statistics.median(plain_times),
        redacted_seconds=statistics.median(redacting_times),
        redactions=redactions,
    )


if __name__ == "__main__":
    print(run().line())
