"""The webhook's guarantees on Raindrop's SDK route, through the real handler (moto over HTTP,
the Raindrop and Segment stand-ins): only the Raindrop key, the project allow-list, redaction
of what Raindrop, Segment and the queues get, the request's own project, one unreadable item
costing only itself, and content kept whole on the queue while Raindrop is down."""

from __future__ import annotations

import json
from typing import Any

import pytest

from segment_raindrop.core.codec import MAX_EVENT_DEPTH
from segment_raindrop.core.projects import PROJECT_HEADER
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.queues import peek_queue
from tests.support.mirror import MirrorEnv, env, track, use_mirror_runtime
from tests.support.queues import fast, fresh_runtimes, peek_dlq, run_retry_worker

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes"]  # fixtures, imported for use by name


def mirror_settings(env: MirrorEnv, **changes: Any) -> None:
    env.aws.configure(mirror={**env.aws.config.mirror.model_dump(), **changes})


# --- who may post -------------------------------------------------------------------------


def test_the_webhook_token_is_refused_unless_allowed(env: MirrorEnv) -> None:
    # The token sits in Segment's destination settings: by default it opens nothing here.
    refused = env.post(
        "users/identify", [{"user_id": "u", "traits": {}}], key=env.aws.webhook_token
    )
    assert refused.status == 401
    assert env.receiver.requests == []
    assert env.segment.batches == []

    mirror_settings(env, accepts_webhook_token=True)
    accepted = env.post("events/track", [track(2)], key=env.aws.webhook_token)
    assert accepted.status == 200
    # Raindrop still gets the stored Raindrop key, never the token.
    [request] = env.receiver.requests
    assert request.headers["Authorization"] == f"Bearer {env.aws.raindrop_api_key}"


def test_a_project_off_the_allow_list_is_not_found(env: MirrorEnv) -> None:
    env.aws.configure(delivery={"projects": ["prod-app"]})
    answer = env.post("events/track", [track(1)], headers={PROJECT_HEADER: "made-up"})
    assert answer.status == 404
    assert env.receiver.requests == []
    allowed = env.post("events/track", [track(2)], headers={PROJECT_HEADER: "prod-app"})
    assert allowed.status == 200
    # No header is Raindrop's Production project, which always exists.
    assert env.post("events/track", [track(3)]).status == 200
    projects = [request.headers.get(PROJECT_HEADER) for request in env.receiver.requests]
    assert projects == ["prod-app", None]


@pytest.mark.parametrize("header", [None, "default", ""])
def test_without_a_project_the_configured_one_is_not_sent(
    env: MirrorEnv, header: str | None
) -> None:
    # The webhook's RAINDROP_PROJECT_ID is for Segment's events; an SDK request that names no
    # project (or Production) goes to Production, as it would going to Raindrop directly.
    env.aws.configure(delivery={"project_id": "webhook-project"})
    headers = {} if header is None else {PROJECT_HEADER: header}
    assert env.post("events/track", [track(1)], headers=headers).status == 200
    [request] = env.receiver.requests
    assert request.headers.get(PROJECT_HEADER) is None


# --- redaction ----------------------------------------------------------------------------

SECRETS_IN_TEXT = (
    "mail ada@example.com, card 4111 1111 1111 1111, ssn 123-45-6789, "
    "api_key=sk_live_abcdefghijklmnop1234 and password: hunter2"
)


def _clear_text_in(text: str) -> list[str]:
    return [
        secret
        for secret in ("ada@example.com", "4111 1111 1111 1111", "123-45-6789", "hunter2")
        if secret in text
    ]


def test_redaction_applies_to_raindrop_segment_and_the_queue(env: MirrorEnv) -> None:
    env.aws.configure(mapping={"redact_pii": True, "redact_keys": ["internal_notes"]})
    env.segment.outage(Fault(status=503))  # so the Segment copies wait on the queue
    item = track(1, properties={"internal_notes": "vip", "note": SECRETS_IN_TEXT})
    item["ai_data"]["input"] = SECRETS_IN_TEXT
    signal = {"event_id": "ev-1", "signal_name": "thumbs_down", "timestamp": "2026-12-06T10:00:01Z",
              "properties": {"comment": SECRETS_IN_TEXT}}  # fmt: skip
    assert env.post("events/track", [item]).status == 200
    assert env.post("signals/track", [signal]).status == 200

    sent = json.dumps(env.receiver.accepted(), ensure_ascii=False)
    assert _clear_text_in(sent) == []
    assert "internal_notes" not in sent
    # The ids still link and route.
    assert [i["event_id"] for i in env.receiver.accepted()] == ["ev-1", "ev-1"]
    queued = json.dumps(peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url))
    assert _clear_text_in(queued) == []
    assert "ev-1" in queued

    env.segment.heal()
    assert run_retry_worker(env.aws).failed == 0
    mirrored = json.dumps(env.segment.accepted_events(), ensure_ascii=False)
    assert len(env.segment.accepted_events()) == 2
    assert _clear_text_in(mirrored) == []
    assert "<REDACTED_EMAIL>" in mirrored


# --- one item cannot sink the others ------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_an_item_nested_too_deeply_is_dead_lettered_alone(env: MirrorEnv) -> None:
    good = [json.dumps(track(1)), json.dumps(track(2))]
    deep = f'{{"event_id": "ev-deep", "properties": {{"x": {nested(990)}}}}}'
    body = f"[{good[0]}, {deep}, {good[1]}]".encode()
    answer = env.post("events/track", None, raw=body)
    assert answer.status == 200, answer.body
    assert (answer.body["forwarded"], answer.body["dead_lettered"]) == (2, 1)
    assert [i["event_id"] for i in env.receiver.accepted("events/track")] == ["ev-1", "ev-2"]
    [message] = peek_dlq(env.aws)
    assert message.reason == "invalid"
    assert message.error is not None
    assert "nested too deeply" in message.error
    # Kept as sent, as its raw text.
    assert message.events[0].startswith('{"event_id": "ev-deep"')
    assert {e["properties"]["trace_id"] for e in env.segment.accepted_events()} == {"ev-1", "ev-2"}


def test_an_item_at_the_depth_limit_goes_through(env: MirrorEnv) -> None:
    item = track(1, properties={"x": json.loads(nested(MAX_EVENT_DEPTH - 3))})
    assert env.post("events/track", [item]).status == 200
    assert [i["event_id"] for i in env.receiver.accepted("events/track")] == ["ev-1"]


# --- content kept whole while Raindrop is down ---------------------------------------------


def test_a_large_cjk_item_waits_whole_on_the_queue_and_is_delivered_after_recovery(
    env: MirrorEnv,
) -> None:
    # 576 KB of UTF-8: as ASCII-escaped JSON it was 1.15 MB, over SQS's 1 MiB, and only a
    # summary without the event_id was queued.
    prompt = "請問如何把儀表板分享給外部的合作夥伴" * 10_700 + "😀" * 1_000
    item = track(7, ai_data={"model": "m", "input": prompt, "output": "好的"})
    assert len(json.dumps(item, ensure_ascii=False).encode()) > 576_000
    env.receiver.outage(Fault(status=503))
    answer = env.post("events/track", [item])
    assert answer.status == 200
    assert answer.body["queued"] == 1
    [body] = peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url)
    assert body["omitted"] == []
    assert body["events"] == [item]

    env.receiver.heal()
    # Reading and checking a message this large again takes a while on a loaded machine: the
    # suite's 2 s delivery budget could end before the first request (a fresh clone's did).
    env.aws.configure(delivery={"budget_seconds": 30})
    assert run_retry_worker(env.aws).failed == 0
    [delivered] = env.receiver.accepted("events/track")
    assert delivered == item
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0
    assert env.aws.queue_depth(env.aws.resources.dlq_url) == 0


def test_an_item_no_queue_message_can_hold_is_answered_503_not_summarised(
    env: MirrorEnv,
) -> None:
    # Over 1 MiB even in UTF-8: the SDK still holds it whole, so it is asked to resend rather
    # than told 200 over a summary nothing can deliver.
    item = track(8, ai_data={"model": "m", "input": "x" * 1_100_000, "output": "y"})
    env.receiver.outage(Fault(status=503))
    answer = env.post("events/track", [item, track(9)])
    assert answer.status == 503
    assert answer.body["unqueued"] == 1
    assert env.aws.queue_depth(env.aws.resources.dlq_url) == 0
    [body] = peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url)
    assert [event["event_id"] for event in body["events"]] == ["ev-9"]


# --- copies Segment can always take ----------------------------------------------------------


def test_a_number_json_cannot_write_reaches_segment_as_null(env: MirrorEnv) -> None:
    body = json.dumps([track(1)]).replace('"latency_ms": 1', '"latency_ms": 1e400')
    answer = env.post("events/track", None, raw=body.encode())
    assert answer.status == 200, answer.body
    assert answer.body["mirrored"] == 1
    # Raindrop gets the body as sent; Segment, which would refuse "Infinity", a null.
    [request] = env.receiver.requests
    assert b"1e400" in request.body
    [event] = env.segment.accepted_events()
    assert event["properties"]["latency_ms"] is None
    assert env.aws.queue_depth(env.aws.resources.retry_queue_url) == 0


def test_a_copy_too_large_for_its_numbers_reaches_segment_cut_to_its_ids(env: MirrorEnv) -> None:
    item = track(1, properties={f"n{i}": 123456789.123 for i in range(3_000)})
    answer = env.post("events/track", [item])
    assert answer.status == 200
    [event] = env.segment.accepted_events()
    assert event["properties"]["trace_id"] == "ev-1"
    assert "truncated" in event["properties"]
    assert env.aws.queue_depth(env.aws.resources.dlq_url) == 0


# --- one project's outage is its own ---------------------------------------------------------


def test_a_failing_project_does_not_hold_back_the_others(env: MirrorEnv) -> None:
    # Its breaker opens (threshold 5 failures); the other project's requests still go out.
    env.aws.configure(delivery={"breaker_failure_threshold": 2, "max_attempts": 1})
    env.receiver.project_outage("down-app")
    for n in range(4):
        answer = env.post("events/track", [track(n)], headers={PROJECT_HEADER: "down-app"})
        assert answer.status == 200
        assert answer.body["queued"] == 1
    tried = len(env.receiver.requests)
    assert tried == 2  # then the breaker held the rest back without a request
    for n in range(10, 13):
        answer = env.post("events/track", [track(n)], headers={PROJECT_HEADER: "up-app"})
        assert (answer.status, answer.body["forwarded"]) == (200, 1)
    assert [i["event_id"] for i in env.receiver.accepted("events/track")] == [
        "ev-10",
        "ev-11",
        "ev-12",
    ]


# --- spans the SDK exports as protobuf ---------------------------------------------------------

SPANS = b"\n\x0b\n\tprotobuf spans \xff\x00 not JSON"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def test_protobuf_spans_wait_on_the_queue_and_go_byte_for_byte(env: MirrorEnv) -> None:
    env.receiver.outage(Fault(status=503))
    answer = env.post("traces", None, raw=SPANS, headers=PROTOBUF)
    assert answer.status == 200, answer.body
    assert answer.body["queued"] == 1
    [body] = peek_queue(env.aws.sqs, env.aws.resources.retry_queue_url)
    assert (body["kind"], body["endpoint"]) == ("raindrop_bytes", "traces")

    env.receiver.heal()
    # Reading and checking a message this large again takes a while on a loaded machine: the
    # suite's 2 s delivery budget could end before the first request (a fresh clone's did).
    env.aws.configure(delivery={"budget_seconds": 30})
    assert run_retry_worker(env.aws).failed == 0
    delivered = [r for r in env.receiver.requests_to("traces") if r.status == 200]
    assert [r.body for r in delivered] == [SPANS]
    assert delivered[0].headers["Content-Type"] == "application/x-protobuf"
    assert env.segment.batches == []  # spans are never mirrored


def test_protobuf_spans_are_refused_while_redacting(env: MirrorEnv) -> None:
    # They cannot be read, so not redacted: refused rather than passed on in clear.
    env.aws.configure(mapping={"redact_pii": True})
    answer = env.post("traces", None, raw=SPANS, headers=PROTOBUF)
    assert answer.status == 415
    assert env.receiver.requests == []


# --- a Segment copy that can be neither sent nor queued -------------------------------------


def _sqs_refused(env: MirrorEnv, closed_port: int) -> None:
    """The mirror's SQS client gets connection refused (Secrets Manager and the table work)."""
    use_mirror_runtime(env.aws, sqs_endpoint_url=f"http://127.0.0.1:{closed_port}")


SIGNAL = {
    "event_id": "ev-1",
    "signal_name": "thumbs_down",
    "signal_type": "feedback",
    "timestamp": "2026-11-29T10:00:00Z",
    "sentiment": "NEGATIVE",
    "properties": {"comment": "wrong"},
}


def test_an_ai_event_whose_copy_is_not_kept_is_asked_for_again(
    env: MirrorEnv, closed_port: int
) -> None:
    # Segment down and SQS refusing: the copy has nowhere to go. Raindrop has the event, and
    # takes it again without a second copy, so the SDK (which still holds it) is asked to resend.
    env.segment.outage()
    _sqs_refused(env, closed_port)
    answer = env.post("events/track", [track(1)])
    assert answer.status == 503
    assert answer.body["mirror_unkept"] == 1
    assert answer.body["forwarded"] == 1
    assert env.segment.accepted_events() == []

    # The SDK's resend, once Segment answers: the copy arrives, under the same messageId.
    env.segment.heal()
    assert env.post("events/track", [track(1)]).status == 200
    [copy] = env.segment.accepted_events()
    assert copy["properties"]["trace_id"] == "ev-1"
    assert [len(request.items or []) for request in env.receiver.requests] == [1, 1]


def test_a_signal_whose_copy_is_not_kept_is_not_sent_twice_but_reported(
    env: MirrorEnv, closed_port: int
) -> None:
    # A resend would give Raindrop the signal twice: 200, with what was not kept in the answer.
    env.segment.outage()
    _sqs_refused(env, closed_port)
    answer = env.post("signals/track", [SIGNAL])
    assert answer.status == 200
    assert answer.body["mirror_unkept"] == 1
    assert answer.body["forwarded"] == 1
    [request] = env.receiver.requests
    assert request.status == 200
