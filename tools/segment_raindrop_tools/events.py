"""Segment events, built in one place: for the tests, the benchmarks and local mode.

Two layers:

- the calls' shapes (:func:`track_call`, :func:`identify_call`, :func:`page_call`): what
  Segment sends for a track, identify or page call (docs/wire.md §1), whatever the values.
  :mod:`~segment_raindrop_tools.samples` builds its realistic traffic with them;
- traceable events (:func:`chat`, :func:`feedback`, :func:`identify`, :func:`page`,
  :func:`noise`, :func:`invalid`, :func:`mixed`): small and fixed, numbered ``n``. Their ids
  derive from ``n`` (``msg-n``, ``trace-n``, ``user-n``) and each carries ``seq: n`` (in its
  properties, or traits) which Raindrop items keep, so a test can tell exactly which Segment
  events reached the receiver (:func:`seqs`).

Standard library only, deterministic (no clock, no randomness).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

Event = dict[str, Any]

AI_CHAT: Final = "AI Chat Completed"
AI_TOOL: Final = "AI Tool Called"
AI_FEEDBACK: Final = "AI Feedback Submitted"
ORDER_COMPLETED: Final = "Order Completed"  # a track event that is not an AI event

TIMESTAMP: Final = "2026-11-27T10:00:00.000Z"
"""When every traceable event happened (ISO 8601 as Segment writes it)."""


# --- the shapes of Segment's calls --------------------------------------------------------


def track_call(name: str, properties: dict[str, Any], **fields: Any) -> Event:
    """A track call: ``fields`` are the common fields (``messageId``, ``userId``, ``context``,
    the timestamps...), in the order given."""
    return {"type": "track", "event": name, **fields, "properties": properties}


def identify_call(traits: dict[str, Any], **fields: Any) -> Event:
    return {"type": "identify", **fields, "traits": traits}


def page_call(name: str, properties: dict[str, Any] | None = None, **fields: Any) -> Event:
    event: Event = {"type": "page", "name": name, **fields}
    if properties is not None:
        event["properties"] = properties
    return event


def ai_data(
    input: Any,
    output: Any,
    *,
    model: str | None = None,
    convo_id: str | None = None,
) -> dict[str, Any]:
    """``properties.ai_data`` of an AI event (input and output as text or message lists)."""
    data: dict[str, Any] = {"input": input, "output": output}
    if model is not None:
        data["model"] = model
    if convo_id is not None:
        data["convo_id"] = convo_id
    return data


# --- traceable events ---------------------------------------------------------------------


def chat(
    n: int,
    *,
    user: str = "user-1",
    name: str = AI_CHAT,
    input: Any = None,
    **properties: Any,
) -> Event:
    """An AI chat completion: ``trace-n`` becomes its Raindrop ``event_id``.

    The input is a message list with non-ASCII text unless ``input`` is given; ``properties``
    are added to (or replace) the defaults.
    """
    prompt = [{"role": "user", "content": f"question {n} — ünïcødé"}] if input is None else input
    return track_call(
        name,
        {
            "seq": n,
            "trace_id": f"trace-{n}",
            "model": "gpt-4o",
            "input_tokens": 12,
            "ai_data": ai_data(prompt, f"answer {n}", convo_id="convo-1"),
            **properties,
        },
        messageId=f"msg-{n}",
        userId=user,
        timestamp=TIMESTAMP,
    )


def feedback(n: int, *, about: int, comment: str = "wrong answer") -> Event:
    """Negative feedback with a comment on the chat ``about`` (a Raindrop signal)."""
    return track_call(
        AI_FEEDBACK,
        {"seq": n, "trace_id": f"trace-{about}", "comment": comment, "sentiment": "negative"},
        messageId=f"msg-{n}",
        userId="user-1",
        timestamp=TIMESTAMP,
    )


def identify(n: int, *, user: str | None = None) -> Event:
    """An identify call of ``user`` (default ``user-n``), with a nested trait to flatten."""
    return identify_call(
        {"seq": n, "plan": {"tier": "pro"}},
        messageId=f"msg-{n}",
        userId=user or f"user-{n}",
        timestamp=TIMESTAMP,
    )


def page(n: int) -> Event:
    """A page call: never forwarded."""
    return page_call("Home", {"seq": n}, messageId=f"msg-{n}", userId="user-1", timestamp=TIMESTAMP)


def noise(n: int) -> Event:
    """A track event that is not an AI event: filtered."""
    return track_call(
        ORDER_COMPLETED,
        {"seq": n, "revenue": 10},
        messageId=f"msg-{n}",
        userId="user-1",
        timestamp=TIMESTAMP,
    )


def invalid(n: int) -> Event:
    """An AI event with no user id at all: invalid under every configuration."""
    event = chat(n)
    del event["userId"]
    return event


def mixed(count: int) -> list[Event]:
    """Mostly chats, with feedback, identify calls and non-AI noise."""
    events: list[Event] = []
    for n in range(count):
        if n % 10 == 7:
            events.append(feedback(n, about=n - 1))
        elif n % 10 == 8:
            events.append(identify(n))
        elif n % 10 == 9:
            events.append(noise(n))
        else:
            events.append(chat(n))
    return events


def seqs(items: Iterable[Any]) -> set[int]:
    """The ``seq`` numbers found in events or Raindrop items (properties or traits)."""
    found: set[int] = set()
    for item in items:
        for holder in ("properties", "traits"):
            value = item.get(holder, {}).get("seq") if isinstance(item, dict) else None
            if isinstance(value, int):
                found.add(value)
    return found
