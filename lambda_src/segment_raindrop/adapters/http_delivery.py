"""Sending chunks over HTTP: bounded concurrency, retries with backoff, and a hard deadline.

One :class:`HttpDelivery` per receiver (:mod:`~segment_raindrop.adapters.targets`: Raindrop, or
Segment for the mirror), each with its pooled client, worker pool and circuit breaker, reused
across the invocations of a warm function. What each answer means is
:mod:`~segment_raindrop.adapters.http_answers`; beyond that:

- No time left before the deadline: *deadline*.
- The circuit breaker (:mod:`segment_raindrop.adapters.breaker`) open: *transient* at once, with
  the error ``circuit open`` and no request.

Every attempt's timeouts are clipped to the time left, so a session's ``wait`` returns by the
deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import httpx

from segment_raindrop.adapters import http_answers as answers
from segment_raindrop.adapters.breaker import Breakers, CircuitBreaker, Permit
from segment_raindrop.adapters.http_answers import Final, Retry
from segment_raindrop.adapters.targets import Target
from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.config import DeliveryConfig
from segment_raindrop.core.outcomes import ChunkResult, ChunkStatus, DeliveryReport
from segment_raindrop.core.timing import backoff_seconds

# Past the deadline, how long chunks still in a worker are waited for (thread hand-off).
WAIT_GRACE_SECONDS = 1.0
# Below this much time left, an attempt cannot reasonably complete: stop and queue instead.
MIN_ATTEMPT_SECONDS = 0.05
CIRCUIT_OPEN_ERROR = "circuit open"
# The breakers' key for requests that name no project (the target's default).
_NO_PROJECT = ""

KeyRefresher = Callable[[], str | None]


def _user_agent() -> str:
    try:
        return f"segment-raindrop/{version('segment-raindrop')}"
    except PackageNotFoundError:
        return "segment-raindrop"


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


class DeliverySession:
    """Chunks submitted to the worker pool as they come; ``wait`` collects every result."""

    def __init__(
        self, client: HttpDelivery, key: _ApiKey, deadline: float, project: str | None
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


class HttpDelivery:
    """One pooled HTTP client and worker pool for one ``target``, and a circuit breaker per
    project it routes to (:class:`~segment_raindrop.adapters.breaker.Breakers`).

    ``make_breaker`` builds a project's breaker (by default from ``config``); ``breaker`` is
    the one for requests that name no project, to watch its state changes or give it a clock.
    """

    def __init__(
        self,
        config: DeliveryConfig,
        target: Target,
        *,
        transport: httpx.BaseTransport | None = None,
        breaker: CircuitBreaker | None = None,
        make_breaker: Callable[[str], CircuitBreaker] | None = None,
    ) -> None:
        self._config = config
        self.target = target

        def default(label: str) -> CircuitBreaker:
            return CircuitBreaker.from_config(config, label=label, receiver=target.name)

        self._breakers = Breakers(make_breaker or default)
        if breaker is not None:
            self._breakers.seed(_NO_PROJECT, breaker)
        headers = {"Content-Type": "application/json", "User-Agent": _user_agent()}
        self._http = httpx.Client(
            headers=headers | target.default_headers(),
            transport=transport,
            # A redirect is a configuration fault to report, and following it would hand the
            # key to whatever host it names.
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
            max_workers=config.concurrency, thread_name_prefix=target.name
        )

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker of requests that name no project."""
        return self._breakers.for_key(_NO_PROJECT)

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
        None keeps the target's default.
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
        splits_left = answers.split_budget(len(chunk.items))
        pending = [chunk]
        while pending:
            current = pending.pop()
            outcome = self._attempt_chunk(current, key, deadline, report, project)
            status = outcome.status
            if status is None:
                # Refused or too large: split only while the budget lasts, so a receiver that
                # refuses everything costs a few requests per chunk, not two per item; what is
                # left goes on splitting in a later call.
                if splits_left > 0:
                    splits_left -= 1
                else:
                    status = ChunkStatus.ISOLATING
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
            breaker = self._breakers.for_key(project or _NO_PROJECT)
            permit = breaker.acquire()
            if permit is None:
                report.short_circuited += 1
                return _Attempt(
                    ChunkStatus.TRANSIENT, attempts, last.http_status, CIRCUIT_OPEN_ERROR
                )
            attempts += 1
            outcome = self._post_and_report(
                chunk, key, remaining, report, (breaker, permit), project=project
            )
            last = _Attempt(outcome.status, attempts, outcome.http_status, outcome.error)
            if isinstance(outcome, Final):
                return last
            if outcome.immediately:
                continue
            if attempts >= self._config.max_attempts or (
                outcome.retry_after is not None
                and outcome.retry_after > self._config.retry_after_cap_seconds
            ):
                # The receiver asked for more patience than we may spend here: queue the chunk
                # for the retry worker rather than knock again before it is ready.
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
        permitted: tuple[CircuitBreaker, Permit],
        *,
        project: str | None,
    ) -> Final | Retry:
        """``_post``, with its outcome told to the breaker whatever happens."""
        breaker, permit = permitted
        try:
            outcome = self._post(chunk, key, remaining, report, project)
        except BaseException:
            breaker.record_failure(permit)
            raise
        if answers.unavailable(outcome):
            breaker.record_failure(permit)
        else:
            breaker.record_success(permit)
        return outcome

    def _post(
        self,
        chunk: Chunk,
        key: _ApiKey,
        remaining: float,
        report: DeliveryReport,
        project: str | None,
    ) -> Final | Retry:
        """One request; the verdict on its answer."""
        config = self._config
        api_key = key.value
        request = self.target.request(chunk, api_key, project)
        started = time.monotonic()
        try:
            response = self._http.post(
                request.url,
                content=request.body,
                headers=request.headers,
                timeout=httpx.Timeout(
                    min(config.read_timeout_seconds, remaining),
                    connect=min(config.connect_timeout_seconds, remaining),
                ),
            )
        except httpx.TimeoutException:
            report.statuses["timeout"] += 1
            return Retry(error="timeout")
        except httpx.HTTPError as exc:
            # Transport errors, and anything else httpx raises (an undecodable answer, say):
            # the chunk's fate is unknown, so it is retried and, failing that, queued.
            report.statuses["connection_error"] += 1
            return Retry(error=type(exc).__name__)
        except Exception as exc:
            # Not httpx's: a header value it cannot encode, say. Retried and then queued like
            # a transport error, so the events are answered for rather than lost with a 502.
            report.statuses["error"] += 1
            return Retry(error=type(exc).__name__)
        report.latencies_ms.append((time.monotonic() - started) * 1000)
        status = response.status_code
        report.statuses[str(status)] += 1
        if response.is_success:
            return Final(ChunkStatus.DELIVERED, status)
        if 300 <= status < 400:
            report.redirects += 1
            error = answers.describe_redirect(response, self.target.url_setting)
            return Final(ChunkStatus.TRANSIENT, status, error)
        if status in (401, 403):
            if key.replace_after_refusal(api_key):
                return Retry(status, answers.describe(response), immediately=True)
            return Final(ChunkStatus.REJECTED, status, answers.describe(response))
        return answers.judge(response, len(chunk.items))

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        config = self._config
        if retry_after is not None:
            return retry_after
        return backoff_seconds(config.backoff_base_seconds, attempts, config.backoff_cap_seconds)
