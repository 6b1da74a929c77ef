"""What each HTTP answer means for a chunk: the failure semantics of docs/wire.md §2.6.

- 2xx: delivered.
- Connection error, timeout, 408, 429, 5xx: retried with exponential backoff and full jitter,
  honouring ``Retry-After``; still failing after ``max_attempts``, or asked to wait longer
  than ``retry_after_cap_seconds``: *transient* (the retry worker takes over).
- 401 / 403: the key is re-read once (it may have been rotated) and the chunk retried;
  otherwise *rejected*.
- 413: the chunk is split in two and each half sent; a single item: *rejected*.
- 400 / 422 with several items: split in two to isolate the item the receiver refuses, so one
  bad item does not sink its neighbours; a single item: *rejected*, refused on its own.
- Splitting, for either, has a budget per chunk (:func:`split_budget`); a part that still needs
  splitting when it is spent is *isolating*: queued to go on splitting in a later call, never
  dead-lettered for its neighbours' sake.
- 3xx: a redirect means the receiver's URL setting is wrong, not that the items are:
  *transient* (queued, never dead-lettered as rejected), not retried here, counted for an alarm.
  Redirects are never followed: the request carries the key.
- Any other status: *rejected* (permanent).

Timeouts, connection errors, 408 and 5xx count as circuit-breaker failures; any other answer
(429 included: the receiver is alive) as a success.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import httpx

from segment_raindrop.core.outcomes import ChunkStatus

_ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Final:
    """The chunk's fate is decided by this answer (``status`` None: split it and send the
    halves)."""

    status: ChunkStatus | None
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """Worth another attempt."""

    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    immediately: bool = False  # a fresh key to try: no backoff, no attempt limit

    @property
    def status(self) -> ChunkStatus:
        return ChunkStatus.TRANSIENT


def judge(response: httpx.Response, items: int) -> Final | Retry:
    """The verdict on a non-2xx, non-3xx answer other than 401/403, for a chunk of ``items``."""
    status = response.status_code
    error = describe(response)
    splittable = status == 413 or status in (400, 422)
    if splittable and items > 1:
        return Final(None, status, error)
    if not retryable(status):
        return Final(ChunkStatus.REJECTED, status, error)
    return Retry(status, error, retry_after_seconds(response.headers.get("retry-after")))


def split_budget(items: int) -> int:
    """``ceil(log2(items))``: the depth of the deepest item when halving down to single ones.

    A chunk of ``n`` items as submitted may be split (413, 400, 422) at most this many times in
    all, so a call adds at most ``2 * ceil(log2(n))`` requests to its first one (15 requests in
    all for 100 items, against 199 without a budget when the receiver refuses everything). That
    is exactly enough to isolate one bad item; a part that finds the budget spent is *isolating*
    and the next call splits it further, so every item ends delivered or refused on its own.
    """
    return max(0, items - 1).bit_length()


def retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def unavailable(outcome: Final | Retry) -> bool:
    """A breaker failure: no answer, or an answer saying the receiver cannot serve right now."""
    if not isinstance(outcome, Retry):
        return False
    status = outcome.http_status
    return status is None or status == 408 or status >= 500


def describe(response: httpx.Response) -> str:
    text = response.text[:_ERROR_TEXT_LIMIT].strip()
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def describe_redirect(response: httpx.Response, setting: str) -> str:
    location = response.headers.get("location", "")[:_ERROR_TEXT_LIMIT]
    target = f" to {location}" if location else ""
    return f"HTTP {response.status_code}: redirected{target}; check {setting}"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a year past 9999
        return None
    return max(0.0, when.timestamp() - time.time())
