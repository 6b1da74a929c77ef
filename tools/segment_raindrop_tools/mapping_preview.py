"""What the forwarder would make of some Segment events, without sending anything.

:func:`preview` runs the functions' own mapper and chunker over the events, so what it shows is
what would be sent: per event the Raindrop items it becomes (or why it is filtered or invalid),
and the request bodies per endpoint. :func:`mapping_config` builds the configuration the way the
functions read it (their environment), with cdk.json-style overrides on top, validated by the
runtime's own model; infra (CDK) is not imported, so this needs neither AWS nor the CDK.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segment_raindrop.core.chunking import ChunkBuilder
from segment_raindrop.core.config import ConfigError, DeliveryConfig, MappingConfig
from segment_raindrop.core.context import MAPPING_KEYS, mapping_from_context
from segment_raindrop.core.environment import read_mapping_config
from segment_raindrop.core.mapping.items import MappedItem
from segment_raindrop.core.mapping.mapper import PROCESS_USER_HASH_KEY, Mapper
from segment_raindrop.core.projects import PROJECT_SLUG, admits, is_project_slug

__all__ = [
    "EventPreview",
    "Preview",
    "mapping_config",
    "parse_context",
    "preview",
    "request_project",
]


def parse_context(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as given to ``cdk synth -c``: values are JSON when they parse as
    JSON (lists, objects, booleans), text otherwise. Raises ConfigError naming the bad pair."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            raise ConfigError(f"--context {pair!r}: expected KEY=VALUE")
        if key not in MAPPING_KEYS:
            known = ", ".join(MAPPING_KEYS)
            raise ConfigError(f"--context {key}: not a mapping setting (known: {known})")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def mapping_config(env: Mapping[str, str], context: Mapping[str, Any]) -> MappingConfig:
    """The functions' mapping configuration from ``env``, with ``context`` (camelCase keys)
    replacing whole settings. Raises ConfigError naming the variable or key."""
    base = read_mapping_config(env)
    if not context:
        return base
    return mapping_from_context(context, base=base.model_dump(exclude_unset=True))


@dataclass(slots=True)
class EventPreview:
    index: int
    kind: str
    outcome: str  # mapped, filtered or invalid
    reason: str | None = None
    items: list[MappedItem] = field(default_factory=list)
    dropped_attachments: int = 0
    # Redactions made in what this event sends (REDACT_PII), by kind.
    redactions: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Preview:
    events: list[EventPreview]
    # (endpoint, request body) in the order the requests would be made
    requests: list[tuple[str, bytes]]
    # The Raindrop project every request goes to (X-Raindrop-Project-Id); None: no header, so
    # Raindrop's default (Production) project.
    project: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for event in self.events if event.outcome == outcome)


def request_project(slug: str | None, delivery: DeliveryConfig) -> str | None:
    """The project a request goes to: ``slug`` as ``POST /segment/{slug}`` names it, held to
    the webhook's rules (a well-formed slug, on ``RAINDROP_PROJECTS`` when that is set: the
    webhook answers 404 otherwise, raised here as ConfigError); without one, as ``POST
    /segment`` goes: ``RAINDROP_PROJECT_ID``, or None for Raindrop's default project."""
    if slug is None:
        return delivery.project_id or None
    if not is_project_slug(slug):
        raise ConfigError(
            f"--project {slug!r}: not a Raindrop project slug ({PROJECT_SLUG.pattern}); "
            "the webhook would answer 404"
        )
    if not admits(slug, delivery.projects):
        raise ConfigError(
            f"--project {slug!r}: not in RAINDROP_PROJECTS; the webhook would answer 404"
        )
    return slug


def preview(
    events: Sequence[Any],
    config: MappingConfig,
    delivery: DeliveryConfig | None = None,
    *,
    project: str | None = None,
) -> Preview:
    """Map ``events`` as one request would be mapped, and chunk the items as it would be sent
    (to ``project``, see :func:`request_project`)."""
    delivery = delivery or DeliveryConfig()
    mapper = Mapper(config, user_hash_key=PROCESS_USER_HASH_KEY)
    for index, event in enumerate(events):
        mapper.add(index, event)
    mapper.finish()
    result = mapper.result
    per_event = [EventPreview(index, _kind(event), "mapped") for index, event in enumerate(events)]
    for item in result.items:
        per_event[item.event_index].items.append(item)
    for index, reason in result.filtered.items():
        per_event[index].outcome, per_event[index].reason = "filtered", reason
    for index, reason in result.invalid.items():
        per_event[index].outcome, per_event[index].reason = "invalid", reason
    for index, dropped in result.dropped_attachments.items():
        per_event[index].dropped_attachments = dropped
    for index, redactions in result.event_redactions.items():
        per_event[index].redactions = dict(sorted(redactions.items()))
    return Preview(per_event, _requests(result.items, delivery), project=project)


def _requests(items: Sequence[MappedItem], delivery: DeliveryConfig) -> list[tuple[str, bytes]]:
    """(endpoint, body) of each request the items would be sent in, as the forwarder chunks."""
    builder = ChunkBuilder(max_items=delivery.chunk_max_items, max_bytes=delivery.chunk_max_bytes)
    chunks = [builder.add(item.endpoint, item) for item in items]
    sent = [chunk for chunk in chunks if chunk is not None] + builder.flush()
    return [(chunk.endpoint, chunk.body) for chunk in sent]


def _kind(event: Any) -> str:
    """``track "AI Chat Completed"``, ``identify``...: what the event is, never its content."""
    if not isinstance(event, dict):
        return "not an object"
    kind = event.get("type")
    kind = kind if isinstance(kind, str) and kind else "no type"
    name = event.get("event")
    return f"{kind} {json.dumps(name, ensure_ascii=False)}" if isinstance(name, str) else kind
