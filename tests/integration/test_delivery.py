"""HttpDelivery to Raindrop against the real fault-injecting receiver: bisection, redirects,
breaker.

Every test checks both sides: what the client reports and what the receiver really saw.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from segment_raindrop.adapters.breaker import BreakerState, CircuitBreaker
from segment_raindrop.adapters.http_delivery import CIRCUIT_OPEN_ERROR, HttpDelivery
from segment_raindrop.adapters.targets import RaindropTarget
from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.config import DeliveryConfig, MappingConfig
from segment_raindrop.core.mapping.items import MappedItem
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.outcomes import ChunkStatus, DeliveryReport, FailureReason
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop.service.forwarding import Forwarder
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.receiver import RaindropReceiver

KEY = "rk-delivery-test"
TIMESTAMP = "2026-11-27T10:00:00Z"

ReceiverFactory = Callable[..., RaindropReceiver]
ClientFactory = Callable[..., HttpDelivery]


class FakeClock:
    """The breaker's clock, so cool-downs pass when the test says (HTTP stays real)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def item(seq: int) -> MappedItem:
    payload = {
        "event_id": f"trace-{seq}",
        "user_id": "user-1",
        "event": "ai_interaction",
        "timestamp": TIMESTAMP,
        "properties": {"seq": seq},
    }
    return MappedItem(Endpoint.TRACK, json.dumps(payload).encode(), event_index=seq)


def chunks(count: int, size: int) -> list[Chunk]:
    return [
        Chunk(Endpoint.TRACK, tuple(item(c * size + i) for i in range(size))) for c in range(count)
    ]


def deliver(client: HttpDelivery, to_send: list[Chunk], budget: float = 20.0) -> DeliveryReport:
    session = client.session(api_key=KEY, deadline=time.monotonic() + budget)
    for chunk in to_send:
        session.submit(chunk)
    return session.wait()


def by_status(report: DeliveryReport) -> dict[ChunkStatus, set[int]]:
    """Each item's fate; fails if any item has two or none of the sent ones is missing."""
    fates: dict[ChunkStatus, set[int]] = {}
    seen: Counter[int] = Counter()
    for result in report.results:
        fates.setdefault(result.status, set()).update(result.chunk.required_events)
        seen.update(result.chunk.required_events)
    assert all(count == 1 for count in seen.values()), "an item has more than one fate"
    return fates


def refusing(*bad: int) -> Callable[[str, list[Any]], str | None]:
    """A Raindrop that refuses any request holding one of the ``bad`` items."""

    def validate(endpoint: str, items: list[Any]) -> str | None:
        refused = sorted(i["properties"]["seq"] for i in items if i["properties"]["seq"] in bad)
        return f"item seq {refused[0]} is not acceptable" if refused else None

    return validate


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    """``factory(receiver_or_url, breaker=None, **DeliveryConfig fields)`` → a client, closed
    after the test. Retries are fast and the breaker is off unless a test turns it on."""
    made: list[HttpDelivery] = []

    def factory(
        target: RaindropReceiver | str, *, breaker: CircuitBreaker | None = None, **settings: Any
    ) -> HttpDelivery:
        url = target.url if isinstance(target, RaindropReceiver) else target
        defaults: dict[str, Any] = {
            "backoff_base_seconds": 0.01,
            "backoff_cap_seconds": 0.02,
            "breaker_failure_threshold": 0,
        }
        config = DeliveryConfig(raindrop_api_url=url, **(defaults | settings))
        client = HttpDelivery(config, RaindropTarget(url), breaker=breaker)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


# --- splitting has a budget; what it leaves is isolating, never rejected for a neighbour --


def _alone(report: DeliveryReport, status: ChunkStatus) -> bool:
    """Every result of ``status`` is a single item."""
    return all(len(r.chunk.items) == 1 for r in report.results if r.status is status)


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_raindrop_refusing_everything_costs_a_bounded_number_of_requests(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory, status: int
) -> None:
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(status=status))
    client = client_factory(receiver)
    report = deliver(client, chunks(5, 100))
    # Per chunk of 100: the first request and 2 per split, ceil(log2(100)) = 7 splits at most.
    # Without the budget this was 5 * 199 = 995 requests (and for 413 there was none).
    assert report.requests == len(receiver.requests) == 5 * (1 + 2 * 7)
    fates = by_status(report)
    assert set(fates) == {ChunkStatus.REJECTED, ChunkStatus.ISOLATING}
    assert fates[ChunkStatus.REJECTED] | fates[ChunkStatus.ISOLATING] == set(range(500))
    # Rejected means refused on its own; the rest is still being isolated.
    assert _alone(report, ChunkStatus.REJECTED)
    assert len(fates[ChunkStatus.REJECTED]) >= 5
    assert {result.http_status for result in report.results} == {status}


def test_one_bad_item_among_100_is_still_isolated(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    receiver = receiver_factory(api_key=KEY, validator=refusing(37))
    client = client_factory(receiver)
    report = deliver(client, chunks(1, 100))
    fates = by_status(report)
    assert fates[ChunkStatus.REJECTED] == {37}
    assert fates[ChunkStatus.DELIVERED] == set(range(100)) - {37}
    assert {int(i["properties"]["seq"]) for i in receiver.accepted()} == set(range(100)) - {37}
    [rejected] = [r for r in report.results if r.status is ChunkStatus.REJECTED]
    assert rejected.error is not None
    assert "item seq 37" in rejected.error
    assert len(receiver.requests) <= 1 + 2 * 7


@pytest.mark.parametrize("bad", [(0,), (99,), (63, 64), (5, 50, 95), (1, 2, 3, 40, 41, 77, 98)])
def test_good_items_beside_bad_ones_are_never_rejected(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory, bad: tuple[int, ...]
) -> None:
    receiver = receiver_factory(api_key=KEY, validator=refusing(*bad))
    client = client_factory(receiver)
    to_send = chunks(1, 100)
    report = deliver(client, to_send)
    fates = by_status(report)
    assert fates[ChunkStatus.REJECTED] <= set(bad)
    assert _alone(report, ChunkStatus.REJECTED)
    assert report.requests == len(receiver.requests) <= 1 + 2 * 7
    if len(bad) == 1:
        assert fates[ChunkStatus.REJECTED] == set(bad)
    # Sending what is isolating again, call after call as the retry worker does, ends with
    # every good item delivered and every bad one rejected on its own.
    calls = 1
    while isolating := [r.chunk for r in report.results if r.status is ChunkStatus.ISOLATING]:
        items = tuple(item for chunk in isolating for item in chunk.items)
        report = deliver(client, [Chunk(Endpoint.TRACK, items)])
        assert report.requests <= 1 + 2 * 7
        for status, seqs in by_status(report).items():
            fates.setdefault(status, set()).update(seqs)
        calls += 1
        assert calls <= len(bad) + 1
    accepted = {int(i["properties"]["seq"]) for i in receiver.accepted()}
    assert accepted == set(range(100)) - set(bad)
    rejected_alone = {
        int(r.items[0]["properties"]["seq"])
        for r in receiver.requests
        if r.status == 400 and r.items is not None and len(r.items) == 1
    }
    assert rejected_alone == set(bad)


def test_payload_too_large_splits_within_the_budget_and_the_rest_goes_on_later(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    # 413 is about size, not content: every item that fits arrives, over as many calls as the
    # budget (4 splits for 16 items) needs; none is rejected, as each fits on its own.
    [chunk] = chunks(1, 16)
    largest = max(len(one.payload) for one in chunk.items)
    receiver = receiver_factory(api_key=KEY, max_body_bytes=largest + 2)
    client = client_factory(receiver)
    report = deliver(client, [chunk])
    assert report.requests <= 1 + 2 * 4
    calls = 1
    while isolating := [r.chunk for r in report.results if r.status is ChunkStatus.ISOLATING]:
        report = deliver(client, isolating)
        assert ChunkStatus.REJECTED not in by_status(report)
        calls += 1
        assert calls <= 16
    assert len(receiver.accepted()) == 16


# --- redirects are a configuration fault --------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_transient_counted_and_not_retried(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory, status: int
) -> None:
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(status=status))
    client = client_factory(receiver, max_attempts=3)
    report = deliver(client, chunks(3, 10))
    assert by_status(report) == {ChunkStatus.TRANSIENT: set(range(30))}
    assert report.redirects == 3
    # Retrying in the budget cannot fix a wrong URL: one request per chunk.
    assert report.requests == len(receiver.requests) == 3
    for result in report.results:
        assert result.http_status == status
        assert result.error is not None
        assert "RAINDROP_API_URL" in result.error


class _Redirector(http.server.ThreadingHTTPServer):
    """What a wrong RAINDROP_API_URL may point at: a host answering 308 to somewhere else."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.requests = 0
        super().__init__(("127.0.0.1", 0), _RedirectHandler)


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    server: _Redirector

    def do_POST(self) -> None:
        self.server.requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(308)
        self.send_header("Location", f"{self.server.location}{self.path.removeprefix('/v1')}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirector(receiver_factory: ReceiverFactory) -> Iterator[tuple[_Redirector, RaindropReceiver]]:
    receiver = receiver_factory(api_key=KEY)
    server = _Redirector(receiver.url)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server, receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_redirect_is_never_followed_and_its_events_are_queued_for_retry(
    redirector: tuple[_Redirector, RaindropReceiver], client_factory: ClientFactory
) -> None:
    server, receiver = redirector
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    client = client_factory(url)
    forwarder = Forwarder(MappingConfig(), DeliveryConfig(raindrop_api_url=url), client)
    events = [se.chat(seq) for seq in range(4)]
    result = forwarder.forward(events, api_key=KEY, deadline=time.monotonic() + 20)
    # The key never travels to the host the redirect names.
    assert receiver.requests == []
    assert server.requests == 1
    assert result.delivery.redirects == 1
    assert set(result.failures) == set(range(4))
    assert {failure.reason for failure in result.failures.values()} == {FailureReason.TRANSIENT}
    [failure] = set(result.failures.values())
    assert failure.status == 308
    assert failure.error is not None
    assert receiver.url in failure.error


# --- the circuit breaker ------------------------------------------------------------------


def breaker(
    threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, cooldown_seconds=cooldown, clock=clock)


def assert_short_circuited(report: DeliveryReport, count: int) -> None:
    assert report.requests == 0
    assert report.short_circuited == count
    assert len(report.results) == count
    for result in report.results:
        assert result.status is ChunkStatus.TRANSIENT
        assert result.error == CIRCUIT_OPEN_ERROR
        assert result.attempts == 0


def test_server_errors_open_the_breaker_and_later_deliveries_send_nothing(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(status=503))
    # One chunk at a time, so the count is exact: the first chunk's three attempts open it, the
    # other chunks are answered without a request.
    client = client_factory(
        receiver, max_attempts=3, concurrency=1, breaker=breaker(3, cooldown=600)
    )
    first = deliver(client, chunks(3, 10))
    assert first.statuses == Counter({"503": 3})
    assert first.short_circuited == 2
    assert len(receiver.requests) == 3
    assert by_status(first) == {ChunkStatus.TRANSIENT: set(range(30))}
    assert client.breaker.state is BreakerState.OPEN

    later = deliver(client, chunks(5, 10))
    assert_short_circuited(later, 5)
    assert len(receiver.requests) == 3
    assert by_status(later) == {ChunkStatus.TRANSIENT: set(range(50))}


def _new_connections_since(receiver: RaindropReceiver, before: int) -> int:
    """Connections the receiver accepted since ``before``, not counting a marker made now.

    A hanging receiver records a request only once its delay is over, but accepts the
    connection at once. Every connection to a hung receiver is dropped on timeout, so any new
    request needs a new connection; connections are accepted in the order they were made, so
    once the marker's is in, any earlier one is too.
    """
    with httpx.Client(trust_env=False) as marker:
        assert marker.get(f"{receiver.origin}/marker").status_code == 404
    return receiver.connections_accepted - before - 1


def test_a_hanging_raindrop_opens_the_breaker_then_one_probe_per_cooldown(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(delay=1.0))
    clock = FakeClock()
    client = client_factory(
        receiver, max_attempts=1, read_timeout_seconds=0.1, breaker=breaker(2, 30, clock)
    )
    first = deliver(client, chunks(2, 10))
    assert first.statuses == Counter({"timeout": 2})
    assert client.breaker.state is BreakerState.OPEN
    assert receiver.wait_for_requests(2, timeout=10)
    connections = receiver.connections_accepted

    later = deliver(client, chunks(4, 10))
    assert_short_circuited(later, 4)
    assert _new_connections_since(receiver, connections) == 0

    # After the cool-down exactly one probe goes out; it hangs too, so the breaker opens again
    # and the other chunks are answered without a request either way.
    clock.advance(30)
    connections = receiver.connections_accepted
    probing = deliver(client, chunks(4, 10))
    assert probing.statuses == Counter({"timeout": 1})
    assert probing.short_circuited == 3
    assert by_status(probing) == {ChunkStatus.TRANSIENT: set(range(40))}
    assert client.breaker.state is BreakerState.OPEN
    assert _new_connections_since(receiver, connections) == 1


def test_a_failed_probe_reopens_and_a_successful_one_resumes_delivery(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(status=503))
    clock = FakeClock()
    client = client_factory(receiver, max_attempts=1, breaker=breaker(2, 30, clock))
    deliver(client, chunks(2, 10))
    assert client.breaker.state is BreakerState.OPEN
    assert len(receiver.requests) == 2

    clock.advance(30)
    probing = deliver(client, chunks(4, 10))
    assert probing.statuses == Counter({"503": 1})
    assert probing.short_circuited == 3
    assert len(receiver.requests) == 3
    assert client.breaker.state is BreakerState.OPEN

    receiver.heal()
    assert_short_circuited(deliver(client, chunks(4, 10)), 4)
    assert len(receiver.requests) == 3
    clock.advance(30)
    resumed = deliver(client, chunks(1, 10))
    assert by_status(resumed) == {ChunkStatus.DELIVERED: set(range(10))}
    assert client.breaker.state is BreakerState.CLOSED
    after = deliver(client, chunks(4, 10))
    assert by_status(after) == {ChunkStatus.DELIVERED: set(range(40))}
    assert after.requests == 4


def test_delivery_resumes_on_its_own_after_a_real_cooldown(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    cooldown = 0.3
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(status=503))
    client = client_factory(receiver, max_attempts=1, breaker=breaker(2, cooldown))
    deliver(client, chunks(2, 10))
    opened = time.monotonic()
    assert client.breaker.state is BreakerState.OPEN
    receiver.heal()
    # Keep delivering, as a warm function would; count what reaches Raindrop meanwhile.
    for _ in range(1_000):
        report = deliver(client, chunks(1, 10))
        if report.results[0].status is ChunkStatus.DELIVERED:
            break
        assert_short_circuited(report, 1)
        time.sleep(0.02)
    else:
        pytest.fail("delivery never resumed")
    assert time.monotonic() - opened >= cooldown
    # The outage's two requests and the probe: nothing else reached Raindrop.
    assert len(receiver.requests) == 3
    assert client.breaker.state is BreakerState.CLOSED


def test_too_many_requests_does_not_open_the_breaker(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(status=429, retry_after="0"))
    client = client_factory(receiver, max_attempts=1, breaker=breaker(2, cooldown=600))
    first = deliver(client, chunks(5, 10))
    assert first.statuses == Counter({"429": 5})
    assert client.breaker.state is BreakerState.CLOSED
    second = deliver(client, chunks(5, 10))
    assert second.short_circuited == 0
    assert len(receiver.requests) == 10


def test_refusals_do_not_open_the_breaker(
    receiver_factory: ReceiverFactory, client_factory: ClientFactory
) -> None:
    receiver = receiver_factory(api_key=KEY)
    receiver.outage(Fault(status=400))
    client = client_factory(receiver, breaker=breaker(1, cooldown=600))
    deliver(client, chunks(2, 4))
    assert client.breaker.state is BreakerState.CLOSED


def test_the_breaker_is_on_by_default(closed_port: int) -> None:
    # Connection refused counts as well: the settings' threshold (5) opens it.
    url = f"http://127.0.0.1:{closed_port}/v1"
    config = DeliveryConfig(raindrop_api_url=url, max_attempts=1, concurrency=1)
    client = HttpDelivery(config, RaindropTarget(url))
    try:
        report = deliver(client, chunks(8, 1))
        assert report.statuses == Counter({"connection_error": 5})
        assert report.short_circuited == 3
        assert client.breaker.state is BreakerState.OPEN
    finally:
        client.close()


def test_the_delivery_wait_ends_near_the_deadline_however_many_chunks_hang(
    receiver: RaindropReceiver,
) -> None:
    # Ten chunks, two workers, Raindrop answering after 3 s: the deadline (0.5 s) and one grace
    # (1 s) bound the wait; a grace per chunk would have made it about ten seconds.
    receiver.set_latency(3)
    config = DeliveryConfig(
        raindrop_api_url=receiver.url,
        concurrency=2,
        chunk_max_items=1,
        read_timeout_seconds=5,
        breaker_failure_threshold=0,
    )
    client = HttpDelivery(config, RaindropTarget(receiver.url))
    mapped = map_events(
        [se.chat(n) for n in range(10)], MappingConfig(enrich_from_context_traits=False)
    )
    session = client.session(api_key="rk", deadline=time.monotonic() + 0.5)
    for item in mapped.items:
        session.submit(Chunk(item.endpoint, (item,)))
    started = time.monotonic()
    report = session.wait()
    waited = time.monotonic() - started
    client.close()
    assert {result.status for result in report.results} <= {
        ChunkStatus.DEADLINE,
        ChunkStatus.TRANSIENT,
    }
    assert len(report.results) == 10
    # 0.5 s + one 1 s grace; ten graces would be 10 s. Bounded far from both, so a busy
    # machine cannot fail it and a grace per chunk cannot pass it.
    assert waited < 6.0
