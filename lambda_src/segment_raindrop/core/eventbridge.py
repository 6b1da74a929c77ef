"""Segment's Amazon EventBridge (Actions) destination, as the forwarder reads it.

Segment puts each event on a partner event source, ``aws.partner/segment.com/<source id>``, with
``PutPartnerEvents``: ``Source`` the partner source, ``DetailType`` the event's type and
``Detail`` the Segment message. The bus associated with the source hands it to a rule, whose
target (an SQS queue) receives the EventBridge envelope::

    {"version": "0", "id": "...", "detail-type": "track",
     "source": "aws.partner/segment.com/<id>", "account": "...", "time": "...",
     "region": "...", "resources": [], "detail": {<the Segment event>}}

This module holds what the stack and the consumer must agree on: the partner source's name,
the rule's pattern (only what the mapping would forward; derived from the same
:class:`~segment_raindrop.core.config.MappingConfig`), and reading one envelope.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from segment_raindrop.core import codec
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import SEGMENT_PARTNER_SOURCE

# PutRule's limit on an event pattern (EventBridge's service model, 2015-10-07: EventPattern
# max 4096; the older CloudWatch Events model's 2048 no longer applies).
MAX_PATTERN_CHARS: Final = 4096


class EnvelopeError(ValueError):
    """A record that is not an EventBridge envelope holding a Segment event; safe to log."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the forwarder keeps of one envelope: where it came from and the Segment event."""

    source: str
    detail: dict[str, Any]
    # EventBridge's id of the event (a new one for each PutPartnerEvents; not Segment's).
    event_id: str | None = None


def is_partner_source(name: str) -> bool:
    return SEGMENT_PARTNER_SOURCE.fullmatch(name) is not None


def read_envelope(body: str) -> Envelope:
    """One SQS record's body as an envelope; raises :class:`EnvelopeError` saying what is
    wrong (never quoting the body)."""
    try:
        value = codec.loads(body)
    except codec.JsonError as exc:
        raise EnvelopeError(f"record is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise EnvelopeError("record is not an EventBridge event (not a JSON object)")
    source = value.get("source")
    if not isinstance(source, str) or not source:
        raise EnvelopeError("EventBridge event has no source")
    detail = value.get("detail")
    if not isinstance(detail, dict):
        raise EnvelopeError("EventBridge event has no detail object (the Segment event)")
    event_id = value.get("id")
    return Envelope(source, detail, event_id if isinstance(event_id, str) else None)


def _track_names(mapping: MappingConfig) -> list[Any]:
    """The track names the mapping forwards, as an EventBridge matcher list."""
    exact = sorted(mapping.forward_event_names | mapping.feedback_event_names)
    prefixes: list[Any] = [{"prefix": prefix} for prefix in mapping.forward_event_prefixes]
    return prefixes + exact


def event_pattern(mapping: MappingConfig, sources: Sequence[str]) -> dict[str, Any]:
    """The rule's pattern: events from ``sources`` that the mapping would forward, the
    forwarded track names (prefixes and names, signals included) and identify calls, and
    Segment's user deletion requests (logged, never forwarded).

    What it leaves out never reaches the queue, so it costs nothing downstream. Matched on the
    Segment event itself (``detail.type``), not on ``detail-type``, which is a mapping field
    in Segment's destination. When the names make the pattern longer than EventBridge takes,
    it keeps every track and identify, and the mapping filters the rest (counted as filtered).
    Raises ``ValueError`` when the mapping forwards nothing at all.
    """
    branches: list[dict[str, Any]] = []
    names = _track_names(mapping)
    if names:
        branches.append({"type": ["track"], "event": names})
    if mapping.forward_identify:
        branches.append({"type": ["identify"]})
    if not branches:
        raise ValueError("the mapping forwards no event: no track names and no identify")
    # Never forwarded, but logged (as a hash of the user id) so operators notice a deletion
    # request, as the webhook does: Raindrop has no deletion API to call.
    branches.append({"type": ["delete"]})
    detail = branches[0] if len(branches) == 1 else {"$or": branches}
    pattern = {"source": list(sources), "detail": detail}
    if len(json.dumps(pattern, separators=(",", ":"))) <= MAX_PATTERN_CHARS:
        return pattern
    types = [branch["type"][0] for branch in branches]
    return {"source": list(sources), "detail": {"type": types}}


def matches(pattern: dict[str, Any], envelope: dict[str, Any]) -> bool:
    """Whether ``envelope`` matches a pattern made by :func:`event_pattern` (only the
    operators it uses: exact strings, ``prefix`` and ``$or``). For local mode's stand-in and
    the tests; EventBridge itself applies the deployed rule."""
    return _matches(pattern, envelope)


def _matches(pattern: dict[str, Any], value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_matches(branch, value) for branch in expected):
                return False
        elif isinstance(expected, dict):
            if not _matches(expected, value.get(key)):
                return False
        elif not _matches_value(expected, value.get(key)):
            return False
    return True


def _matches_value(matchers: list[Any], value: Any) -> bool:
    if not isinstance(value, str):
        return False
    for matcher in matchers:
        if isinstance(matcher, dict):
            if value.startswith(matcher["prefix"]):
                return True
        elif value == matcher:
            return True
    return False
