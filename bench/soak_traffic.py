"""The soak's traffic and its ledger: what was sent, and what must have become of each event.

Every event carries a unique marker (its ``messageId``, ``trace_id``, signal name or user id), so
after the soak each one can be found where it must be: at Raindrop (forwardable events), in the
dead-letter queue with reason ``invalid`` (events no configuration can map) or ``rejected``
(one event in ten, which the soak's Raindrop refuses for good), or nowhere (filtered ones). An
event may be dead-lettered as ``rejected`` only after Raindrop refused it on its own: never for
a neighbour's sake. The hostile shapes are those Segment can deliver from real applications:
text cut mid-emoji, nesting past any parser's limit, integers past 4,300 digits, elements that
are not objects, events without a user.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TIMESTAMP = "2026-11-29T12:00:00.000Z"


class Fate(StrEnum):
    DELIVERED = "delivered"  # must reach Raindrop (at least once)
    INVALID = "invalid"  # must sit in the dead-letter queue, reason invalid
    REFUSED = "refused"  # Raindrop refuses it for good: dead-lettered as rejected, never delivered
    FILTERED = "filtered"  # must go nowhere


# The trace ids of the events Raindrop refuses for good start so (bench/soak.py's Raindrop).
REFUSED_PREFIX = "soak-refused"


@dataclass(frozen=True)
class Expectation:
    marker: str
    fate: Fate
    # Where a delivered event shows up at Raindrop: (endpoint, field, value).
    endpoint: str | None = None
    key: str | None = None


@dataclass
class Ledger:
    expectations: dict[str, Expectation] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)

    def expect(self, expectation: Expectation, kind: str) -> None:
        self.expectations[expectation.marker] = expectation
        self.kinds[kind] += 1

    def of(self, fate: Fate) -> list[Expectation]:
        return [e for e in self.expectations.values() if e.fate is fate]


class Traffic:
    """Random batches of the AI event mix with hostile text, each event in the ledger."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._next = 0
        self.ledger = Ledger()

    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}-{self._next}"

    def batch(self, size: int) -> str:
        """The JSON text of one request body: an array of ``size`` elements."""
        return "[" + ",".join(self._element() for _ in range(size)) + "]"

    def _element(self) -> str:
        roll = self._random.random()
        if roll < 0.10:
            return self._chat(refused=True)
        if roll < 0.45:
            return self._chat()
        if roll < 0.55:
            return self._chat(broken_text=True)
        if roll < 0.65:
            return self._feedback()
        if roll < 0.72:
            return self._identify()
        if roll < 0.80:
            return self._page()
        if roll < 0.85:
            return self._no_user()
        if roll < 0.90:
            return self._too_deep()
        if roll < 0.95:
            return self._huge_number()
        return self._not_an_object()

    def _chat(self, *, broken_text: bool = False, refused: bool = False) -> str:
        trace = self._id(REFUSED_PREFIX if refused else "soak-trace")
        answer = "It costs \\ud83d" if broken_text else "It costs 10 dollars."
        event = {
            "type": "track",
            "event": "AI Chat Completed",
            "messageId": self._id("soak-msg"),
            "userId": f"soak-user-{self._random.randrange(50)}",
            "timestamp": TIMESTAMP,
            "properties": {
                "trace_id": trace,
                "model": "gpt-soak",
                "ai_data": {"input": "How much is it? ✨", "output": "__OUTPUT__"},
            },
        }
        if self._random.random() < 0.2:
            event["context"] = {"traits": {"plan": "pro"}}
        if refused:
            self.ledger.expect(Expectation(trace, Fate.REFUSED), "chat Raindrop refuses (rejected)")
        else:
            self.ledger.expect(
                Expectation(trace, Fate.DELIVERED, "events/track", "event_id"),
                "chat (text cut mid-emoji)" if broken_text else "chat",
            )
        # The escape is written by hand: json.dumps would not produce a lone surrogate escape
        # from a Python str without one.
        return json.dumps(event).replace("__OUTPUT__", answer)

    def _feedback(self) -> str:
        name = self._id("soak-signal")
        event = {
            "type": "track",
            "event": "AI Feedback Submitted",
            "messageId": self._id("soak-msg"),
            "userId": "soak-user-1",
            "timestamp": TIMESTAMP,
            "properties": {"trace_id": self._id("soak-about"), "signal_name": name},
        }
        self.ledger.expect(
            Expectation(name, Fate.DELIVERED, "signals/track", "signal_name"), "feedback"
        )
        return json.dumps(event)

    def _identify(self) -> str:
        user = self._id("soak-ident")
        event = {
            "type": "identify",
            "messageId": self._id("soak-msg"),
            "userId": user,
            "timestamp": TIMESTAMP,
            "traits": {"plan": "team", "seats": 3},
        }
        self.ledger.expect(
            Expectation(user, Fate.DELIVERED, "users/identify", "user_id"), "identify"
        )
        return json.dumps(event)

    def _page(self) -> str:
        marker = self._id("soak-page")
        event = {"type": "page", "messageId": marker, "userId": "soak-user-1", "name": "Home"}
        self.ledger.expect(Expectation(marker, Fate.FILTERED), "page (filtered)")
        return json.dumps(event)

    def _no_user(self) -> str:
        marker = self._id("soak-nouser")
        event = {
            "type": "track",
            "event": "AI Chat Completed",
            "messageId": marker,
            "timestamp": TIMESTAMP,
            "properties": {"ai_data": {"input": "q", "output": "a"}},
        }
        self.ledger.expect(Expectation(marker, Fate.INVALID), "no user (invalid)")
        return json.dumps(event)

    def _too_deep(self) -> str:
        marker = self._id("soak-deep")
        depth = self._random.choice((250, 1_000, 5_000))
        nested = "[" * depth + "]" * depth
        self.ledger.expect(Expectation(marker, Fate.INVALID), "nested too deeply (invalid)")
        return (
            f'{{"type":"track","event":"AI Chat Completed","messageId":"{marker}",'
            f'"userId":"u","timestamp":"{TIMESTAMP}","properties":{{"deep":{nested}}}}}'
        )

    def _huge_number(self) -> str:
        marker = self._id("soak-huge")
        digits = "9" * self._random.choice((4_301, 10_000))
        self.ledger.expect(Expectation(marker, Fate.INVALID), "huge number (invalid)")
        return (
            f'{{"type":"track","event":"AI Chat Completed","messageId":"{marker}",'
            f'"userId":"u","timestamp":"{TIMESTAMP}","properties":{{"n":{digits}}}}}'
        )

    def _not_an_object(self) -> str:
        marker = self._id("soak-scalar")
        self.ledger.expect(Expectation(marker, Fate.INVALID), "not an object (invalid)")
        return json.dumps(marker)


@dataclass
class Verdict:
    sent: int
    delivered: int
    duplicates: int
    dead_lettered: int
    filtered: int
    lost: list[str]
    misplaced: list[str]
    by_kind: Counter[str]
    # Refused for good, and dead-lettered as rejected (as they must be).
    refused: int = 0
    # Dead-lettered as rejected without Raindrop ever refusing them on their own: good events
    # that went down with a neighbour.
    rejected_with_a_neighbour: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.misplaced and not self.rejected_with_a_neighbour


def judge(
    ledger: Ledger,
    accepted: dict[str, list[dict[str, Any]]],
    dead_letters: Iterable[tuple[str, Any]],
    *,
    refused_alone: set[str] | None = None,
    dead_before_replay: Iterable[tuple[str, Any]] = (),
) -> Verdict:
    """Compare the ledger with what Raindrop accepted (by endpoint) and the dead-letter queue's
    events (each with its message's reason); ``refused_alone`` holds the markers Raindrop
    refused in a request of their own, which every event dead-lettered as rejected before the
    replay (``dead_before_replay``) must be among."""
    seen: dict[tuple[str, str], Counter[str]] = {}
    for endpoint, items in accepted.items():
        for key in ("event_id", "signal_name", "user_id"):
            seen[(endpoint, key)] = Counter(
                str(item.get(key)) for item in items if item.get(key) is not None
            )
    by_reason: dict[str, set[str]] = {"invalid": set(), "rejected": set()}
    at_raindrop: set[str] = set()
    for items in accepted.values():
        at_raindrop.update(markers(json.dumps(items)))
    anywhere = set(at_raindrop)  # every marker that reached Raindrop or a dead letter
    for reason, event in dead_letters:
        text = event if isinstance(event, str) else json.dumps(event)
        found = markers(text)
        anywhere.update(found)
        by_reason.setdefault(reason, set()).update(found)
    invalid_markers = by_reason["invalid"]
    ever_rejected = set()
    for reason, event in dead_before_replay:
        if reason == "rejected":
            ever_rejected |= markers(event if isinstance(event, str) else json.dumps(event))
    traces = {e.marker for e in ledger.expectations.values() if e.fate is not Fate.FILTERED}
    with_a_neighbour = sorted(
        (ever_rejected & traces) - (refused_alone if refused_alone is not None else ever_rejected)
    )
    delivered = duplicates = dead = filtered = refused = 0
    lost: list[str] = []
    misplaced: list[str] = []
    for expectation in ledger.expectations.values():
        if expectation.fate is Fate.DELIVERED:
            where = (str(expectation.endpoint), str(expectation.key))
            count = seen.get(where, Counter())[expectation.marker]
            if count:
                delivered += 1
                duplicates += count - 1
            else:
                lost.append(expectation.marker)
        elif expectation.fate is Fate.INVALID:
            if expectation.marker in invalid_markers:
                dead += 1
            else:
                lost.append(expectation.marker)
        elif expectation.fate is Fate.REFUSED:
            if expectation.marker in by_reason["rejected"]:
                refused += 1
            else:
                lost.append(expectation.marker)
            if expectation.marker in at_raindrop:
                misplaced.append(expectation.marker)
        else:
            filtered += 1
            if expectation.marker in anywhere:
                misplaced.append(expectation.marker)
    return Verdict(
        sent=len(ledger.expectations),
        delivered=delivered,
        duplicates=duplicates,
        dead_lettered=dead,
        filtered=filtered,
        lost=lost,
        misplaced=misplaced,
        by_kind=ledger.kinds,
        refused=refused,
        rejected_with_a_neighbour=with_a_neighbour,
    )


def markers(text: str) -> set[str]:
    """Every soak marker in ``text``."""
    found = set()
    start = text.find("soak-")
    while start != -1:
        end = start + 5
        while end < len(text) and (text[end].isalnum() or text[end] == "-"):
            end += 1
        found.add(text[start:end])
        start = text.find("soak-", end)
    return found
