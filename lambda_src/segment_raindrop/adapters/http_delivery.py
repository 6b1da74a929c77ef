"""Sending chunks to Raindrop: bounded concurrency, retries with backoff, and a hard deadline.

What each of Raindrop's answers means to us is docs/wire.md §2.6.

Failure semantics, per answer from Raindrop:

- 2xx: delivered.
- Connection error, timeout, 408, 429, 5xx: retried with exponential backoff and full jitter,
  honouring ``Retry-After``; still failing after ``max_attempts``, or asked to wait longer
  than ``retry_after_cap_seconds``: *transient* (the retry worker takes over).
- 401 / 403: the secret is re-read once (the key may have been rotated) and the chunk
  retried; otherwise *rejected*.
- 413: the chunk is split in two and each half sent; a single item: *rejected*.
- 400 / 422 with several items: split in two to isolate the item Raindrop refuses, so one bad
  item does not sink its neighbours; a single item: *rejected*. Bisection has a budget: a
  chunk of ``n`` items as submitted may be split on 400/422 at most ``ceil(log2(n))`` times
  in all, so refusals add at most ``2 * ceil(log2(n))`` requests to its first one (15 requests
  in all for 100 items, against 199 without a budget when Raindrop refuses everything). That
  is exactly enough to isolate one bad item; a refused part that finds the budget spent is
  *rejected* whole, with Raindrop's answer about it.
- 3xx: a redirect means ``RAINDROP_API_URL`` is wrong, not that the items are: *transient*
  (queued for the retry worker, never dead-lettered as rejected), not retried here, and
  counted in ``DeliveryReport.redirects`` for an alarm. Redirects are never followed: the
  request carries the API key.
- Any other status: *rejected* (permanent).
- No time left before the deadline: *deadline*.
- The circuit breaker (:mod:`segment_raindrop.adapters.breaker`) open: *transient* at once, with the
  error ``circuit open`` and no request. Timeouts, connection errors, 408 and 5xx count as
  breaker failures; any other answer (429 included: Raindrop is alive) as a success.

Every attempt's timeouts are clipped to the time left, so a session's ``wait`` returns by the
deadline.
"""

from __future__ import annotations

import base64
import email.utils
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version

import httpx

from segment_raindrop.adapters.breaker import CircuitBreaker, Permit
from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.config import DeliveryConfig
from segment_raindrop.core.projects import PROJECT_HEADER
from segment_raindrop.core.timing import backoff_seconds

# Past the deadline, how long chunks still in a worker are waited for (thread hand-off).
WAIT_GRACE_SECONDS = 1.0
# Below this much time left, an attempt cannot reasonably complete: stop and queue instead.
MIN_ATTEMPT_SECONDS = 0.05
_ERROR_TEXT_LIMIT = 300
CIRCUIT_OPEN_ERROR = "circuit open"


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
    # Answers that were redirects: RAINDROP_API_URL needs fixing (an alarm's metric).
    redirects: int = 0
    # Chunks answered "circuit open" without a request.
    short_circuited: int = 0

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
        self.redirects += other.redirects
        self.short_circuited += other.short_circuited


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

    def __init__(
        self, client: RaindropClient, key: _ApiKey, deadline: float, project: str | None = None
    ) -> None:
        self._client = client
        self._key = key
        self._deadline = deadline
        self._project = project
        self._futures: list[tuple[Chunk, Future[DeliveryReport]]] = []

    def submit(self, chunk: Chunk) -> None:
        future = self._client.submit_chunk(chunk, self._key, self._deadline, self._project)
        self._futures.append((chunk, future))

    def wait(self) -> DeliveryReport:
        report = DeliveryReport()
        # Each attempt's timeouts end by the deadline; the grace covers thread hand-off. One
        # end for all chunks: past it, a chunk still in a worker is given up at once, not
        # after a grace of its own.
        end = self._deadline + WAIT_GRACE_SECONDS
        for chunk, future in self._futures:
            try:
                report.merge(future.result(timeout=max(0.0, end - time.monotonic())))
            except FutureTimeout:
                future.cancel()
                report.results.append(
                    ChunkResult(chunk, ChunkStatus.DEADLINE, attempts=0, error="deadline")
                )
            except Exception as exc:
                report.results.append(
                    ChunkResult(chunk, ChunkStatus.TRANSIENT, attempts=0, error=type(exc).__name__)
                )
        self._futures.clear()
        return report


class RaindropClient:
    """One pooled HTTP client, worker pool and circuit breaker, reused across invocations of a
    warm function (and shared by the webhook's and the retry worker's deliveries).

    ``breaker`` defaults to one built from ``config``; pass your own to watch its state changes
    (``CircuitBreaker.from_config(config, on_state_change=...)``) or to give it a clock.
    """

    def __init__(
        self,
        config: DeliveryConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        breaker: CircuitBreaker | None = None,
        thread_name_prefix: str = "raindrop",
    ) -> None:
        self._config = config
        self._breaker = breaker if breaker is not None else CircuitBreaker.from_config(config)
        headers = {"Content-Type": "application/json", "User-Agent": _user_agent()}
        if config.project_id:
            headers[PROJECT_HEADER] = config.project_id
        self._http = httpx.Client(
            headers=headers,
            transport=transport,
            # A redirect is a configuration fault to report, and following it would hand the
            # API key to whatever host it names.
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=config.concurrency,
                max_keepalive_connections=config.concurrency,
            ),
            timeout=httpx.Timeout(
                config.read_timeout_seconds, connect=config.connect_timeout_seconds
            ),
        )
        self._pool = ThreadPoolExecutor(
            max_workers=config.concurrency, thread_name_prefix=thread_name_prefix
        )

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def session(
        self,
        *,
        api_key: str,
        deadline: float,
        refresh_key: KeyRefresher | None = None,
        project: str | None = None,
    ) -> DeliverySession:
        """A delivery that takes chunks as they are built, so sending overlaps mapping.

        ``deadline`` is a ``time.monotonic()`` instant; ``wait`` returns one result per
        (possibly split) chunk. ``project`` routes every request of this delivery to that
        Raindrop project (a header per request, since the client is shared across requests);
        None keeps the configured ``project_id``.
        """
        return DeliverySession(self, _ApiKey(api_key, refresh_key), deadline, project)

    def submit_chunk(
        self, chunk: Chunk, key: _ApiKey, deadline: float, project: str | None = None
    ) -> Future[DeliveryReport]:
        return self._pool.submit(self._send_chunk, chunk, key, deadline, project)

    def _send_chunk(
        self, chunk: Chunk, key: _ApiKey, deadline: float, project: str | None = None
    ) -> DeliveryReport:
        report = DeliveryReport()
        refusal_splits_left = _refusal_split_budget(len(chunk.items))
        pending = [chunk]
        while pending:
            current = pending.pop()
            outcome = self._attempt_chunk(current, key, deadline, report, project)
            status = outcome.status
            if status is None and outcome.http_status != 413:
                # Refused (400/422): split only while the budget lasts, so a Raindrop that
                # refuses everything costs a few requests per chunk, not two per item.
                if refusal_splits_left > 0:
                    refusal_splits_left -= 1
                else:
                    status = ChunkStatus.REJECTED
            if status is None:
                first, second = current.halves()
                pending.extend((second, first))
                continue
            report.results.append(
                ChunkResult(
                    current,
                    status,
                    attempts=outcome.attempts,
                    http_status=outcome.http_status,
                    error=outcome.error,
                )
            )
        return report

    def _attempt_chunk(
        self,
        chunk: Chunk,
        key: _ApiKey,
        deadline: float,
        report: DeliveryReport,
        project: str | None,
    ) -> _Attempt:
        attempts = 0
        last = _Attempt(ChunkStatus.DEADLINE, 0, None, "deadline")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= MIN_ATTEMPT_SECONDS:
                return _Attempt(ChunkStatus.DEADLINE, attempts, last.http_status, last.error)
            # Acquired only once the request is certain to be made: a probe permit that is
            # never reported back would keep the breaker half-open for good.
            permit = self._breaker.acquire()
            if permit is None:
                report.short_circuited += 1
                return _Attempt(
                    ChunkStatus.TRANSIENT, attempts, last.http_status, CIRCUIT_OPEN_ERROR
                )
            attempts += 1
            outcome = self._post_and_report(chunk, key, remaining, report, permit, project=project)
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

    def _post_and_report(
        self,
        chunk: Chunk,
        key: _ApiKey,
        remaining: float,
        report: DeliveryReport,
        permit: Permit,
        *,
        project: str | None,
    ) -> _Final | _Retry:
        """``_post``, with its outcome told to the breaker whatever happens."""
        try:
            outcome = self._post(chunk, key, remaining, report, project)
        except BaseException:
            self._breaker.record_failure(permit)
            raise
        if _raindrop_unavailable(outcome):
            self._breaker.record_failure(permit)
        else:
            self._breaker.record_success(permit)
        return outcome

    def _post(
        self,
        chunk: Chunk,
        key: _ApiKey,
        remaining: float,
        report: DeliveryReport,
        project: str | None,
    ) -> _Final | _Retry:
        """One request; the verdict on its answer."""
        config = self._config
        api_key = key.value
        url, headers, body = self._request(chunk, api_key, project)
        started = time.monotonic()
        try:
            response = self._http.post(
                url,
                content=body,
                headers=headers,
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
        except Exception as exc:
            # Not httpx's: a header value it cannot encode, say. Retried and then queued like
            # a transport error, so the events are answered for rather than lost with a 502.
            report.statuses["error"] += 1
            return _Retry(error=type(exc).__name__)
        report.latencies_ms.append((time.monotonic() - started) * 1000)
        status = response.status_code
        report.statuses[str(status)] += 1
        if response.is_success:
            return _Final(ChunkStatus.DELIVERED, status)
        if 300 <= status < 400:
            report.redirects += 1
            return _Final(ChunkStatus.TRANSIENT, status, _describe_redirect(response))
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

    def _request(
        self, chunk: Chunk, api_key: str, project: str | None
    ) -> tuple[str, dict[str, str], bytes]:
        """Where one chunk goes, with which headers and body: the one thing that differs
        between Raindrop and Segment (see :class:`SegmentClient`)."""
        headers = {"Authorization": f"Bearer {api_key}"}
        if project:
            # Replaces the client's default project header for this request only.
            headers[PROJECT_HEADER] = project
        return f"{self._config.api_url}/{chunk.endpoint.value}", headers, chunk.body

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        config = self._config
        if retry_after is not None:
            return retry_after
        return backoff_seconds(config.backoff_base_seconds, attempts, config.backoff_cap_seconds)


def _refusal_split_budget(items: int) -> int:
    """``ceil(log2(items))``: the depth of the deepest item when halving down to single ones."""
    return max(0, items - 1).bit_length()


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _raindrop_unavailable(outcome: _Final | _Retry) -> bool:
    """A breaker failure: no answer, or an answer saying Raindrop cannot serve right now."""
    if not isinstance(outcome, _Retry):
        return False
    status = outcome.http_status
    return status is None or status == 408 or status >= 500


def _describe(response: httpx.Response) -> str:
    text = response.text[:_ERROR_TEXT_LIMIT].strip()
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def _describe_redirect(response: httpx.Response) -> str:
    location = response.headers.get("location", "")[:_ERROR_TEXT_LIMIT]
    target = f" to {location}" if location else ""
    return f"HTTP {response.status_code}: redirected{target}; check RAINDROP_API_URL"


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
    except (TypeError, ValueError, OverflowError):  # OverflowError: a year past 9999
        return None
    return max(0.0, when.timestamp() - time.time())


class SegmentClient(RaindropClient):
    """Segment's HTTP Tracking API batch endpoint with Raindrop's delivery semantics: the same
    retries, back-off, deadline, breaker and splitting (a 400 isolates the event Segment
    refuses), with Basic auth (the write key as user name) and ``{"batch": [...]}`` bodies.

    Its chunks hold Segment events; their ``endpoint`` only groups them for chunking (Segment
    has the one endpoint). ``config.api_url`` is Segment's base URL.
    """

    def __init__(
        self,
        config: DeliveryConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        # Segment's project header would mean nothing to it; no project is ever sent.
        super().__init__(
            config.model_copy(update={"project_id": None}),
            transport=transport,
            breaker=breaker,
            thread_name_prefix="segment",
        )

    def _request(
        self, chunk: Chunk, api_key: str, project: str | None
    ) -> tuple[str, dict[str, str], bytes]:
        del project
        token = base64.b64encode(f"{api_key}:".encode()).decode("ascii")
        body = b'{"batch":[' + b",".join(item.payload for item in chunk.items) + b"]}"
        return f"{self._config.api_url}/batch", {"Authorization": f"Basic {token}"}, body
