"""The Raindrop stand-in, exercised over real sockets with httpx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.raindrop_items import ENDPOINTS, check_raindrop_items
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.support.auth import bearer

KEY = "rk-test"
TS = "2026-01-01T00:00:00Z"
EVENT = {
    "event_id": "trace-1",
    "user_id": "u1",
    "event": "ai_interaction",
    "timestamp": TS,
    "properties": {"latency_ms": 12},
    "ai_data": {"model": "gpt", "input": "hi", "output": "hello", "convo_id": "c1"},
    "attachments": [{"type": "text", "value": "doc", "role": "context"}],
}
SIGNAL = {
    "event_id": "trace-1",
    "signal_name": "thumbs_up",
    "signal_type": "feedback",
    "timestamp": TS,
    "properties": {"comment": "great"},
    "sentiment": "POSITIVE",
}
IDENTIFY = {"user_id": "u1", "traits": {"plan": "pro", "seats": 3, "beta": True}}
SAMPLES = {"events/track": EVENT, "signals/track": SIGNAL, "users/identify": IDENTIFY}

Factory = Callable[..., RaindropReceiver]


@pytest.fixture
def rd(receiver_factory: Factory) -> RaindropReceiver:
    return receiver_factory(api_key=KEY)


@pytest.fixture
def client(rd: RaindropReceiver) -> Iterator[httpx.Client]:
    with http(rd.url, headers=bearer(KEY), timeout=5.0) as c:
        yield c


def http(base_url: str = "", **kwargs: Any) -> httpx.Client:
    # Plain HTTP to 127.0.0.1 only: skipping the CA bundle load saves ~0.1 s per client.
    return httpx.Client(base_url=base_url, trust_env=False, verify=False, **kwargs)


def post(client: httpx.Client, endpoint: str, items: Any, **kwargs: Any) -> httpx.Response:
    return client.post(f"/{endpoint}", json=items, **kwargs)


def receiver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("raindrop-receiver")]


# Normal behaviour


def test_partial_events_and_traces_take_one_object(receiver_factory: Factory) -> None:
    # Raindrop's SDK posts one object to these two (the mirror passes them on).
    rd = receiver_factory(api_key=KEY, validator=check_raindrop_items)
    partial = {"event_id": "e1", "ai_data": {"output": "o"}, "is_pending": False}
    with http(rd.url) as client:
        headers = {"authorization": f"Bearer {KEY}"}
        assert client.post("/events/track_partial", json=partial, headers=headers).is_success
        assert client.post("/traces", json={"resourceSpans": []}, headers=headers).is_success
        refused = client.post("/events/track_partial", json=[partial], headers=headers)
        assert refused.status_code == 400
    assert rd.accepted("events/track_partial") == [partial]
    assert rd.accepted("traces") == [{"resourceSpans": []}]


def test_accepts_and_records_each_endpoint(receiver_factory: Factory) -> None:
    seen: list[tuple[str, list[dict[str, Any]]]] = []
    rd = receiver_factory(api_key=KEY, on_accept=lambda e, items: seen.append((e, items)))
    with http(rd.url) as client:
        for endpoint, item in SAMPLES.items():
            response = client.post(
                f"/{endpoint}",
                json=[item, item],
                headers={"authorization": f"Bearer {KEY}", "X-Raindrop-Project-Id": "proj"},
            )
            assert response.status_code == 200
            assert response.json() == {"ok": True}
            assert response.headers["content-type"] == "application/json"

    assert rd.url == f"http://127.0.0.1:{rd.port}/v1"
    for endpoint, item in SAMPLES.items():
        assert rd.accepted(endpoint) == [item, item]
    assert len(rd.accepted()) == 6
    assert [e for e, _ in seen] == list(SAMPLES)
    assert rd.wait_for_items(6, timeout=0.1)
    assert rd.wait_for_items(2, endpoint="users/identify", timeout=0.1)

    first = rd.requests[0]
    assert (first.method, first.path, first.endpoint) == ("POST", "/v1/events/track", ENDPOINTS[0])
    assert first.status == 200
    assert first.accepted
    assert first.fault is None
    assert first.items == [EVENT, EVENT]
    assert json.loads(first.body) == [EVENT, EVENT]
    assert first.headers["AUTHORIZATION"] == f"Bearer {KEY}"
    assert first.headers["x-raindrop-project-id"] == "proj"
    assert "Content-Type" in first.headers
    assert rd.requests_to("signals/track")[0].items == [SIGNAL, SIGNAL]


def test_wait_for_items_blocks_until_items_arrive(
    rd: RaindropReceiver, client: httpx.Client
) -> None:
    assert not rd.wait_for_items(1, timeout=0.05)
    timer = threading.Timer(0.1, post, (client, "events/track", [EVENT]))
    timer.start()
    started = time.monotonic()
    assert rd.wait_for_items(1, endpoint="events/track", timeout=5)
    assert time.monotonic() - started < 2
    timer.join()
    assert rd.wait_for_requests(1, timeout=0.1)
    assert not rd.wait_for_items(1, endpoint="users/identify", timeout=0.05)


def test_reset_forgets_recordings_and_faults(rd: RaindropReceiver, client: httpx.Client) -> None:
    post(client, "events/track", [EVENT])
    rd.inject(Fault(503), Fault(503))
    rd.outage(Fault(500))
    rd.reset()
    assert rd.requests == []
    assert rd.accepted() == []
    assert rd.pending_faults == 0
    assert post(client, "events/track", [EVENT]).status_code == 200
    assert len(rd.requests) == 1


def test_unknown_endpoint_names_are_refused(rd: RaindropReceiver) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        rd.inject(Fault(), endpoint="/events/track")
    with pytest.raises(ValueError, match="unknown endpoint"):
        rd.accepted("events")


# Refusals


def test_missing_or_wrong_key_is_401(rd: RaindropReceiver) -> None:
    with http(rd.url) as anonymous:
        missing = post(anonymous, "events/track", [EVENT])
        wrong = post(anonymous, "events/track", [EVENT], headers={"Authorization": "Bearer nope"})
        basic = post(anonymous, "events/track", [EVENT], headers={"Authorization": f"Basic {KEY}"})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert "error" in response.json()
        assert response.headers["www-authenticate"] == "Bearer"
    assert rd.accepted() == []
    assert [r.status for r in rd.requests] == [401, 401, 401]
    assert not any(r.accepted for r in rd.requests)
    assert rd.requests[0].items == [EVENT]  # what was sent, though refused


def test_no_key_configured_accepts_anyone(receiver_factory: Factory) -> None:
    rd = receiver_factory()
    with http(rd.url) as anonymous:
        assert post(anonymous, "users/identify", [IDENTIFY]).status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"user_id": "u1"}', "must be a JSON array"),
        (b"[{", "not valid JSON"),
        (b'[{"x": NaN}]', "not valid JSON"),
        (b"[]", "empty array"),
        (b'[{"user_id": "u1"}, 3]', "item 1 is not a JSON object"),
        (b'"text"', "must be a JSON array"),
    ],
)
def test_bodies_that_are_not_arrays_of_objects_are_400(
    rd: RaindropReceiver, client: httpx.Client, content: bytes, message: str
) -> None:
    response = client.post(
        "/users/identify", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert rd.accepted() == []
    assert rd.requests[0].body == content


def test_oversized_body_is_413(receiver_factory: Factory) -> None:
    rd = receiver_factory(max_body_bytes=200)
    with http(rd.url) as client:
        small = post(client, "users/identify", [IDENTIFY])
        big = post(client, "users/identify", [IDENTIFY] * 10)
        # The connection stays usable after a 413: the body was read, framing is intact.
        after = post(client, "users/identify", [IDENTIFY])
    assert (small.status_code, big.status_code, after.status_code) == (200, 413, 200)
    assert rd.accepted() == [IDENTIFY, IDENTIFY]
    assert rd.connections_accepted == 1


def test_wrong_content_type_is_415(rd: RaindropReceiver, client: httpx.Client) -> None:
    response = client.post(
        "/events/track", content=json.dumps([EVENT]), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    charset = client.post(
        "/events/track",
        content=json.dumps([EVENT]),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200


def test_unknown_path_is_404_and_wrong_method_405(
    rd: RaindropReceiver, client: httpx.Client
) -> None:
    assert client.post("/events", json=[EVENT]).status_code == 404
    assert client.post("/v1/events/track", json=[EVENT]).status_code == 404
    assert client.get("/events/track").status_code == 405
    head = client.head("/nowhere")
    assert head.status_code == 404
    assert head.content == b""
    # Query strings do not change routing.
    assert client.post("/events/track?x=1", json=[EVENT]).status_code == 200
    assert [r.endpoint for r in rd.requests] == [None, None, "events/track", None, "events/track"]
    assert rd.wait_for_requests(5, timeout=0)
    assert rd.wait_for_requests(2, endpoint="events/track", timeout=0)
    assert not rd.wait_for_requests(3, endpoint="events/track", timeout=0)


def test_validator_rejection_is_400(receiver_factory: Factory) -> None:
    calls: list[tuple[str, list[Any]]] = []

    def validator(endpoint: str, items: list[Any]) -> str | None:
        calls.append((endpoint, items))
        return "no anonymous users" if items[0]["user_id"] == "anon" else None

    rd = receiver_factory(validator=validator)
    with http(rd.url) as client:
        rejected = post(client, "users/identify", [{"user_id": "anon", "traits": {}}])
        ok = post(client, "users/identify", [IDENTIFY])
    assert rejected.status_code == 400
    assert rejected.json() == {"error": "no anonymous users"}
    assert ok.status_code == 200
    assert rd.accepted() == [IDENTIFY]
    assert calls[0] == ("users/identify", [{"user_id": "anon", "traits": {}}])
    assert rd.requests[0].items == [{"user_id": "anon", "traits": {}}]


def test_a_raising_validator_is_reported_as_500(receiver_factory: Factory) -> None:
    def broken(endpoint: str, items: list[Any]) -> str | None:
        raise KeyError(endpoint)

    rd = receiver_factory(validator=broken)
    with http(rd.url) as client:
        response = post(client, "users/identify", [IDENTIFY])
    assert response.status_code == 500
    assert "KeyError" in response.json()["error"]


def test_on_accept_errors_are_kept_and_do_not_change_the_answer(receiver_factory: Factory) -> None:
    def explode(endpoint: str, items: list[dict[str, Any]]) -> None:
        raise RuntimeError("callback bug")

    rd = receiver_factory(on_accept=explode)
    with http(rd.url) as client:
        assert post(client, "users/identify", [IDENTIFY]).status_code == 200
    assert rd.accepted() == [IDENTIFY]
    assert [str(e) for e in rd.callback_errors] == ["callback bug"]


# The Raindrop item rules (docs/wire.md §2.2)


def test_check_raindrop_items_accepts_the_documented_shapes() -> None:
    minimal_event = {"event_id": "e", "user_id": "u", "event": "x", "timestamp": "2026-01-01"}
    for endpoint, item in SAMPLES.items():
        assert check_raindrop_items(endpoint, [item]) is None
    assert check_raindrop_items("events/track", [minimal_event]) is None
    edit = {**SIGNAL, "signal_type": "edit", "properties": {"after": "new"}}
    assert check_raindrop_items("signals/track", [edit]) is None


@pytest.mark.parametrize(
    ("endpoint", "item", "problem"),
    [
        ("events/track", {**EVENT, "user_id": ""}, "user_id must be a non-empty string"),
        ("events/track", {**EVENT, "timestamp": "yesterday"}, "timestamp must be an ISO 8601"),
        ("events/track", {**EVENT, "properties": []}, "properties must be an object"),
        ("events/track", {**EVENT, "ai_data": {"input": "", "output": ""}}, "non-empty input"),
        ("events/track", {**EVENT, "ai_data": {"input": ["m"]}}, "ai_data.input must be"),
        ("events/track", {**EVENT, "attachments": [{"type": "pdf", "value": "x"}]}, ".type"),
        ("signals/track", {**SIGNAL, "properties": {}}, "properties.comment"),
        ("signals/track", {**SIGNAL, "signal_type": "vote"}, "signal_type must be one of"),
        ("signals/track", {**SIGNAL, "sentiment": "positive"}, "sentiment must be one of"),
        ("signals/track", {**SIGNAL, "event_id": None}, "event_id must be"),
        (
            "users/identify",
            {"user_id": "u", "traits": {"address": {"city": "x"}}},
            "traits.address",
        ),
        ("users/identify", {"user_id": "u", "traits": {"gone": None}}, "traits.gone"),
    ],
)
def test_check_raindrop_items_names_the_first_problem(
    endpoint: str, item: dict[str, Any], problem: str
) -> None:
    message = check_raindrop_items(endpoint, [SAMPLES[endpoint], item])
    assert message is not None
    assert message.startswith("item 1: ")
    assert problem in message


# Faults


def test_injected_status_faults_are_consumed_in_order(
    rd: RaindropReceiver, client: httpx.Client
) -> None:
    rd.inject(Fault(status=429, retry_after="7"), Fault(status=503, body="upstream down"))
    assert rd.pending_faults == 2
    first = post(client, "events/track", [EVENT])
    second = post(client, "events/track", [EVENT])
    third = post(client, "events/track", [EVENT])
    assert first.status_code == 429
    assert first.headers["retry-after"] == "7"
    assert first.json() == {"error": "Too Many Requests"}
    assert second.status_code == 503
    assert "retry-after" not in second.headers
    assert second.text == "upstream down"
    assert third.status_code == 200
    assert rd.accepted() == [EVENT]
    assert [r.status for r in rd.requests] == [429, 503, 200]
    assert [r.fault is not None for r in rd.requests] == [True, True, False]
    assert rd.requests[0].items == [EVENT]  # recorded, but not accepted
    assert rd.pending_faults == 0


def test_faults_for_one_endpoint_leave_the_others_alone(
    rd: RaindropReceiver, client: httpx.Client
) -> None:
    rd.inject(Fault(status=500), endpoint="signals/track")
    assert post(client, "events/track", [EVENT]).status_code == 200
    assert post(client, "signals/track", [SIGNAL]).status_code == 500
    assert post(client, "signals/track", [SIGNAL]).status_code == 200


def test_faults_come_before_authentication(rd: RaindropReceiver) -> None:
    rd.inject(Fault(status=502))
    with http(rd.url) as anonymous:
        assert post(anonymous, "events/track", [EVENT]).status_code == 502
        assert post(anonymous, "events/track", [EVENT]).status_code == 401


def test_delay_fault_holds_the_answer(rd: RaindropReceiver, client: httpx.Client) -> None:
    rd.inject(Fault(status=504, delay=0.2))
    started = time.monotonic()
    response = post(client, "events/track", [EVENT])
    assert response.status_code == 504
    assert time.monotonic() - started >= 0.2


def test_delay_beyond_the_client_timeout_is_a_read_timeout(
    rd: RaindropReceiver, client: httpx.Client
) -> None:
    rd.inject(Fault(status=200, delay=30))
    with pytest.raises(httpx.ReadTimeout):
        post(client, "events/track", [EVENT], timeout=0.2)
    started = time.monotonic()
    rd.stop()  # does not wait for the simulated 30 s
    assert time.monotonic() - started < 1.5
    assert rd.accepted() == []


def test_dropped_connection_gives_no_response(rd: RaindropReceiver, client: httpx.Client) -> None:
    rd.inject(Fault(drop=True), Fault(drop=True, delay=0.1))
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, "events/track", [EVENT])
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, "events/track", [EVENT])
    assert post(client, "events/track", [EVENT]).status_code == 200
    assert [r.status for r in rd.requests] == [None, None, 200]
    assert rd.requests[0].items == [EVENT]
    assert rd.accepted() == [EVENT]
    assert rd.connections_accepted == 3  # each drop cost the client its connection


def test_outage_until_heal(rd: RaindropReceiver, client: httpx.Client) -> None:
    rd.inject(Fault(status=429))
    rd.outage()
    statuses = [post(client, endpoint, [item]).status_code for endpoint, item in SAMPLES.items()]
    assert statuses == [503, 503, 503]
    assert rd.pending_faults == 1  # the outage takes precedence; queued faults wait
    rd.heal()
    assert post(client, "events/track", [EVENT]).status_code == 429
    assert post(client, "events/track", [EVENT]).status_code == 200
    assert rd.accepted() == [EVENT]


def test_outage_of_one_endpoint_with_a_custom_fault(
    rd: RaindropReceiver, client: httpx.Client
) -> None:
    rd.outage(Fault(status=500, retry_after="1"), endpoint="users/identify")
    response = post(client, "users/identify", [IDENTIFY])
    assert (response.status_code, response.headers["retry-after"]) == (500, "1")
    assert post(client, "events/track", [EVENT]).status_code == 200


def test_latency_delays_normal_answers(rd: RaindropReceiver, client: httpx.Client) -> None:
    rd.set_latency(0.15)
    started = time.monotonic()
    assert post(client, "events/track", [EVENT]).status_code == 200
    assert time.monotonic() - started >= 0.15
    rd.set_latency(0)
    started = time.monotonic()
    assert post(client, "events/track", [EVENT]).status_code == 200
    assert time.monotonic() - started < 0.15


# Connections and concurrency


def test_keep_alive_reuses_one_connection(rd: RaindropReceiver, client: httpx.Client) -> None:
    for _ in range(3):
        assert post(client, "events/track", [EVENT]).status_code == 200
    assert rd.connections_accepted == 1
    assert {r.connection for r in rd.requests} == {1}
    assert all("close" not in r.headers.get("connection", "") for r in rd.requests)


def test_chunked_request_bodies_are_read(rd: RaindropReceiver, client: httpx.Client) -> None:
    payload = json.dumps([EVENT, EVENT]).encode()

    def chunks() -> Iterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = client.post(
        "/events/track", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert rd.requests[0].headers["transfer-encoding"] == "chunked"
    assert rd.accepted() == [EVENT, EVENT]
    assert post(client, "events/track", [EVENT]).status_code == 200  # framing intact


def test_forty_concurrent_requests_are_served_in_parallel(receiver_factory: Factory) -> None:
    # Each request waits in the receiver until all forty are in at once: served one at a time,
    # the first would wait in vain and the barrier break. No clock is read.
    together = threading.Barrier(40, timeout=30)

    def all_at_once(endpoint: str, items: list[Any]) -> str | None:
        together.wait()
        return None

    rd = receiver_factory(api_key=KEY, validator=all_at_once)
    limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
    with (
        http(rd.url, headers=bearer(KEY), limits=limits) as client,
        ThreadPoolExecutor(max_workers=40) as pool,
    ):
        items = [{**EVENT, "event_id": f"e{i}"} for i in range(40)]
        responses = list(pool.map(lambda item: post(client, "events/track", [item]), items))
    assert [r.status_code for r in responses] == [200] * 40
    assert not together.broken
    assert sorted(i["event_id"] for i in rd.accepted()) == sorted(i["event_id"] for i in items)


def test_stop_closes_everything_quickly(receiver_factory: Factory) -> None:
    baseline = len(receiver_threads())
    rd = receiver_factory(api_key=KEY)
    with http(rd.url, headers=bearer(KEY)) as client:
        assert post(client, "events/track", [EVENT]).status_code == 200
        # An idle keep-alive connection parks a handler thread on a blocking read.
        assert len(receiver_threads()) == baseline + 2
        started = time.monotonic()
        rd.stop()
        assert time.monotonic() - started < 0.5
        assert len(receiver_threads()) == baseline
        with pytest.raises(httpx.TransportError):
            post(client, "events/track", [EVENT])
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", rd.port))
    rd.stop()  # idempotent
    with pytest.raises(RuntimeError):
        rd.start()


def test_context_manager_starts_and_stops() -> None:
    with RaindropReceiver() as rd:
        with http() as client:
            assert client.post(f"{rd.url}/users/identify", json=[IDENTIFY]).status_code == 200
        port = rd.port
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
    assert not RaindropReceiver().connections_accepted


def test_negative_chunk_size_is_refused_not_read_forever(rd: RaindropReceiver) -> None:
    # int(..., 16) accepts a sign; a negative size must not become an unbounded read.
    with socket.create_connection(("127.0.0.1", rd.port), timeout=5) as conn:
        conn.sendall(
            b"POST /v1/events/track HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"
        )
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"invalid chunk size" in answer
