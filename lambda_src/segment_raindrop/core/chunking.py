"""Grouping serialised items into requests bounded by item count and bytes.

Neither Raindrop nor the mirror's Segment batches say how large a request may be beyond what
the settings and Segment's documented limits give, so both bounds are parameters, and a chunk
can be split in two when the receiver answers 413. Each chunk keeps its items, and through them
the index of the event each came from, so a failed chunk queues exactly the events it carried.

Chunking knows nothing of where a chunk goes: ``endpoint`` is the path its target appends to its
base URL (``events/track``, ``batch``), and the target frames the body (:mod:`adapters.targets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Brackets around the array; each item after the first adds one comma.
_ARRAY_OVERHEAD = 2


class Piece(Protocol):
    """What a chunk holds: one serialised item and the event it came from."""

    @property
    def payload(self) -> bytes: ...

    @property
    def event_index(self) -> int: ...

    @property
    def optional(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Item:
    """A :class:`Piece` that needed no mapping (a Raindrop SDK item, a Segment copy)."""

    payload: bytes
    event_index: int
    # Enrichment: if the receiver does not take it, the event it came from still counts as
    # delivered (see Chunk.required_events).
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Chunk:
    endpoint: str
    items: tuple[Piece, ...]
    # The request body exactly as a client sent it (the mirror passes Raindrop SDK requests on
    # unchanged); halves, sent after a 413 or a refusal, are built from the items again.
    raw: bytes | None = None
    # The body's Content-Type when it is not JSON (``raw`` then holds it).
    content_type: str | None = None

    @property
    def body(self) -> bytes:
        """The items as one JSON array (or ``raw``); targets frame it further if they must."""
        if self.raw is not None:
            return self.raw
        return b"[" + b",".join(item.payload for item in self.items) + b"]"

    @property
    def required_events(self) -> set[int]:
        """The events whose fate depends on this chunk (optional enrichment left out)."""
        return {item.event_index for item in self.items if not item.optional}

    def halves(self) -> tuple[Chunk, Chunk]:
        middle = len(self.items) // 2
        return (
            Chunk(self.endpoint, self.items[:middle]),
            Chunk(self.endpoint, self.items[middle:]),
        )


class ChunkBuilder:
    """Builds chunks as items arrive, so the first requests can leave while mapping goes on.

    ``add`` returns a chunk as soon as one is full; ``flush`` returns the partly filled rest.
    An item larger than ``max_bytes`` on its own still gets a chunk of its own: whether the
    receiver takes it is its call (a 413 then marks it rejected).
    """

    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._open: dict[str, list[Piece]] = {}
        self._sizes: dict[str, int] = {}

    def add(self, endpoint: str, item: Piece) -> Chunk | None:
        current = self._open.setdefault(endpoint, [])
        size = self._sizes.get(endpoint, _ARRAY_OVERHEAD)
        added = len(item.payload) + (1 if current else 0)
        full: Chunk | None = None
        if current and (len(current) >= self._max_items or size + added > self._max_bytes):
            full = Chunk(endpoint, tuple(current))
            current.clear()
            size, added = _ARRAY_OVERHEAD, len(item.payload)
        current.append(item)
        self._sizes[endpoint] = size + added
        return full

    def flush(self) -> list[Chunk]:
        chunks = [Chunk(endpoint, tuple(items)) for endpoint, items in self._open.items() if items]
        self._open.clear()
        self._sizes.clear()
        return chunks
