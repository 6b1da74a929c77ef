"""What an API request is to the service, whatever route brought it: its headers and body, its
time, and the answer it gets (a status and a JSON body) or the refusal that ends it early.

The handlers (:mod:`segment_raindrop.handlers.api`) build an :class:`ApiRequest` from API
Gateway's event and turn an :class:`Answer` or a :class:`Refusal` into API Gateway's response.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segment_raindrop.core.content_encoding import decode_body
from segment_raindrop.core.timing import deadline_within

# Failed authentication re-reads the secret (a just-changed token) at most this often.
AUTH_REFRESH_SECONDS = 30.0
# Time kept back from the Lambda's remaining time for queueing and answering.
QUEUEING_RESERVE_SECONDS = 2.5
# Time kept back from the Lambda's remaining time to answer once queueing gives up.
ANSWER_RESERVE_SECONDS = 0.5


class Refusal(Exception):
    """Ends a request early with ``status`` and a short message safe to show the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """When a request's delivery must stop, and past which SQS is not asked again (the events
    left are answered for with a 503)."""

    delivery: float
    queueing: float


@dataclass(frozen=True, slots=True)
class ApiRequest:
    # Case-insensitive: API Gateway's header names come in any case.
    headers: Mapping[str, str]
    # The body as sent (still in its Content-Encoding).
    body: bytes
    request_id: str
    # Seconds left before the function times out.
    remaining: Callable[[], float]
    # The body arrived byte for byte (an API with binary media types hands it over
    # base64-encoded); otherwise API Gateway passed it as text, which no compressed body survives.
    intact: bool = True
    started: float = field(default_factory=time.monotonic)

    def decoded_body(self, *, max_bytes: int) -> bytes:
        """The body with its ``Content-Encoding`` undone, within ``max_bytes``
        (:func:`~segment_raindrop.core.content_encoding.decode_body`)."""
        encoding = self.headers.get("content-encoding")
        return decode_body(self.body, encoding, max_bytes=max_bytes, intact=self.intact)

    def deadlines(self, *, budget: float) -> Deadlines:
        remaining = self.remaining()
        return Deadlines(
            delivery=deadline_within(
                self.started, budget=budget, remaining=remaining, reserve=QUEUEING_RESERVE_SECONDS
            ),
            queueing=time.monotonic() + remaining - ANSWER_RESERVE_SECONDS,
        )

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)
