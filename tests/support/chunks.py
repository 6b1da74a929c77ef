"""Chunks built as the senders build them, for tests of what requests would hold."""

from __future__ import annotations

from collections.abc import Iterable

from segment_raindrop.core.chunking import Chunk, ChunkBuilder
from segment_raindrop.core.mapping.items import MappedItem


def chunks_of(items: Iterable[MappedItem], *, max_items: int, max_bytes: int) -> list[Chunk]:
    """All of ``items`` as chunks, each to its item's endpoint."""
    builder = ChunkBuilder(max_items=max_items, max_bytes=max_bytes)
    chunks = [chunk for item in items if (chunk := builder.add(item.endpoint, item)) is not None]
    return chunks + builder.flush()


def event_indices(chunk: Chunk) -> set[int]:
    """The events a chunk's items came from, enrichment included."""
    return {item.event_index for item in chunk.items}
