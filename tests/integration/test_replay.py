"""Dead-letter replay (the ``Replayer`` and the replay Lambda) against moto and the receiver.

Every test checks the accounting: what the receiver accepted and what the dead-letter queue
holds afterwards are exactly what the summary says.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest

from segment_raindrop.adapters.queue_writer import QueueTarget, QueueWriter
from segment_raindrop.core.outcomes import FailureReason
from segment_raindrop.handlers import replay
from segment_raindrop.service.replay.replayer import LAMBDA_RESERVE_SECONDS, ReplayRefused
from segment_raindrop.service.replay.summary import ReplayProgress
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.apigw import LocalContext
from segment_raindrop_tools.local.queues import peek_messages
from segment_raindrop_tools.local.raindrop_items import check_raindrop_items
from tests.support.auth import bearer
from tests.support.queues import (
    FIRST_FAILURE,
    assert_delivered_once,
    fast,
    fresh_runtimes,
    make_replayer,
    message_header,
    peek_dlq,
    put_message,
    raw_dlq,
    run_retry_worker,
)

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def _seed(aws: Any, messages: int, per_message: int = 2, **kwargs: Any) -> list[str]:
    """``messages`` dead-letter messages of AI events; returns their event ids in order."""
    ids = []
    for m in range(messages):
        events = [se.chat(m * 100 + e) for e in range(per_message)]
        put_message(aws, QueueTarget.DEAD_LETTER, events, **kwargs)
        ids += [f"trace-{m * 100 + e}" for e in range(per_message)]
    return ids


def _visible_and_hidden(aws: Any) -> tuple[int, int]:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.resources.dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def test_replay_after_an_outage_delivers_everything_and_empties_the_queue(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    ids = _seed(aws, 5, per_message=3)
    # A page among events once invalid: a rule changed since then filters it. Deleting it is
    # the operator's call (it never reached Raindrop): asked for here.
    put_message(
        aws,
        QueueTarget.DEAD_LETTER,
        [se.identify(7), se.page(8)],
        reason=FailureReason.INVALID,
        status=None,
        error="event has no type",
    )

    summary = make_replayer(drop_filtered=True).run()

    assert summary.ok
    assert summary.messages_received == summary.messages_selected == 6
    assert summary.messages_replayed == summary.messages_deleted == 6
    assert summary.messages_kept == summary.messages_partly_replayed == 0
    assert summary.events_forwarded == 16
    assert summary.events_filtered == 1
    assert not summary.events_failed
    assert_delivered_once(receiver, ids)
    assert [item["user_id"] for item in receiver.accepted("users/identify")] == ["user-7"]
    assert aws.queue_depth(aws.resources.dlq_url) == 0
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0


def test_replay_during_an_outage_deletes_nothing(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    _seed(aws, 4)
    before = raw_dlq(aws)
    receiver.outage()

    summary = make_replayer().run()

    assert not summary.ok
    assert summary.messages_selected == summary.messages_kept == 4
    assert summary.messages_replayed == summary.messages_deleted == 0
    assert summary.events_forwarded == 0
    assert summary.events_failed == Counter({"transient": 8})
    assert receiver.accepted() == []
    assert receiver.requests  # it did try
    assert _visible_and_hidden(aws) == (4, 0)  # released at the end of the run
    assert raw_dlq(aws) == before  # untouched, byte for byte


def test_dry_run_changes_nothing_and_reports_what_would_be_sent(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1), se.chat(2), se.identify(3)])
    put_message(
        aws,
        QueueTarget.DEAD_LETTER,
        [se.chat(4), se.invalid(5)],
        reason=FailureReason.INVALID,
        status=None,
        error="event has no userId or anonymousId",
    )
    put_message(
        aws, QueueTarget.DEAD_LETTER, [se.page(6)], reason=FailureReason.INVALID, status=None
    )
    before = raw_dlq(aws)
    receiver.outage()  # a dry run must not even try

    summary = make_replayer(dry_run=True).run()

    assert summary.dry_run
    assert not summary.ok  # one message still holds an invalid event, one a filtered one
    assert summary.messages_selected == 3
    assert summary.messages_replayed == 1  # would be replayed
    assert summary.messages_kept == 2  # would be kept: an invalid event, a filtered one
    assert summary.messages_deleted == 0
    assert summary.events_forwarded == 4  # would be forwarded
    assert summary.events_filtered == 1
    assert summary.events_failed == Counter({"invalid": 1})
    assert summary.would_send == Counter({"events/track": 3, "users/identify": 1})
    assert receiver.requests == []
    assert raw_dlq(aws) == before
    assert _visible_and_hidden(aws) == (3, 0)


def test_dry_run_of_a_clean_queue_is_ok(aws: Any, receiver: Any, make_replayer: Any) -> None:
    _seed(aws, 2)
    summary = make_replayer(dry_run=True).run()
    assert summary.ok
    assert summary.would_send == Counter({"events/track": 4})
    assert receiver.requests == []
    assert _visible_and_hidden(aws) == (2, 0)


def test_rejected_and_invalid_events_stay_with_their_reason_while_neighbours_go(
    aws: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch, make_replayer: Any
) -> None:
    def refuse_trace_2(endpoint: str, items: list[Any]) -> str | None:
        if any(item.get("event_id") == "trace-2" for item in items):
            return "event trace-2 is refused"
        return check_raindrop_items(endpoint, items)

    receiver = receiver_factory(api_key=aws.raindrop_api_key, validator=refuse_trace_2)
    aws.configure(delivery={"raindrop_api_url": receiver.url})
    put_message(
        aws,
        QueueTarget.DEAD_LETTER,
        [se.chat(1), se.chat(2), se.chat(3)],
        attempts=3,
        retries=8,
        request_id="req-7",
    )
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(4), se.invalid(5)], attempts=1)

    summary = make_replayer().run()

    assert not summary.ok
    assert summary.messages_partly_replayed == 2
    assert summary.messages_deleted == 2
    assert summary.events_forwarded == 3
    assert summary.events_failed == Counter({"rejected": 1, "invalid": 1})
    assert_delivered_once(receiver, ["trace-1", "trace-3", "trace-4"])
    remaining = {message.reason: message for message in peek_dlq(aws)}
    assert set(remaining) == {FailureReason.REJECTED, FailureReason.INVALID}
    rejected = remaining[FailureReason.REJECTED]
    assert rejected.events == [se.chat(2)]
    assert rejected.status == 400
    assert "trace-2 is refused" in (rejected.error or "")
    assert rejected.attempts == 4  # 3 before + 1
    assert rejected.retries == 8
    assert rejected.first_failure_at == FIRST_FAILURE
    assert rejected.request_id == "req-7"
    assert rejected.source == "replay"
    invalid = remaining[FailureReason.INVALID]
    assert invalid.events == [se.invalid(5)]
    assert invalid.error == "event has no userId or anonymousId"

    # Replayed again: nothing more is delivered, nothing is deleted, nothing is duplicated.
    before = raw_dlq(aws)
    again = make_replayer().run()
    assert again.messages_kept == 2
    assert again.messages_deleted == 0
    assert raw_dlq(aws) == before
    assert_delivered_once(receiver, ["trace-1", "trace-3", "trace-4"])


def test_an_interrupted_replay_run_again_delivers_and_deletes_each_message_once(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    ids = _seed(aws, 7)
    progress: list[ReplayProgress] = []

    def stop_after_three(update: ReplayProgress) -> None:
        progress.append(update)
        if update.summary.messages_selected == 3:
            first.stop()

    first = make_replayer(on_progress=stop_after_three)
    interrupted = first.run()

    assert interrupted.stopped
    assert not interrupted.ok
    assert interrupted.messages_replayed == interrupted.messages_deleted == 3
    assert len(progress) == 3
    assert len(receiver.accepted("events/track")) == 6
    assert _visible_and_hidden(aws) == (4, 0)  # the rest released at once, not in 300 s

    second = make_replayer().run()

    assert second.ok
    assert second.messages_replayed == second.messages_deleted == 4
    assert interrupted.messages_deleted + second.messages_deleted == 7
    assert_delivered_once(receiver, ids)
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_two_replays_at_the_same_time_do_not_double_send(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    ids = _seed(aws, 30)
    receiver.set_latency(0.01)
    replayers = [make_replayer(), make_replayer()]
    start = threading.Barrier(2)
    summaries: list[Any] = [None, None]

    def run(number: int) -> None:
        start.wait()
        summaries[number] = replayers[number].run()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert all(summary is not None and summary.ok for summary in summaries)
    assert sum(summary.messages_deleted for summary in summaries) == 30
    assert all(summary.messages_deleted > 0 for summary in summaries), "both took part"
    assert_delivered_once(receiver, ids)
    assert aws.queue_depth(aws.resources.dlq_url) == 0


def test_filters_select_by_reason_and_first_failure(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)], first_failure_at=FIRST_FAILURE)
    put_message(
        aws,
        QueueTarget.DEAD_LETTER,
        [se.chat(2)],
        reason=FailureReason.REJECTED,
        status=400,
        first_failure_at=FIRST_FAILURE,
    )
    put_message(
        aws, QueueTarget.DEAD_LETTER, [se.chat(3)], first_failure_at="2026-11-25T10:00:00.000Z"
    )

    by_reason = make_replayer(reason=FailureReason.REJECTED).run()
    assert (by_reason.messages_selected, by_reason.messages_skipped) == (1, 2)
    assert by_reason.ok
    assert_delivered_once(receiver, ["trace-2"])

    by_time = make_replayer(since="2026-11-20T00:00:00Z", until="2026-11-21T00:00:00").run()
    assert (by_time.messages_selected, by_time.messages_skipped) == (1, 1)
    assert_delivered_once(receiver, ["trace-1", "trace-2"])

    assert _visible_and_hidden(aws) == (1, 0)
    assert [message.events for message in peek_dlq(aws)] == [[se.chat(3)]]


def test_max_messages_limits_the_run(aws: Any, receiver: Any, make_replayer: Any) -> None:
    _seed(aws, 5, per_message=1)
    summary = make_replayer(max_messages=2).run()
    assert summary.ok
    assert summary.messages_selected == summary.messages_deleted == 2
    assert len(receiver.accepted("events/track")) == 2
    assert _visible_and_hidden(aws) == (3, 0)


def test_unparseable_messages_are_kept_and_reported(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    _seed(aws, 1)
    sent = aws.sqs.send_message(QueueUrl=aws.resources.dlq_url, MessageBody="not ours")

    summary = make_replayer().run()

    assert not summary.ok
    assert summary.messages_unparseable == 1
    assert summary.unparseable_message_ids == [sent["MessageId"]]
    assert summary.messages_deleted == 1
    assert len(receiver.accepted("events/track")) == 2
    assert [message["Body"] for message in peek_messages(aws.sqs, aws.resources.dlq_url)] == [
        "not ours"
    ]


def test_summaries_of_events_too_large_for_sqs_are_kept(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    big = se.chat(1)
    big["properties"]["ai_data"]["input"] = "x" * 5_000
    small_writer = QueueWriter(
        aws.sqs,
        retry_queue_url=aws.resources.retry_queue_url,
        dlq_url=aws.resources.dlq_url,
        source="webhook",
        max_message_bytes=2_000,
    )
    header = message_header(FailureReason.REJECTED, status=413, request_id=None)
    result = small_writer.send(QueueTarget.DEAD_LETTER, [(header, [(0, big)])])
    assert result.omitted == {0}
    before = raw_dlq(aws)

    summary = make_replayer().run()

    assert not summary.ok
    assert summary.messages_kept == 1
    assert summary.events_omitted == 1
    assert receiver.requests == []
    assert raw_dlq(aws) == before


def test_a_missing_key_refuses_to_start_and_touches_nothing(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    _seed(aws, 2)
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": "REPLACE_ME"}),
    )

    with pytest.raises(ReplayRefused, match="placeholder"):
        make_replayer().run()
    assert _visible_and_hidden(aws) == (2, 0)
    # A dry run reads no key, so it still works while the key is not set yet.
    assert make_replayer(dry_run=True).run().ok
    assert receiver.requests == []


def test_a_visibility_timeout_too_short_for_the_budget_is_refused(
    aws: Any, receiver: Any, make_replayer: Any
) -> None:
    _seed(aws, 1)
    with pytest.raises(ReplayRefused, match="visibility timeout"):
        make_replayer(visibility_timeout=30, message_budget_seconds=60).run()
    assert _visible_and_hidden(aws) == (1, 0)


# The replay Lambda


def test_the_lambda_replays_with_the_event_as_options(aws: Any, receiver: Any) -> None:
    ids = _seed(aws, 3)
    put_message(
        aws, QueueTarget.DEAD_LETTER, [se.chat(999)], reason=FailureReason.REJECTED, status=400
    )

    result = replay.handler(
        {"max_messages": 100, "dry_run": False, "reason": "transient", "wait_seconds": 0},
        LocalContext(function_name="segment-raindrop-replay", timeout_seconds=600),
    )

    assert result["ok"] is True
    assert result["messages_selected"] == result["messages_deleted"] == 3
    assert result["messages_skipped"] == 1
    assert result["events_forwarded"] == 6
    assert json.loads(json.dumps(result)) == result  # plain JSON for the console
    assert_delivered_once(receiver, ids)
    assert [message.reason for message in peek_dlq(aws)] == [FailureReason.REJECTED]


def test_the_lambda_answers_a_bad_event_with_an_error(aws: Any, receiver: Any) -> None:
    _seed(aws, 1)
    result = replay.handler(
        {"max_mesages": 5, "reason": "nope"}, LocalContext(function_name="segment-raindrop-replay")
    )
    assert result["ok"] is False
    assert "max_mesages" in result["error"]
    assert "reason" in result["error"]
    assert receiver.requests == []
    assert _visible_and_hidden(aws) == (1, 0)


def test_the_lambda_stops_gracefully_when_time_runs_low(aws: Any, receiver: Any) -> None:
    _seed(aws, 2)
    result = replay.handler(
        {"wait_seconds": 0}, LocalContext(timeout_seconds=LAMBDA_RESERVE_SECONDS + 1)
    )
    assert result["ok"] is False
    assert result["stopped"] is True
    assert result["stop_reason"] == "time limit"
    assert result["messages_deleted"] == 0
    assert receiver.requests == []
    assert _visible_and_hidden(aws) == (2, 0)


# The whole path


def test_outage_drill_webhook_retry_dead_letter_replay(
    aws: Any, receiver: Any, invoke_webhook: Any, make_replayer: Any
) -> None:
    """Raindrop is down: the webhook queues, the retry worker gives up, replay delivers."""
    events = [se.chat(n) for n in range(5)]
    receiver.outage()

    answer = invoke_webhook(events, headers=bearer(aws))

    assert answer.status == 200
    assert answer.body["queued"] == 5
    runs = 0
    while run_retry_worker(aws).received:
        runs += 1
        assert runs <= aws.resources.retry_max_receives
    assert runs == aws.resources.retry_max_receives
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
    dead = peek_dlq(aws)
    assert sorted(event["messageId"] for message in dead for event in message.events) == sorted(
        event["messageId"] for event in events
    )
    assert receiver.accepted() == []

    receiver.heal()
    summary = make_replayer().run()

    assert summary.ok
    assert summary.events_forwarded == 5
    assert_delivered_once(receiver, [f"trace-{n}" for n in range(5)])
    assert aws.queue_depth(aws.resources.dlq_url) == 0
    assert aws.queue_depth(aws.resources.retry_queue_url) == 0
