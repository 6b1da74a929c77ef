"""Grouping mapped items into Raindrop requests bounded by item count and bytes.

Raindrop documents no request limits, so both bounds are settings, and a chunk can be split
in two when Raindrop answers 413. Each chunk keeps its items, and through them the index of
the Segment event each came from, so a failed chunk queues exactly the events it carried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from segment_raindrop.mapping import MappedItem
from segment_raindrop.raindrop import Endpoint

# Brackets around the array; each item after the first adds one comma.
_ARRAY_OVERHEAD = 2


@dataclass(frozen=True, slots=True)
class Chunk:
    endpoint: Endpoint
    items: tuple[MappedItem, ...]

    @property
    def body(self) -> bytes:
        return b"[" + b",".join(item.payload for item in self.items) + b"]"

    @property
    def sources(self) -> set[int]:
        return {item.source for item in self.items}

    def halves(self) -> tuple[Chunk, Chunk]:
        middle = len(self.items) // 2
        return (
            Chunk(self.endpoint, self.items[:middle]),
            Chunk(self.endpoint, self.items[middle:]),
        )


def build_chunks(items: Iterable[MappedItem], *, max_items: int, max_bytes: int) -> list[Chunk]:
    """Chunks per endpoint, in the order items arrived.

    An item larger than ``max_bytes`` on its own still gets a chunk of its own: whether
    Raindrop takes it is Raindrop's call (a 413 then marks it rejected).
    """
    by_endpoint: dict[Endpoint, list[MappedItem]] = {}
    for item in items:
        by_endpoint.setdefault(item.endpoint, []).append(item)
    chunks: list[Chunk] = []
    for endpoint, endpoint_items in by_endpoint.items():
        current: list[MappedItem] = []
        size = _ARRAY_OVERHEAD
        for item in endpoint_items:
            added = len(item.payload) + (1 if current else 0)
            if current and (len(current) >= max_items or size + added > max_bytes):
                chunks.append(Chunk(endpoint, tuple(current)))
                current, size, added = [], _ARRAY_OVERHEAD, len(item.payload)
            current.append(item)
            size += added
        if current:
            chunks.append(Chunk(endpoint, tuple(current)))
    return chunks
