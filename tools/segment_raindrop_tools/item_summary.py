"""One readable line about a Raindrop item: what local mode's console and ``map`` print.

A line names the item (event or signal name, trait count) and carries ids, counts and sizes,
never prompt or answer text or trait values. A partial event (``events/track_partial``: a
begin, an update or a finish patch, any subset of a track's fields) is described by what it
holds: its name when it has one, the model, the sizes of its input and output, how many
properties and attachments it adds, and whether the interaction is still pending.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["clean", "describe_item", "summarise_item"]

# The longest endpoint name (``events/track_partial``): the console's column for endpoints.
ENDPOINT_WIDTH = 20


def clean(value: Any, limit: int = 64) -> str:
    """A value safe to print on one terminal line: no control characters, bounded length."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_item(endpoint: str, item: Mapping[str, Any]) -> str:
    """The item's label in a column of 28, then its details (local mode's console)."""
    label, details = summarise_item(endpoint, item)
    return f"{label:<28} {details}".rstrip()


def summarise_item(endpoint: str, item: Mapping[str, Any]) -> tuple[str, str]:
    """(label, details) of an item sent to ``endpoint``: the label names it (event or signal
    name, trait count, span count), the details carry ids, counts and sizes."""
    return _SUMMARIES.get(endpoint, _other)(item)


def _track(item: Mapping[str, Any]) -> tuple[str, str]:
    return clean(item.get("event") or "(no name)", 32), _ids(item)


def _partial(item: Mapping[str, Any]) -> tuple[str, str]:
    state = "pending" if item.get("is_pending") is not False else "finished"
    label = f"{clean(item.get('event') or '(patch)', 32)} ({state})"
    return label, "  ".join([_ids(item), *_content(item)])


def _signal(item: Mapping[str, Any]) -> tuple[str, str]:
    kind = clean(item.get("signal_type", "default"))
    if item.get("sentiment"):
        kind += f", {clean(item.get('sentiment'))}"
    label = f"{clean(item.get('signal_name'), 20)} ({kind})"
    return label, f"event_id={clean(item.get('event_id'))}"


def _identify(item: Mapping[str, Any]) -> tuple[str, str]:
    traits = item.get("traits")
    return _count(traits, "trait"), f"user={clean(item.get('user_id'))}"


def _traces(item: Mapping[str, Any]) -> tuple[str, str]:
    spans = item.get("resourceSpans")
    return _count(spans, "resource span"), ""


def _other(item: Mapping[str, Any]) -> tuple[str, str]:
    return _count(item, "field"), ""


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], tuple[str, str]]] = {
    "events/track": _track,
    "events/track_partial": _partial,
    "signals/track": _signal,
    "users/identify": _identify,
    "traces": _traces,
}


def _ids(item: Mapping[str, Any]) -> str:
    user = f"user={clean(item.get('user_id'))}  " if item.get("user_id") else ""
    return f"{user}event_id={clean(item.get('event_id'))}"


def _content(item: Mapping[str, Any]) -> list[str]:
    """What a partial event holds: model, input and output sizes, properties, attachments."""
    ai_data = item.get("ai_data")
    ai_data = ai_data if isinstance(ai_data, Mapping) else {}
    parts = [f"model={clean(ai_data['model'], 40)}"] if ai_data.get("model") else []
    for field in ("input", "output"):
        if isinstance(ai_data.get(field), str):
            parts.append(f"{field}={len(ai_data[field])} chars")
    for field, noun in (("properties", "property"), ("attachments", "attachment")):
        if item.get(field):
            parts.append(_count(item[field], noun))
    return parts


def _count(values: Any, noun: str) -> str:
    count = len(values) if isinstance(values, Mapping | list) else 0
    plural = noun if count == 1 else ("properties" if noun == "property" else f"{noun}s")
    return f"{count} {plural}"
