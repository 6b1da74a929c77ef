"""Grouping mapped items into Raindrop requests bounded by item count and bytes.

Raindrop documents no request limits, so both bounds are settings, and a chunk can be split
in two when Raindrop answers 413. Each chunk keeps its items, and through them the index of
the Segment event each came from, so a failed chunk queues exactly the events it carried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from segment_raindrop.core.mapping import MappedItem
from segment_raindrop.core.raindrop_api import SINGLE_OBJECT_ENDPOINTS, Endpoint

# Brackets around the array; each item after the first adds one comma.
_ARRAY_OVERHEAD = 2


@dataclass(frozen=True, slots=True)
class Chunk:
    endpoint: Endpoint
    items: tuple[MappedItem, ...]
    # The request body exactly as a client sent it (the mirror passes Raindrop SDK requests on
    # unchanged); halves, sent after a 413 or a refusal, are built from the items again.
    raw: bytes | None = None

    @property
    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.endpoint in SINGLE_OBJECT_ENDPOINTS and len(self.items) == 1:
            return self.items[0].payload
        return b"[" + b",".join(item.payload for item in self.items) + b"]"

    @property
    def sources(self) -> set[int]:
        return {item.source for item in self.items}

    @property
    def required_sources(self) -> set[int]:
        """The events whose fate depends on this chunk (optional enrichment left out)."""
        return {item.source for item in self.items if not item.optional}

    def halves(self) -> tuple[Chunk, Chunk]:
        middle = len(self.items) // 2
        return (
            Chunk(self.endpoint, self.items[:middle]),
            Chunk(self.endpoint, self.items[middle:]),
        )


class ChunkBuilder:
    """Builds chunks as items arrive, so the first requests can leave while mapping goes on.

    ``add`` returns a chunk as soon as one is full; ``flush`` returns the partly filled rest.
    An item larger than ``max_bytes`` on its own still gets a chunk of its own: whether
    Raindrop takes it is Raindrop's call (a 413 then marks it rejected).
    """

    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._open: dict[Endpoint, list[MappedItem]] = {}
        self._sizes: dict[Endpoint, int] = {}

    def add(self, item: MappedItem) -> Chunk | None:
        current = self._open.setdefault(item.endpoint, [])
        size = self._sizes.get(item.endpoint, _ARRAY_OVERHEAD)
        added = len(item.payload) + (1 if current else 0)
        full: Chunk | None = None
        if current and (len(current) >= self._max_items or size + added > self._max_bytes):
            full = Chunk(item.endpoint, tuple(current))
            current.clear()
            size, added = _ARRAY_OVERHEAD, len(item.payload)
        current.append(item)
        self._sizes[item.endpoint] = size + added
        return full

    def flush(self) -> list[Chunk]:
        chunks = [Chunk(endpoint, tuple(items)) for endpoint, items in self._open.items() if items]
        self._open.clear()
        self._sizes.clear()
        return chunks


def build_chunks(items: Iterable[MappedItem], *, max_items: int, max_bytes: int) -> list[Chunk]:
    """All of ``items`` as chunks (see :class:`ChunkBuilder`)."""
    builder = ChunkBuilder(max_items=max_items, max_bytes=max_bytes)
    chunks = [chunk for item in items if (chunk := builder.add(item)) is not None]
    return chunks + builder.flush()
