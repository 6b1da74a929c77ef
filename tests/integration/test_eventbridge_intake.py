"""The EventBridge intake end to end on moto, over HTTP: Segment events put on a partner event
source with ``PutPartnerEvents`` (as Segment's Amazon EventBridge destination sends them), moto's
EventBridge applying the stack's rule pattern and delivering envelopes to the intake queue, the
consumer (``handlers.eventbridge``) driven by the emulated SQS event source, and the real
Raindrop stand-in. Every test checks what Raindrop received and what each queue holds.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from segment_raindrop.core.contract import EVENTBRIDGE_MAX_RECEIVES
from segment_raindrop.core.jobs import JobKind
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.queues import peek_messages
from tests.support.eventbridge import OTHER, SOURCE, Intake, intake
from tests.support.queues import (
    assert_delivered_once,
    bodies,
    fast,
    fresh_runtimes,
    make_replayer,
    peek_dlq,
    run_retry_worker,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["fast", "fresh_runtimes", "intake", "make_replayer"]  # fixtures, used by name

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _recorded_segment_events() -> list[dict[str, Any]]:
    # Six events recorded from Segment: three AI tracks, an ordinary track, a page, an identify.
    return list(json.loads((FIXTURES / "actions_batch.json").read_text()))


def test_recorded_segment_events_reach_raindrop_and_the_rule_filters_the_rest(
    intake: Intake, receiver: Any
) -> None:
    events = _recorded_segment_events()
    intake.put(events)

    # The rule kept only what the mapping forwards: not the ordinary track, not the page.
    assert intake.depth() == 4
    run = intake.run()

    assert (run.received, run.failed, run.deleted) == (4, 0, 4)
    tracks = receiver.accepted("events/track")
    assert sorted(item["event"] for item in tracks) == ["AI Tool Called", "ai_interaction"]
    assert len(receiver.accepted("signals/track")) == 1
    identified = {item["user_id"] for item in receiver.accepted("users/identify")}
    assert identified, "the identify (and context traits) reach users/identify"
    assert intake.depth() == 0
    assert intake.aws.queue_depth(intake.aws.resources.retry_queue_url) == 0
    assert intake.aws.queue_depth(intake.aws.resources.dlq_url) == 0


def test_each_partner_source_goes_to_its_project(intake: Intake, receiver: Any) -> None:
    intake.put([se.chat(1)], source=SOURCE)
    intake.put([se.chat(2)], source=OTHER)

    assert intake.run().failed == 0

    projects = Counter(
        request.headers.get("X-Raindrop-Project-Id")
        for request in receiver.requests_to("events/track")
    )
    assert projects == Counter({None: 1, "team-b": 1})  # Production: no header
    assert_delivered_once(receiver, ["trace-1", "trace-2"])


def test_a_raindrop_outage_queues_the_events_for_the_retry_worker(
    intake: Intake, receiver: Any
) -> None:
    intake.put([se.chat(1), se.chat(2)])
    receiver.outage(Fault(status=503))

    run = intake.run()

    # Durably queued: the records are done with, the events wait on the retry queue.
    assert (run.received, run.failed) == (2, 0)
    assert intake.depth() == 0
    queued = bodies(peek_messages(intake.aws.sqs, intake.aws.resources.retry_queue_url))
    assert [event["properties"]["trace_id"] for m in queued for event in m.events] == [
        "trace-1",
        "trace-2",
    ]
    assert {m.source for m in queued} == {"eventbridge"}
    assert {m.kind for m in queued} == {JobKind.SEGMENT_TO_RAINDROP}
    assert {m.project for m in queued} == {"default"}

    receiver.heal()
    assert run_retry_worker(intake.aws).failed == 0
    assert_delivered_once(receiver, ["trace-1", "trace-2"])


def test_invalid_events_are_dead_lettered_and_replayed_once_the_mapping_is_fixed(
    intake: Intake, receiver: Any, make_replayer: Any
) -> None:
    # No userId nor anonymousId: invalid under the default field paths; this team keeps the
    # user in properties.account_user.
    orphan = se.chat(7)
    orphan.pop("userId", None)
    orphan.pop("anonymousId", None)
    orphan["properties"]["account_user"] = "user-7"
    intake.put([orphan, se.chat(8)])

    assert intake.run().failed == 0

    assert_delivered_once(receiver, ["trace-8"])
    (dead,) = peek_dlq(intake.aws)
    assert dead.reason is FailureReason.INVALID
    assert dead.source == "eventbridge"
    assert dead.events == [orphan]  # the Segment event itself, not the envelope

    intake.aws.configure(
        mapping={"field_paths": {"user_id": ("userId", "anonymousId", "properties.account_user")}}
    )
    summary = make_replayer().run()

    assert summary.ok
    assert summary.messages_deleted == 1
    assert_delivered_once(receiver, ["trace-7", "trace-8"])
    assert intake.aws.queue_depth(intake.aws.resources.dlq_url) == 0


def test_records_that_are_not_segment_envelopes_are_dead_lettered_with_their_reason(
    intake: Intake, receiver: Any
) -> None:
    intake.send_raw("not json at all")
    intake.send_raw(json.dumps({"source": SOURCE, "detail-type": "track"}))
    intake.send_raw(json.dumps({"source": "aws.partner/segment.com/unknown", "detail": se.chat(3)}))

    run = intake.run()

    assert (run.received, run.failed, run.deleted) == (3, 0, 3)
    assert receiver.requests == []
    dead = peek_dlq(intake.aws)
    errors = sorted(message.error or "" for message in dead)
    assert any(error.startswith("record is not JSON") for error in errors)
    assert "EventBridge event has no detail object (the Segment event)" in errors
    assert "event source is not configured (SEGMENT_EVENT_SOURCES)" in errors
    assert {message.reason for message in dead} == {FailureReason.INVALID}
    # Each kept as the text that arrived.
    assert "not json at all" in [event for message in dead for event in message.events]


def test_records_fail_only_when_their_events_can_be_neither_delivered_nor_queued(
    intake: Intake, receiver: Any, closed_port: int
) -> None:
    intake.put([se.chat(1)])
    receiver.outage(Fault(status=503))
    intake.aws.unreachable("sqs", f"http://127.0.0.1:{closed_port}")

    run = intake.run()

    # The record comes back (a batch item failure); nothing was lost or half-queued.
    assert (run.received, run.failed, run.deleted) == (1, 1, 0)
    assert intake.depth() == 1
    assert intake.aws.queue_depth(intake.aws.resources.retry_queue_url) == 0


def test_without_a_raindrop_key_the_events_wait_on_the_retry_queue(
    intake: Intake, receiver: Any
) -> None:
    aws = intake.aws
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": "REPLACE_ME"}),
    )
    intake.put([se.chat(1)])

    assert intake.run().failed == 0

    assert receiver.requests == []
    (queued,) = bodies(peek_messages(aws.sqs, aws.resources.retry_queue_url))
    assert queued.reason is FailureReason.TRANSIENT
    assert [event["properties"]["trace_id"] for event in queued.events] == ["trace-1"]


def test_a_record_failing_every_receive_ends_on_the_intakes_own_dead_letter_queue(
    intake: Intake, receiver: Any, closed_port: int
) -> None:
    sqs = intake.aws.sqs
    # Each failed record is visible again at once, not after the deployed 6 minutes.
    sqs.set_queue_attributes(
        QueueUrl=intake.resources.queue_url, Attributes={"VisibilityTimeout": "0"}
    )
    intake.put([se.chat(1)])
    receiver.outage(Fault(status=503))
    intake.aws.unreachable("sqs", f"http://127.0.0.1:{closed_port}")

    for _ in range(EVENTBRIDGE_MAX_RECEIVES):
        run = intake.run()
        assert (run.received, run.failed) == (1, 1)

    # The next receive finds it moved to the intake's DLQ (SQS's redrive), as it came.
    assert intake.run().received == 0
    (dead,) = peek_messages(sqs, intake.resources.dlq_url)
    envelope = json.loads(dead["Body"])
    assert envelope["source"] == SOURCE
    assert envelope["detail"] == se.chat(1)
    assert receiver.accepted() == []


def test_what_raindrop_refuses_is_dead_lettered_and_replays_once_it_takes_it(
    intake: Intake, receiver: Any, make_replayer: Any
) -> None:
    intake.put([se.chat(4)])
    receiver.outage(Fault(status=400))

    assert intake.run().failed == 0

    (dead,) = peek_dlq(intake.aws)
    assert dead.reason is FailureReason.REJECTED
    assert dead.status == 400
    assert dead.source == "eventbridge"
    receiver.heal()
    summary = make_replayer().run()
    assert summary.messages_deleted == 1
    assert_delivered_once(receiver, ["trace-4"])


def test_a_user_deletion_request_is_logged_as_a_hash_and_not_forwarded(
    intake: Intake, receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    deletion = json.loads((FIXTURES / "classic_webhook_delete.json").read_text())
    intake.put([deletion])

    # The rule lets it through (the webhook logs deletions too, so operators notice them).
    assert intake.depth() == 1
    run = intake.run()

    assert (run.received, run.failed, run.deleted) == (1, 0, 1)
    assert receiver.requests == []
    assert intake.aws.queue_depth(intake.aws.resources.dlq_url) == 0
    [logged] = [r for r in caplog.records if r.getMessage().startswith("user deletion")]
    assert logged.__dict__["user_hash"]
    assert all(deletion["userId"] not in str(r.__dict__) for r in caplog.records)
