"""Sending chunks to Raindrop: bounded concurrency, retries with backoff, and a hard deadline.

Failure semantics, per answer from Raindrop:

- 2xx: delivered.
- Connection error, timeout, 408, 429, 5xx: retried with exponential backoff and full jitter,
  honouring ``Retry-After``; still failing after ``max_attempts``, or asked to wait longer
  than ``retry_after_cap_seconds``: *transient* (the retry worker takes over).
- 401 / 403: the secret is re-read once (the key may have been rotated) and the chunk
  retried; otherwise *rejected*.
- 413: the chunk is split in two and each half sent; a single item: *rejected*.
- 400 / 422 with several items: split in two to isolate the item Raindrop refuses, so one bad
  item does not sink its neighbours; a single item: *rejected*.
- Any other status: *rejected* (permanent).
- No time left before the deadline: *deadline*.

Every attempt's timeouts are clipped to the time left, so ``deliver`` returns by the deadline.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version

import httpx

from segment_raindrop.chunking import Chunk
from segment_raindrop.config import DeliveryConfig

# Below this much time left, an attempt cannot reasonably complete: stop and queue instead.
MIN_ATTEMPT_SECONDS = 0.05
_ERROR_TEXT_LIMIT = 300


def _user_agent() -> str:
    try:
        return f"segment-raindrop/{version('segment-raindrop')}"
    except PackageNotFoundError:
        return "segment-raindrop"


class ChunkStatus(StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class ChunkResult:
    chunk: Chunk
    status: ChunkStatus
    attempts: int
    http_status: int | None = None
    # For the dead-letter message: Raindrop's status line and the start of its answer. Never
    # logged (Raindrop may echo content back); logs get ``http_status`` only.
    error: str | None = None


@dataclass(slots=True)
class DeliveryReport:
    results: list[ChunkResult] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed_requests(self) -> int:
        return sum(count for status, count in self.statuses.items() if not status.startswith("2"))

    def merge(self, other: DeliveryReport) -> None:
        self.results.extend(other.results)
        self.latencies_ms.extend(other.latencies_ms)
        self.statuses.update(other.statuses)


KeyRefresher = Callable[[], str | None]


class _ApiKey:
    """The key in use, re-read at most once per delivery after a 401/403."""

    def __init__(self, key: str, refresh: KeyRefresher | None) -> None:
        self._key = key
        self._refresh = refresh
        self._refreshed = False
        self._lock = threading.Lock()

    @property
    def value(self) -> str:
        return self._key

    def replace_after_refusal(self, refused: str) -> bool:
        """True when a different key is now available to retry with."""
        with self._lock:
            if self._key != refused:
                return True
            if self._refreshed or self._refresh is None:
                return False
            self._refreshed = True
            try:
                fresh = self._refresh()
            except Exception:  # an unreadable secret: the refusal stands
                return False
            if fresh and fresh != refused:
                self._key = fresh
                return True
            return False


@dataclass(frozen=True, slots=True)
class _Attempt:
    status: ChunkStatus | None  # None: split the chunk
    attempts: int
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Final:
    status: ChunkStatus | None  # None: split the chunk and send the halves
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Retry:
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    immediately: bool = False  # a fresh key to try: no backoff, no attempt limit

    @property
    def status(self) -> ChunkStatus:
        return ChunkStatus.TRANSIENT


class DeliverySession:
    """Chunks submitted to the worker pool as they come; ``wait`` collects every result."""

    def __init__(self, client: RaindropClient, key: _ApiKey, deadline: float) -> None:
        self._client = client
        self._key = key
        self._deadline = deadline
        self._futures: list[tuple[Chunk, Future[DeliveryReport]]] = []

    def submit(self, chunk: Chunk) -> None:
        future = self._client.submit_chunk(chunk, self._key, self._deadline)
        self._futures.append((chunk, future))

    def wait(self) -> DeliveryReport:
        report = DeliveryReport()
        for chunk, future in self._futures:
            # Each attempt's timeouts end by the deadline; the grace covers thread hand-off.
            wait = max(0.0, self._deadline - time.monotonic()) + 1.0
            try:
                report.merge(future.result(timeout=wait))
            except FutureTimeout:
                future.cancel()
                report.results.append(
                    ChunkResult(chunk, ChunkStatus.DEADLINE, attempts=0, error="deadline")
                )
        self._futures.clear()
        return report


class RaindropClient:
    """One pooled HTTP client and worker pool, reused across invocations of a warm function."""

    def __init__(
        self, config: DeliveryConfig, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._config = config
        headers = {"Content-Type": "application/json", "User-Agent": _user_agent()}
        if config.project_id:
            headers["X-Raindrop-Project-Id"] = config.project_id
        self._http = httpx.Client(
            headers=headers,
            transport=transport,
            limits=httpx.Limits(
                max_connections=config.concurrency,
                max_keepalive_connections=config.concurrency,
            ),
            timeout=httpx.Timeout(
                config.read_timeout_seconds, connect=config.connect_timeout_seconds
            ),
        )
        self._pool = ThreadPoolExecutor(
            max_workers=config.concurrency, thread_name_prefix="raindrop"
        )
        self._random = random.SystemRandom()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def deliver(
        self,
        chunks: Iterable[Chunk],
        *,
        api_key: str,
        deadline: float,
        refresh_key: KeyRefresher | None = None,
    ) -> DeliveryReport:
        """Send every chunk, returning one result per (possibly split) chunk.

        ``deadline`` is a ``time.monotonic()`` instant.
        """
        session = self.session(api_key=api_key, deadline=deadline, refresh_key=refresh_key)
        for chunk in chunks:
            session.submit(chunk)
        return session.wait()

    def session(
        self, *, api_key: str, deadline: float, refresh_key: KeyRefresher | None = None
    ) -> DeliverySession:
        """A delivery that takes chunks as they are built, so sending overlaps mapping."""
        return DeliverySession(self, _ApiKey(api_key, refresh_key), deadline)

    def submit_chunk(self, chunk: Chunk, key: _ApiKey, deadline: float) -> Future[DeliveryReport]:
        return self._pool.submit(self._send_chunk, chunk, key, deadline)

    def _send_chunk(self, chunk: Chunk, key: _ApiKey, deadline: float) -> DeliveryReport:
        report = DeliveryReport()
        pending = [chunk]
        while pending:
            current = pending.pop()
            outcome = self._attempt_chunk(current, key, deadline, report)
            if outcome.status is None:
                first, second = current.halves()
                pending.extend((second, first))
                continue
            report.results.append(
                ChunkResult(
                    current,
                    outcome.status,
                    attempts=outcome.attempts,
                    http_status=outcome.http_status,
                    error=outcome.error,
                )
            )
        return report

    def _attempt_chunk(
        self, chunk: Chunk, key: _ApiKey, deadline: float, report: DeliveryReport
    ) -> _Attempt:
        attempts = 0
        last = _Attempt(ChunkStatus.DEADLINE, 0, None, "deadline")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= MIN_ATTEMPT_SECONDS:
                return _Attempt(ChunkStatus.DEADLINE, attempts, last.http_status, last.error)
            attempts += 1
            outcome = self._post(chunk, key, remaining, report)
            last = _Attempt(outcome.status, attempts, outcome.http_status, outcome.error)
            if isinstance(outcome, _Final):
                return last
            if outcome.immediately:
                continue
            if attempts >= self._config.max_attempts or (
                outcome.retry_after is not None
                and outcome.retry_after > self._config.retry_after_cap_seconds
            ):
                # Raindrop asked for more patience than we may spend here: queue the chunk for
                # the retry worker rather than knock again before it is ready.
                return _Attempt(ChunkStatus.TRANSIENT, attempts, last.http_status, last.error)
            delay = self._backoff(attempts, outcome.retry_after)
            if time.monotonic() + delay > deadline - MIN_ATTEMPT_SECONDS:
                return _Attempt(ChunkStatus.DEADLINE, attempts, last.http_status, last.error)
            time.sleep(delay)

    def _post(
        self, chunk: Chunk, key: _ApiKey, remaining: float, report: DeliveryReport
    ) -> _Final | _Retry:
        """One request; the verdict on its answer."""
        config = self._config
        api_key = key.value
        started = time.monotonic()
        try:
            response = self._http.post(
                f"{config.api_url}/{chunk.endpoint.value}",
                content=chunk.body,
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=httpx.Timeout(
                    min(config.read_timeout_seconds, remaining),
                    connect=min(config.connect_timeout_seconds, remaining),
                ),
            )
        except httpx.TimeoutException:
            report.statuses["timeout"] += 1
            return _Retry(error="timeout")
        except httpx.HTTPError as exc:
            # Transport errors, and anything else httpx raises (an undecodable answer, say):
            # the chunk's fate is unknown, so it is retried and, failing that, queued.
            report.statuses["connection_error"] += 1
            return _Retry(error=type(exc).__name__)
        report.latencies_ms.append((time.monotonic() - started) * 1000)
        status = response.status_code
        report.statuses[str(status)] += 1
        if response.is_success:
            return _Final(ChunkStatus.DELIVERED, status)
        error = _describe(response)
        if status in (401, 403):
            if key.replace_after_refusal(api_key):
                return _Retry(status, error, immediately=True)
            return _Final(ChunkStatus.REJECTED, status, error)
        splittable = status == 413 or status in (400, 422)
        if splittable and len(chunk.items) > 1:
            return _Final(None, status, error)
        if not _retryable(status):
            return _Final(ChunkStatus.REJECTED, status, error)
        return _Retry(status, error, _retry_after_seconds(response.headers.get("retry-after")))

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        config = self._config
        if retry_after is not None:
            return retry_after
        ceiling = min(config.backoff_cap_seconds, config.backoff_base_seconds * 2 ** (attempts - 1))
        return self._random.uniform(0, ceiling)


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _describe(response: httpx.Response) -> str:
    text = response.text[:_ERROR_TEXT_LIMIT].strip()
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def _retry_after_seconds(value: str | None) -> float | None:
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
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
