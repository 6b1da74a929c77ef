"""Why a replay keeps a dead-letter message, in words an operator acts on.

Each kept message gets its reasons, each with the number of its events it applies to: the
mapping's phrase for an event invalid now ("event has no userId or anonymousId"), "filtered by
the mapping", "too large for SQS", or what the receiver answered on a real run ("rejected by
Raindrop: HTTP 400 ...", "Raindrop still failing: circuit open"). A receiver's answer may echo
content back: these reasons go to the operator (the CLI's table, the replay's JSON summary) and
never into a log line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from segment_raindrop.core.jobs import Destination
from segment_raindrop.core.outcomes import Failure, FailureReason
from segment_raindrop.core.queue_message import QueueMessage

# Kept messages listed one by one in a summary; beyond, only counted (``kept_unlisted``).
MAX_LISTED = 50

FILTERED = "filtered by the mapping now (--drop-filtered deletes such events)"
OMITTED = "too large for SQS: only its identifying fields were kept (recover it from Segment)"


@dataclass(slots=True)
class KeptMessage:
    """One kept message: its SQS id, the reason it was dead-lettered, and why it stays."""

    message_id: str
    dead_lettered_for: str
    # reason phrase -> number of the message's events it applies to
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, reasons: Iterable[str]) -> KeptMessage:
        self.reasons.update(reasons)
        return self

    def as_dict(self) -> dict[str, object]:
        return {
            "message_id": self.message_id,
            "dead_lettered_for": self.dead_lettered_for,
            "reasons": dict(self.reasons),
        }


def failure_phrase(failure: Failure, destination: Destination) -> str:
    """A failed event's reason in words: who refused or failed, and its answer."""
    receiver = "Segment" if destination is Destination.SEGMENT else "Raindrop"
    detail = failure.error or (f"HTTP {failure.status}" if failure.status else "")
    phrase = {
        FailureReason.INVALID: "invalid",
        FailureReason.REJECTED: f"rejected by {receiver}",
        FailureReason.TRANSIENT: f"{receiver} still failing",
        FailureReason.DEADLINE: "the delivery budget ran out",
        FailureReason.ISOLATING: f"refused in a group by {receiver}, not yet isolated",
    }[failure.reason]
    if failure.reason is FailureReason.INVALID and detail:
        return detail  # the mapping's own phrase says it all
    return f"{phrase}: {detail}" if detail else phrase


def dead_lettered_for(message: QueueMessage) -> str:
    """The reason the message records, with its receiver's status when there is one."""
    status = f" ({message.status})" if message.status is not None else ""
    return f"{message.reason.value}{status}"


def filtered_now(message: QueueMessage, count: int, message_id: str = "") -> str:
    where = f"message {message_id}: " if message_id else ""
    return (
        f"{where}{count} of its {len(message.events)} events would now be filtered, although "
        f"they were forwarded when they failed ({message.reason.value}): is this replay "
        "configured as the deployment (FORWARD_EVENT_PREFIXES, FORWARD_EVENT_NAMES, "
        "FEEDBACK_EVENT_NAMES, FORWARD_IDENTIFY)? Kept; pass --drop-filtered (drop_filtered) "
        "to delete such events instead"
    )
