"""Segment events to Raindrop: map -> chunk -> deliver, one outcome per event.

The sender of :attr:`JobKind.SEGMENT_TO_RAINDROP <segment_raindrop.core.jobs.JobKind>` jobs:
every Segment event ends forwarded, filtered, or failed with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segment_raindrop.adapters.http_delivery import HttpDelivery, KeyRefresher
from segment_raindrop.core.chunking import ChunkBuilder
from segment_raindrop.core.config import DeliveryConfig, MappingConfig
from segment_raindrop.core.mapping.mapper import PROCESS_USER_HASH_KEY, Mapper
from segment_raindrop.core.outcomes import ForwardResult


class Forwarder:
    def __init__(
        self, mapping: MappingConfig, delivery: DeliveryConfig, client: HttpDelivery
    ) -> None:
        self.mapping = mapping
        self.delivery = delivery
        self.client = client

    def forward(
        self,
        events: Sequence[Any],
        *,
        api_key: str,
        deadline: float,
        refresh_key: KeyRefresher | None = None,
        user_hash_key: bytes = PROCESS_USER_HASH_KEY,
        project: str | None = None,
    ) -> ForwardResult:
        """``project``: the Raindrop project every item goes to (None: the configured one)."""
        # Chunks leave as soon as they fill up, so the first requests are in flight while
        # the rest of the batch is still being mapped.
        mapper = Mapper(self.mapping, user_hash_key=user_hash_key)
        builder = ChunkBuilder(
            max_items=self.delivery.chunk_max_items, max_bytes=self.delivery.chunk_max_bytes
        )
        session = self.client.session(
            api_key=api_key, deadline=deadline, refresh_key=refresh_key, project=project
        )
        for index, event in enumerate(events):
            for item in mapper.add(index, event):
                chunk = builder.add(item.endpoint, item)
                if chunk is not None:
                    session.submit(chunk)
        # Identify items come last: a user's explicit traits and enrichment merge into one.
        for item in mapper.finish():
            chunk = builder.add(item.endpoint, item)
            if chunk is not None:
                session.submit(chunk)
        for chunk in builder.flush():
            session.submit(chunk)
        report = session.wait()
        mapped = mapper.result
        return ForwardResult.of(events, report, sent=mapped.mapped, mapped=mapped)
