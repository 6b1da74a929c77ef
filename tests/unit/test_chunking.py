"""Grouping mapped items into Raindrop requests bounded by count and bytes."""

from __future__ import annotations

import json

import pytest
from tests.support.chunks import chunks_of, event_indices
from tests.support.raindrop_models import MODEL_FOR_ENDPOINT

from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.items import MappedItem
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop_tools import samples

TRACK, SIGNAL, IDENTIFY = Endpoint.TRACK, Endpoint.SIGNAL, Endpoint.IDENTIFY


def item(index: int, size: int = 20, endpoint: Endpoint = TRACK) -> MappedItem:
    """An item whose payload is exactly ``size`` bytes of JSON."""
    filler = "x" * max(0, size - 14)
    payload = json.dumps({"i": index % 10, "f": filler}, separators=(",", ":")).encode()
    assert len(payload) == max(size, 14)
    return MappedItem(endpoint=endpoint, payload=payload, event_index=index)


def flat(chunks: list[Chunk]) -> list[MappedItem]:
    return [entry for chunk in chunks for entry in chunk.items]


def test_no_items_no_chunks() -> None:
    assert chunks_of([], max_items=10, max_bytes=1_000) == []


def test_count_bound() -> None:
    items = [item(i) for i in range(25)]
    chunks = chunks_of(items, max_items=10, max_bytes=1_000_000)
    assert [len(chunk.items) for chunk in chunks] == [10, 10, 5]
    assert flat(chunks) == items


def test_byte_bound_is_exact() -> None:
    # Three 20-byte items: "[" + 20 + "," + 20 + "," + 20 + "]" = 64 bytes.
    items = [item(i, 20) for i in range(6)]
    assert [len(c.body) for c in chunks_of(items, max_items=100, max_bytes=64)] == [64, 64]
    # One byte less and only two fit: 2 + 20 + 1 + 20 = 43.
    chunks = chunks_of(items, max_items=100, max_bytes=63)
    assert [len(chunk.items) for chunk in chunks] == [2, 2, 2]
    assert all(len(chunk.body) <= 63 for chunk in chunks)


def test_both_bounds_together() -> None:
    items = [item(i, 100) for i in range(50)]
    chunks = chunks_of(items, max_items=7, max_bytes=500)
    for chunk in chunks:
        assert len(chunk.items) <= 7
        assert len(chunk.body) <= 500
    assert flat(chunks) == items


def test_oversized_item_gets_a_chunk_of_its_own() -> None:
    items = [item(0, 30), item(1, 5_000), item(2, 30)]
    chunks = chunks_of(items, max_items=10, max_bytes=1_024)
    assert [[entry.event_index for entry in chunk.items] for chunk in chunks] == [[0], [1], [2]]
    assert len(chunks[1].body) > 1_024


def test_grouped_per_endpoint_in_arrival_order() -> None:
    items = [
        item(0, endpoint=TRACK),
        item(0, endpoint=IDENTIFY),
        item(1, endpoint=SIGNAL),
        item(2, endpoint=TRACK),
        item(3, endpoint=IDENTIFY),
        item(4, endpoint=TRACK),
    ]
    chunks = chunks_of(items, max_items=2, max_bytes=1_000_000)
    assert [(chunk.endpoint, [entry.event_index for entry in chunk.items]) for chunk in chunks] == [
        (TRACK, [0, 2]),
        (TRACK, [4]),
        (IDENTIFY, [0, 3]),
        (SIGNAL, [1]),
    ]
    for chunk in chunks:
        assert {entry.endpoint for entry in chunk.items} == {chunk.endpoint}


def test_body_is_the_json_array_of_the_payloads() -> None:
    items = [item(i, 30 + i) for i in range(5)]
    (chunk,) = chunks_of(items, max_items=10, max_bytes=10_000)
    assert chunk.body == b"[" + b",".join(entry.payload for entry in items) + b"]"
    assert json.loads(chunk.body) == [json.loads(entry.payload) for entry in items]


def test_items_link_back_to_their_segment_events() -> None:
    items = [item(7), item(7, endpoint=IDENTIFY), item(9), item(12)]
    chunks = chunks_of(items, max_items=2, max_bytes=10_000)
    assert [event_indices(chunk) for chunk in chunks] == [{7, 9}, {12}, {7}]


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11])
def test_halves(size: int) -> None:
    items = tuple(item(i) for i in range(size))
    chunk = Chunk(TRACK, items)
    first, second = chunk.halves()
    assert first.endpoint == second.endpoint == TRACK
    assert first.items + second.items == items
    assert len(first.items) == size // 2
    assert len(second.items) - len(first.items) in (0, 1)
    assert event_indices(first) | event_indices(second) == event_indices(chunk)


def test_halves_of_a_single_item_leave_an_empty_first_half() -> None:
    # Callers split on 413 only while a chunk holds more than one item.
    first, second = Chunk(TRACK, (item(0),)).halves()
    assert first.items == ()
    assert first.body == b"[]"
    assert len(second.items) == 1


def test_real_batch_chunks_within_bounds() -> None:
    events = parse_body(samples.body(samples.batch(600, seed=11))).events
    result = map_events(events, MappingConfig())
    chunks = chunks_of(result.items, max_items=100, max_bytes=64 * 1024)
    assert {chunk.endpoint for chunk in chunks} == set(MODEL_FOR_ENDPOINT)
    seen = [id(entry) for entry in flat(chunks)]
    assert sorted(seen) == sorted(id(entry) for entry in result.items)
    for chunk in chunks:
        assert len(chunk.items) <= 100
        assert len(chunk.body) <= 64 * 1024 or len(chunk.items) == 1
        assert len(json.loads(chunk.body)) == len(chunk.items)
    for endpoint in Endpoint:
        in_chunks = [
            entry for chunk in chunks if chunk.endpoint == endpoint for entry in chunk.items
        ]
        assert in_chunks == [entry for entry in result.items if entry.endpoint == endpoint]
