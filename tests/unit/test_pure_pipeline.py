"""Realistic traffic through the pure core: parse → map → chunk, every event accounted for."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from tests.support.chunks import chunks_of, event_indices
from tests.support.raindrop_models import MODEL_FOR_ENDPOINT, TrackEvent
from tests.support.segment import tracking_api_envelope

from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop_tools import samples

IDENTIFY = Endpoint.IDENTIFY

N = 4_000


@pytest.fixture(scope="module")
def traffic() -> list[dict[str, Any]]:
    return samples.batch(N, seed=2025)


def kind(event: dict[str, Any]) -> str:
    return str(event["event"]) if event["type"] == "track" else str(event["type"])


def test_4000_event_batch_parse_map_chunk(traffic: list[dict[str, Any]]) -> None:
    body = samples.body(traffic)
    parsed = parse_body(body)
    assert parsed.shape == "array"
    events = parsed.events
    assert len(events) == N

    result = map_events(events, MappingConfig())

    # Every event exactly once; realistic traffic has no invalid events.
    assert result.invalid == {}
    assert result.mapped | set(result.filtered) == set(range(N))
    assert not result.mapped & set(result.filtered)
    kinds = {index: kind(event) for index, event in enumerate(events)}
    assert {index for index, k in kinds.items() if k in {"page", "Order Completed"}} == set(
        result.filtered
    )

    # The right endpoint for each kind of event, in order, with enrichment right after.
    primary = [
        item for item in result.items if not _is_enrichment(item.endpoint, kinds[item.event_index])
    ]
    expected_endpoint = {
        "AI Chat Completed": Endpoint.TRACK,
        "AI Tool Called": Endpoint.TRACK,
        "AI Feedback Submitted": Endpoint.SIGNAL,
        "identify": Endpoint.IDENTIFY,
    }
    # Tracks and signals in event order; identifies (held for merging) after them.
    assert sorted(item.event_index for item in primary) == sorted(result.mapped)
    others = [item.event_index for item in primary if item.endpoint is not Endpoint.IDENTIFY]
    assert others == sorted(others)
    first_identify = next(i for i, item in enumerate(result.items) if item.endpoint is IDENTIFY)
    assert all(item.endpoint is IDENTIFY for item in result.items[first_identify:])
    for item in primary:
        assert item.endpoint is expected_endpoint[kinds[item.event_index]]
    enrichments = [
        item for item in result.items if _is_enrichment(item.endpoint, kinds[item.event_index])
    ]
    enriched_users = [json.loads(item.payload)["user_id"] for item in enrichments]
    users_with_tracks = {
        event["userId"] for index, event in enumerate(events) if kinds[index].startswith("AI ")
    }
    # One identify per user: a user who also sent an identify gets the traits merged into it.
    identified = {
        event["userId"] for index, event in enumerate(events) if kinds[index] == "identify"
    }
    assert sorted(enriched_users) == sorted(users_with_tracks - identified)

    # Every item is valid for its endpoint, and the AI content made it across.
    counts = Counter(item.endpoint for item in result.items)
    for item in result.items:
        payload = MODEL_FOR_ENDPOINT[item.endpoint].model_validate_json(item.payload)
        if isinstance(payload, TrackEvent) and kinds[item.event_index] == "AI Chat Completed":
            assert payload.event == "ai_interaction"
            assert payload.ai_data is not None
            assert payload.ai_data.input
            assert payload.ai_data.output
    assert counts[Endpoint.SIGNAL] == Counter(kinds.values())["AI Feedback Submitted"]

    # Chunking keeps every item exactly once, within the default bounds.
    chunks = chunks_of(result.items, max_items=100, max_bytes=1_000_000)
    chunked = [id(item) for chunk in chunks for item in chunk.items]
    assert sorted(chunked) == sorted(id(item) for item in result.items)
    assert len(chunked) == len(set(chunked))
    for chunk in chunks:
        assert len(chunk.items) <= 100
        assert len(chunk.body) <= 1_000_000
        assert len(json.loads(chunk.body)) == len(chunk.items)
        assert all(item.endpoint is chunk.endpoint for item in chunk.items)
    assert set().union(*(event_indices(chunk) for chunk in chunks)) == result.mapped


def _is_enrichment(endpoint: Endpoint, event_kind: str) -> bool:
    return endpoint is Endpoint.IDENTIFY and event_kind != "identify"


def test_same_events_in_every_envelope_map_identically(traffic: list[dict[str, Any]]) -> None:
    events = traffic[:300]
    config = MappingConfig()
    as_array = map_events(parse_body(samples.body(events)).events, config)
    envelope = json.dumps(tracking_api_envelope(events), ensure_ascii=False).encode()
    as_batch = map_events(parse_body(envelope).events, config)
    one_by_one = [map_events(parse_body(json.dumps(event)).events, config) for event in events]
    assert [i.payload for i in as_array.items] == [i.payload for i in as_batch.items]
    # Alone, each event yields its own enrichment; otherwise the primary items are the same,
    # except that in a batch an explicit identify also carries its user's context traits.
    alone = {n: r.items[0] for n, r in enumerate(one_by_one) if r.items}
    in_batch = {
        item.event_index: item
        for item in as_array.items
        if not _is_enrichment(item.endpoint, kind(events[item.event_index]))
    }
    assert alone.keys() == in_batch.keys()
    for index, item in alone.items():
        if item.endpoint is IDENTIFY:
            own = json.loads(item.payload)["traits"]
            merged = json.loads(in_batch[index].payload)["traits"]
            assert merged.items() >= own.items()
        else:
            assert item.payload == in_batch[index].payload


def test_long_prompts_still_map(traffic: list[dict[str, Any]]) -> None:
    events = samples.batch(50, seed=9, prompt_chars=20_000)
    result = map_events(parse_body(samples.body(events)).events, MappingConfig())
    assert result.invalid == {}
    chunks = chunks_of(result.items, max_items=100, max_bytes=256 * 1024)
    assert len(chunks) > 1
    assert all(len(c.body) <= 256 * 1024 or len(c.items) == 1 for c in chunks)
