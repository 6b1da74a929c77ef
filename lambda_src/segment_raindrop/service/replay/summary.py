"""What a replay run did: per message, and in all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from segment_raindrop.service.replay.kept import MAX_LISTED, KeptMessage
from segment_raindrop.service.tally import Count, Tally


class Outcome(StrEnum):
    """What happened to one message."""

    REPLAYED = "replayed"  # every event forwarded or filtered; the message is deleted
    PARTLY_REPLAYED = "partly_replayed"  # the rest is in a replacement message; original deleted
    KEPT = "kept"  # nothing delivered, or it cannot be replayed: left on the queue
    SKIPPED = "skipped"  # not selected by the filters
    UNPARSEABLE = "unparseable"  # not one of ours: left on the queue
    WOULD_REPLAY = "would_replay"  # dry run: every event would be sent or filtered
    WOULD_KEEP = "would_keep"  # dry run: some event is invalid now (or cannot be replayed)


@dataclass(slots=True)
class ReplaySummary:
    """What a run did.

    ``messages_received`` counts the messages examined (received messages not reached because
    of a stop or ``max_messages`` are released unexamined and not counted); ``selected`` are
    those the filters chose, ``skipped`` those they did not. Each selected message ends as
    replayed (deleted), partly replayed (the rest re-queued, original deleted) or kept.
    ``events_failed`` counts, by reason, the events still failing in selected messages.

    In a dry run, ``messages_replayed`` counts messages that would be replayed,
    ``messages_kept`` those that would be kept, ``events_forwarded`` events that would be
    forwarded, ``events_failed`` the events invalid now, and ``would_send`` the items per
    receiver and endpoint.

    ``kept`` says why each kept message stays (the first :data:`MAX_LISTED`; ``kept_unlisted``
    counts the others). Its reasons may quote a receiver's answer: for the operator, not logs.
    """

    queue_url: str
    dry_run: bool
    messages_received: int = 0
    messages_selected: int = 0
    messages_replayed: int = 0
    messages_partly_replayed: int = 0
    messages_kept: int = 0
    messages_skipped: int = 0
    messages_unparseable: int = 0
    # The events' outcomes, counted as every entry point counts them.
    tally: Tally = field(default_factory=Tally)
    # Events too large for SQS, recorded only by their identifying fields: not replayable.
    events_omitted: int = 0
    would_send: Counter[str] = field(default_factory=Counter)
    unparseable_message_ids: list[str] = field(default_factory=list)
    kept: list[KeptMessage] = field(default_factory=list)
    kept_unlisted: int = 0
    errors: list[str] = field(default_factory=list)
    stopped: bool = False
    stop_reason: str | None = None

    def record(self, outcome: Outcome, kept: KeptMessage | None = None) -> None:
        """One selected message's outcome, and why it is kept when it is."""
        if outcome in (Outcome.REPLAYED, Outcome.WOULD_REPLAY):
            self.messages_replayed += 1
        elif outcome is Outcome.PARTLY_REPLAYED:
            self.messages_partly_replayed += 1
        else:
            self.messages_kept += 1
            if kept is not None and len(self.kept) < MAX_LISTED:
                self.kept.append(kept)
            elif kept is not None:
                self.kept_unlisted += 1

    @property
    def events_forwarded(self) -> int:
        return sum(ledger.counts[Count.FORWARDED] for ledger in self.tally.ledgers)

    @property
    def events_filtered(self) -> int:
        return sum(ledger.counts[Count.FILTERED] for ledger in self.tally.ledgers)

    @property
    def events_failed(self) -> Counter[str]:
        return sum((ledger.failed_by_reason for ledger in self.tally.ledgers), Counter())

    @property
    def raindrop_requests(self) -> int:
        return self.tally.raindrop.delivery.requests

    @property
    def messages_deleted(self) -> int:
        return 0 if self.dry_run else self.messages_replayed + self.messages_partly_replayed

    @property
    def ok(self) -> bool:
        """Everything selected was replayed (dry run: would be), and nothing needs a look."""
        return (
            not self.stopped
            and not self.errors
            and self.messages_unparseable == 0
            and self.messages_replayed == self.messages_selected
        )

    def as_dict(self) -> dict[str, Any]:
        """Every field but the tally, and what is derived from them, as JSON values."""
        values = {
            item.name: getattr(self, item.name) for item in fields(self) if item.name != "tally"
        }
        values["kept"] = [message.as_dict() for message in self.kept]
        derived = {name: getattr(self, name) for name in _DERIVED}
        return {name: _plain(value) for name, value in {**values, **derived}.items()}

    def loggable(self) -> dict[str, Any]:
        """:meth:`as_dict` without the kept messages' reasons (they may quote a receiver's
        answer): their ids only."""
        values = self.as_dict()
        values["kept"] = [message.message_id for message in self.kept]
        return values


_DERIVED = (
    "ok",
    "messages_deleted",
    "events_forwarded",
    "events_filtered",
    "events_failed",
    "raindrop_requests",
)


def _plain(value: Any) -> Any:
    if isinstance(value, Counter):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Passed to the progress callback after each message is examined."""

    message_id: str
    outcome: Outcome
    events: int
    summary: ReplaySummary


ProgressCallback = Callable[[ReplayProgress], None]
