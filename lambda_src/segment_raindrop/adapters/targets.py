"""Where a chunk goes and how it is framed: the one thing Raindrop and Segment differ in.

:class:`~segment_raindrop.adapters.http_delivery.HttpDelivery` sends to either with the same
retries, back-off, deadline, breaker and splitting; a target gives each request its URL,
credentials and body.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.projects import PRODUCTION_PROJECT, PROJECT_HEADER
from segment_raindrop.core.raindrop_api import SINGLE_OBJECT_ENDPOINTS

# What a Segment batch request wraps around the array of events.
SEGMENT_BATCH_ENVELOPE = len(b'{"batch":}')
SEGMENT_BATCH_ENDPOINT = "batch"


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    headers: dict[str, str]
    body: bytes


class Target(Protocol):
    @property
    def name(self) -> str:
        """Names the receiver: its worker threads, its circuit breakers' log lines."""
        ...

    @property
    def url_setting(self) -> str:
        """The setting a redirect says to check."""
        ...

    def default_headers(self) -> dict[str, str]:
        """Headers every request carries."""
        ...

    def request(self, chunk: Chunk, key: str, project: str | None) -> Request: ...


@dataclass(frozen=True, slots=True)
class RaindropTarget:
    """Raindrop's API: Bearer key, JSON arrays (one object for ``SINGLE_OBJECT_ENDPOINTS``)
    and the project header: the delivery's project, the configured one when it names none.
    ``default`` is Raindrop's Production project, which is what no header means too."""

    api_url: str
    default_project: str | None = None
    name: str = "raindrop"
    url_setting: str = "RAINDROP_API_URL"

    def default_headers(self) -> dict[str, str]:
        return {}

    def request(self, chunk: Chunk, key: str, project: str | None) -> Request:
        headers = {"Authorization": f"Bearer {key}"}
        if chunk.content_type:
            headers["Content-Type"] = chunk.content_type
        routed = project if project is not None else self.default_project
        if routed and routed != PRODUCTION_PROJECT:
            headers[PROJECT_HEADER] = routed
        body = chunk.body
        single = chunk.endpoint in SINGLE_OBJECT_ENDPOINTS and len(chunk.items) == 1
        if single and chunk.raw is None:
            body = chunk.items[0].payload
        return Request(f"{self.api_url}/{chunk.endpoint}", headers, body)


@dataclass(frozen=True, slots=True)
class SegmentTarget:
    """Segment's HTTP Tracking API batch endpoint: Basic auth with the write key as user name,
    ``{"batch": [...]}`` bodies, and no project (it would mean nothing to Segment)."""

    api_url: str
    name: str = "segment"
    url_setting: str = "SEGMENT_API_URL"

    def default_headers(self) -> dict[str, str]:
        return {}

    def request(self, chunk: Chunk, key: str, project: str | None) -> Request:
        del project
        token = base64.b64encode(f"{key}:".encode()).decode("ascii")
        body = b'{"batch":' + chunk.body + b"}"
        headers = {"Authorization": f"Basic {token}"}
        return Request(f"{self.api_url}/{chunk.endpoint}", headers, body)
