"""Local mode in this process: the real handlers behind real HTTP, moto and the receiver.

Every test accounts for the events: what the webhook answered, what the receiver accepted,
and what is left on the queues must agree.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from segment_raindrop.core.config import ConfigError
from segment_raindrop.core.contract import MAX_DECODED_BODY_BYTES
from segment_raindrop.handlers import retry_worker, webhook
from segment_raindrop_tools import events as se
from segment_raindrop_tools.cli_local import register, sample_conversation
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.mode import LocalMode
from segment_raindrop_tools.local.options import LocalOptions
from segment_raindrop_tools.local.raindrop_items import check_raindrop_items
from segment_raindrop_tools.local.state import ENV_FILE, ITEMS_FILE, STATE_FILE
from tests.e2e.conftest import Local, wait_for
from tests.support.auth import bearer

StartLocal = Callable[..., Local]


def chat(seq: int) -> dict[str, Any]:
    """An AI chat whose prompt must never show in local mode's output."""
    return se.chat(seq, input=f"secret prompt {seq}")


def expected_ids(events: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """The event_ids of the AI events and of the feedback signals among ``events``."""
    ai = {
        e["properties"]["trace_id"]
        for e in events
        if e.get("event", "").startswith("AI ") and e["event"] != "AI Feedback Submitted"
    }
    signals = {
        e["properties"]["trace_id"] for e in events if e.get("event") == "AI Feedback Submitted"
    }
    return ai, signals


def test_a_single_event_is_mapped_printed_and_saved(start_local: StartLocal) -> None:
    local = start_local()
    response = local.post(chat(1), headers=bearer(local.token))
    assert response.status_code == 200
    assert response.json() == {
        "received": 1,
        "forwarded": 1,
        "filtered": 0,
        "queued": 0,
        "dead_lettered": 0,
    }
    [item] = local.receiver.accepted("events/track")
    assert item["event"] == "ai_interaction"
    assert item["user_id"] == "user-1"
    assert item["event_id"] == "trace-1"
    assert item["ai_data"]["input"] == "secret prompt 1"
    assert check_raindrop_items("events/track", [item]) is None

    # One readable line per item, without the prompt; one per request.
    [line] = local.printed("raindrop  events/track")
    assert "ai_interaction" in line
    assert "user=user-1" in line
    assert "event_id=trace-1" in line
    assert all("secret prompt" not in printed for printed in local.lines)
    [request_line] = local.printed("webhook   POST /segment -> 200")
    assert "forwarded=1" in request_line

    items_file = Path(local.endpoints.items_file or "")
    [saved] = [json.loads(line) for line in items_file.read_text().splitlines()]
    assert saved["endpoint"] == "events/track"
    assert saved["item"] == item
    assert saved["received_at"].endswith("Z")
    assert local.queue_depth(local.endpoints.retry_queue_url) == 0
    assert local.queue_depth(local.endpoints.dlq_url) == 0


def test_state_files_hold_what_other_commands_need_and_are_private(
    start_local: StartLocal,
) -> None:
    local = start_local()
    ep = local.endpoints
    state_file, env_file = Path(ep.state_file), Path(ep.env_file)
    assert state_file.name == STATE_FILE
    assert env_file.name == ENV_FILE
    state = json.loads(state_file.read_text())
    assert state["webhook_url"] == ep.webhook_url
    assert state["webhook_token"] == ep.webhook_token
    assert state["shared_secret"] == ep.shared_secret
    assert state["batch_url"] == f"{ep.tracking_api_host}/v1/batch"
    assert state["pid"] == os.getpid()
    for path in (state_file, env_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    exports = env_file.read_text()
    for name in ("AWS_ENDPOINT_URL", "RAINDROP_SECRET_ID", "DLQ_URL", "RETRY_QUEUE_URL"):
        assert f"export {name}=" in exports
    banner = local.mode.banner()
    assert ep.webhook_token in banner
    assert ep.shared_secret in banner
    assert "curl -sS" in banner
    assert "127.0.0.1" in banner
    assert "0.0.0.0" not in banner

    local.mode.stop()
    assert not state_file.exists()
    assert not env_file.exists()


def test_local_mode_configures_the_handlers_without_touching_the_environment(
    tmp_path: Path,
) -> None:
    # A shell with real-looking credentials and an endpoint override for SQS: neither may
    # reach the handlers, and local mode must not change the environment to prevent it.
    os.environ["AWS_SESSION_TOKEN"] = "a-real-looking-session-token"
    os.environ["AWS_ENDPOINT_URL_SQS"] = "http://127.0.0.1:9"
    before = dict(os.environ)
    options = LocalOptions(
        port=0, data_dir=tmp_path, resource_prefix="e2e-env", retry_poll_seconds=0
    )
    with LocalMode(options, echo=lambda line: None) as mode:
        assert dict(os.environ) == before
        for handler in (webhook, retry_worker):
            runtime = handler.runtime.get()
            assert runtime.config.retry_queue_url == mode.endpoints.retry_queue_url
            assert runtime.config.delivery.raindrop_api_url == mode.endpoints.raindrop_url
            assert runtime.sqs.meta.endpoint_url == mode.endpoints.moto_endpoint
            credentials = runtime.sqs._get_credentials()
            assert credentials is not None
            assert (credentials.access_key, credentials.token) == ("testing", None)
    assert dict(os.environ) == before
    # Stopped, the handlers read their configuration from the environment again, as in Lambda
    # (which here has none).
    with pytest.raises(ConfigError):
        webhook.runtime.get()


def test_fixed_credentials_are_used(start_local: StartLocal) -> None:
    local = start_local(webhook_token="my-token", shared_secret="my-secret")
    assert local.endpoints.webhook_token == "my-token"
    assert local.endpoints.shared_secret == "my-secret"
    assert local.post(chat(1), headers={"Authorization": "Bearer my-token"}).status_code == 200


def test_refusals_come_back_over_http(start_local: StartLocal) -> None:
    local = start_local()
    assert local.post(chat(1)).status_code == 401
    assert local.post(chat(1), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert local.post(b"{not json", headers=bearer(local.token)).status_code == 400
    assert local.post(chat(1), headers=bearer(local.token), path="/elsewhere").status_code == 404
    assert local.receiver.requests == []
    statuses = [exchange.status for exchange in local.mode.exchanges]
    assert statuses == [401, 401, 400, 404]
    assert local.printed("-> 401  unauthorized")


def test_bodies_over_the_limits_are_refused_where_the_deployment_refuses_them(
    start_local: StartLocal,
) -> None:
    local = start_local()
    token = bearer(local.token)
    # Decompressed over MAX_BODY_BYTES, though small on the wire: the handler answers 413.
    bomb = gzip.compress(b"[" + b" " * MAX_DECODED_BODY_BYTES + b"]")
    gzipped = token | {"Content-Encoding": "gzip"}
    refused = local.post(bomb, headers=gzipped, path=local.batch_path)
    assert refused.status_code == 413
    assert "larger than" in refused.json()["error"]
    # As text (the webhook API), 6 MB of JSON is within Lambda's 6 MiB invoke payload: the
    # handler reads it (an empty batch: nothing to do).
    text = b"[" + b" " * 6_000_000 + b"]"
    assert local.post(text, headers=token).status_code == 200
    # Base64-encoded (the SDK API), 5 MiB is more than Lambda's payload: refused before the
    # handler, as the deployed API does.
    response = local.post(text[: 5 * 1024 * 1024], headers=token, path=local.batch_path)
    assert response.status_code == 413
    assert response.json() == {"message": "Request Too Long"}
    # ...and so is text past it, or over API Gateway's own 10 MB.
    for size in (6 * 1024 * 1024, 11 * 1024 * 1024):
        response = local.post(b"[" + b" " * size + b"]", headers=token)
        assert response.status_code == 413
        assert response.json() == {"message": "Request Too Long"}
    assert local.receiver.requests == []
    statuses = [exchange.status for exchange in local.mode.exchanges]
    assert statuses == [413, 200, 413, 413, 413]


def test_tracking_api_path_serves_the_batch_envelope(start_local: StartLocal) -> None:
    local = start_local()
    events = [chat(1), chat(2)]
    response = local.post(
        {"batch": events, "sentAt": "2026-11-27T10:00:01.000Z"},
        headers=bearer(local.token),
        path=local.batch_path,
    )
    assert response.status_code == 200, response.text
    assert response.json()["forwarded"] == 2
    assert {i["event_id"] for i in local.receiver.accepted("events/track")} == {
        "trace-1",
        "trace-2",
    }
    # Under the SDK API's stage, as deployed: <SegmentLibraryHost>/v1/batch.
    assert [exchange.path for exchange in local.mode.exchanges] == ["/v1/v1/batch"]


def test_outage_then_recovery_is_healed_by_the_retry_worker(start_local: StartLocal) -> None:
    local = start_local(retry_base_delay_seconds=1, retry_poll_seconds=1)
    receiver = local.receiver
    receiver.outage(Fault(status=503))
    events = sample_conversation("usr-outage", seed=7, turns=3)
    ai_ids, signal_ids = expected_ids(events)

    response = local.post(events, headers=bearer(local.token))
    assert response.status_code == 200
    answer = response.json()
    assert answer["received"] == len(events) == 8
    assert answer["forwarded"] == 0
    assert answer["filtered"] == 1  # the page view
    assert answer["queued"] == 7
    assert answer["dead_lettered"] == 0
    assert receiver.accepted() == []

    # The worker picks the message up while Raindrop is still down and puts it back...
    assert wait_for(lambda: any(run.failed for run in local.mode.retry_runs), timeout=15)
    assert receiver.accepted() == []
    assert local.queue_depth(local.endpoints.retry_queue_url) >= 1
    # ...and delivers it once Raindrop is back.
    receiver.heal()
    assert wait_for(
        lambda: {i["event_id"] for i in receiver.accepted("events/track")} == ai_ids, timeout=20
    )
    # Each endpoint's chunk is its own request: the signals may land a moment after the tracks.
    assert wait_for(
        lambda: {i["event_id"] for i in receiver.accepted("signals/track")} == signal_ids,
        timeout=20,
    )
    assert wait_for(lambda: local.queue_depth(local.endpoints.retry_queue_url) == 0, timeout=5)
    tracked = [item["event_id"] for item in receiver.accepted("events/track")]
    assert sorted(tracked) == sorted(ai_ids)  # each exactly once
    assert {item["event_id"] for item in receiver.accepted("signals/track")} == signal_ids
    assert {item["user_id"] for item in receiver.accepted("users/identify")} == {"usr-outage"}
    assert local.queue_depth(local.endpoints.dlq_url) == 0
    # How many messages one poll receives depends on timing (SQS returns "up to" the maximum):
    # what matters is a run that put messages back and a later one that settled all it took.
    runs = [
        re.search(r"retry +(\d+) message\(s\): (\d+) settled, (\d+) back", line)
        for line in local.lines
    ]
    counts = [tuple(int(n) for n in run.groups()) for run in runs if run]
    assert any(failed > 0 for _, _, failed in counts)
    assert any(received == settled > 0 and failed == 0 for received, settled, failed in counts)


def test_rejected_items_are_dead_lettered(start_local: StartLocal) -> None:
    local = start_local()
    local.receiver.outage(Fault(status=400, body='{"error": "bad item"}'), endpoint="events/track")
    response = local.post([chat(1), chat(2)], headers=bearer(local.token))
    assert response.status_code == 200
    assert response.json()["dead_lettered"] == 2
    assert wait_for(lambda: local.queue_depth(local.endpoints.dlq_url) >= 1)
    assert local.queue_depth(local.endpoints.retry_queue_url) == 0


def test_forwards_to_a_given_raindrop_with_the_given_key(
    start_local: StartLocal, receiver_factory: Callable[..., Any]
) -> None:
    # A stand-in plays "the real Raindrop" here: local mode must send it everything, with
    # the key it was given, and keep no local receiver or items file.
    real = receiver_factory(api_key="rk-live-key", validator=check_raindrop_items)
    local = start_local(raindrop_url=real.url, raindrop_api_key="rk-live-key")
    assert local.mode.receiver is None
    assert local.endpoints.raindrop_url == real.url
    assert local.endpoints.items_file is None
    assert "the real thing" in local.mode.banner()
    events = sample_conversation("usr-real", seed=3, turns=2)
    response = local.post(events, headers=bearer(local.token))
    assert response.status_code == 200
    assert response.json()["forwarded"] == 6
    ai_ids, _ = expected_ids(events)
    assert {item["event_id"] for item in real.accepted("events/track")} == ai_ids
    assert {r.headers["Authorization"] for r in real.requests} == {"Bearer rk-live-key"}
    assert not (Path(local.mode.options.data_dir) / ITEMS_FILE).exists()


def test_a_raindrop_url_without_a_key_is_refused(tmp_path: Path) -> None:
    options = LocalOptions(port=0, data_dir=tmp_path, raindrop_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="API key"):
        LocalMode(options).start()


# --- send-sample ---------------------------------------------------------------------------


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """A throwaway app with local mode's commands."""

    register(app)
    return app


@pytest.mark.parametrize(
    ("arguments", "requests"),
    [
        ([], 1),
        (["--single"], 8),
        (["--signature-secret", "{shared_secret}"], 1),
        (["--single", "--signature-secret", "{shared_secret}"], 8),
    ],
    ids=["batch-bearer", "single-bearer", "batch-signed", "single-signed"],
)
def test_send_sample_reports_what_the_forwarder_did(
    start_local: StartLocal, arguments: list[str], requests: int
) -> None:
    local = start_local()
    data_dir = str(local.mode.options.data_dir)
    args = [a.format(shared_secret=local.endpoints.shared_secret) for a in arguments]
    result = CliRunner().invoke(
        _cli(), ["send-sample", "--data-dir", data_dir, "--seed", "5", *args]
    )
    assert result.exit_code == 0, result.output
    assert "Raindrop got 7 of 8 events; 1 filtered" in result.output
    assert result.output.count("-> 200") == requests
    assert len(local.mode.exchanges) == requests
    events = sample_conversation("usr_4f1c9e2a7b30", seed=5, turns=3)
    ai_ids, signal_ids = expected_ids(events)
    assert {i["event_id"] for i in local.receiver.accepted("events/track")} == ai_ids
    assert {i["event_id"] for i in local.receiver.accepted("signals/track")} == signal_ids
    assert local.receiver.accepted("users/identify")


def test_send_sample_via_eventbridge_reaches_raindrop_through_the_intake(
    start_local: StartLocal,
) -> None:
    local = start_local()
    data_dir = str(local.mode.options.data_dir)

    result = CliRunner().invoke(
        _cli(), ["send-sample", "--data-dir", data_dir, "--seed", "5", "--via", "eventbridge"]
    )

    assert result.exit_code == 0, result.output
    assert "The intake queue is drained" in result.output
    assert local.mode.exchanges == []  # nothing went through the webhook
    runs = local.mode.intake_runs
    # The page view never reached the queue: the rule keeps only what the mapping forwards.
    assert sum(run.received for run in runs) == 7
    assert sum(run.failed for run in runs) == 0
    events = sample_conversation("usr_4f1c9e2a7b30", seed=5, turns=3)
    ai_ids, signal_ids = expected_ids(events)
    assert {i["event_id"] for i in local.receiver.accepted("events/track")} == ai_ids
    assert {i["event_id"] for i in local.receiver.accepted("signals/track")} == signal_ids
    assert local.receiver.accepted("users/identify")
    assert any("eventbridge " in line and "settled" in line for line in local.lines)


def test_send_sample_with_a_wrong_token_fails(start_local: StartLocal) -> None:
    local = start_local()
    data_dir = str(local.mode.options.data_dir)
    result = CliRunner().invoke(_cli(), ["send-sample", "--data-dir", data_dir, "--token", "wrong"])
    assert result.exit_code == 1
    assert "-> 401  unauthorized" in result.output
    assert local.receiver.requests == []


def test_send_sample_without_local_mode_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), ["send-sample", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "segment-raindrop local" in result.output


def test_send_sample_to_a_stopped_local_mode_says_so(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(
        json.dumps({"webhook_url": "http://127.0.0.1:9/segment", "webhook_token": "t"})
    )
    result = CliRunner().invoke(_cli(), ["send-sample", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "could not reach" in result.output
