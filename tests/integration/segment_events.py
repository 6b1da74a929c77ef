"""Segment events whose fate can be traced through every queue and the receiver.

Each event carries ``seq`` (in properties, or traits for identify) which Raindrop items keep,
so a test can tell exactly which Segment events reached the receiver.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TIMESTAMP = "2026-11-27T10:00:00.000Z"


def chat(seq: int, *, user: str = "user-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "AI Chat Completed",
        "messageId": f"msg-{seq}",
        "userId": user,
        "timestamp": TIMESTAMP,
        "properties": {
            "seq": seq,
            "trace_id": f"trace-{seq}",
            "model": "gpt-4o",
            "input_tokens": 12,
            "ai_data": {
                "input": [{"role": "user", "content": f"question {seq} — ünïcødé"}],
                "output": f"answer {seq}",
                "convo_id": "convo-1",
            },
            **extra,
        },
    }


def feedback(seq: int, *, about: int, comment: str = "wrong answer") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "AI Feedback Submitted",
        "messageId": f"msg-{seq}",
        "userId": "user-1",
        "timestamp": TIMESTAMP,
        "properties": {
            "seq": seq,
            "trace_id": f"trace-{about}",
            "comment": comment,
            "sentiment": "negative",
        },
    }


def identify(seq: int, *, user: str = "user-1") -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"msg-{seq}",
        "userId": user,
        "timestamp": TIMESTAMP,
        "traits": {"seq": seq, "plan": {"tier": "pro"}},
    }


def noise(seq: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": f"msg-{seq}",
        "userId": "user-1",
        "timestamp": TIMESTAMP,
        "properties": {"seq": seq, "revenue": 10},
    }


def invalid(seq: int) -> dict[str, Any]:
    """An AI event with no user: must end in the dead-letter queue as invalid."""
    event = chat(seq)
    del event["userId"]
    return event


def mixed(count: int) -> list[dict[str, Any]]:
    """Mostly chats, with feedback, identify calls and non-AI noise."""
    events: list[dict[str, Any]] = []
    for seq in range(count):
        if seq % 10 == 7:
            events.append(feedback(seq, about=seq - 1))
        elif seq % 10 == 8:
            events.append(identify(seq, user=f"user-{seq}"))
        elif seq % 10 == 9:
            events.append(noise(seq))
        else:
            events.append(chat(seq))
    return events


def seqs(events: Iterable[Any]) -> set[int]:
    found: set[int] = set()
    for event in events:
        for holder in ("properties", "traits"):
            value = event.get(holder, {}).get("seq") if isinstance(event, dict) else None
            if isinstance(value, int):
                found.add(value)
    return found


def is_filtered(event: dict[str, Any]) -> bool:
    return event.get("event") == "Order Completed"
