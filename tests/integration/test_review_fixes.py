"""Defects an adversarial review found, each pinned by a test against the real components."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from segment_raindrop.adapters.http_answers import retry_after_seconds
from segment_raindrop.adapters.http_delivery import HttpDelivery
from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.adapters.targets import RaindropTarget
from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.config import ConfigError, DeliveryConfig, ForwarderConfig, MappingConfig
from segment_raindrop.core.environment import read_config, read_delivery_config, to_environment
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.outcomes import ChunkStatus
from segment_raindrop_tools import events as se
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.queues import (
    fast,
    fresh_runtimes,
    make_replayer,
    peek_dlq,
    put_message,
)

__all__ = ["fast", "fresh_runtimes", "make_replayer"]  # fixtures, imported for use by name


def bearer(aws: AwsEnv) -> dict[str, str]:
    return {"Authorization": f"Bearer {aws.webhook_token}"}


def test_a_key_pasted_with_a_non_ascii_character_is_not_configured_not_a_crash(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": "rk-abc\u201d"}),
    )
    response = invoke_webhook([se.chat(0)], headers=bearer(aws))
    assert response.status == 503
    assert "not configured" in response.body["error"]
    assert receiver.requests == []


def test_a_key_pasted_with_a_trailing_newline_still_works(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretString=json.dumps({**aws.secret, "raindrop_api_key": aws.raindrop_api_key + "\n"}),
    )
    response = invoke_webhook([se.chat(0)], headers=bearer(aws))
    assert (response.status, response.body["forwarded"]) == (200, 1)


def test_a_retry_after_date_past_year_9999_is_ignored_not_raised() -> None:
    assert retry_after_seconds("Mon, 01 Jan 99999999999999999999 00:00:00 GMT") is None


@pytest.mark.parametrize("project", ["Prodé", "Prod", "proj_1", "-x"])
def test_a_malformed_raindrop_project_id_is_refused_at_start_up(project: str) -> None:
    with pytest.raises(ConfigError, match="RAINDROP_PROJECT_ID"):
        read_delivery_config({"RAINDROP_PROJECT_ID": project})


def test_floats_survive_the_environment_round_trip() -> None:
    config = ForwarderConfig(
        secret_id="s",
        retry_queue_url="r",
        dlq_url="d",
        delivery=DeliveryConfig(budget_seconds=4.1234567, backoff_cap_seconds=123.4567),
    )
    assert read_config(to_environment(config)) == config


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
    assert waited < 3.0  # 0.5 s + 1 s grace, with room; ten graces would be 10 s


def test_replay_keeps_messages_whose_events_its_mapping_now_filters(
    aws: AwsEnv, receiver: RaindropReceiver, make_replayer: Any
) -> None:
    put_message(aws, QueueTarget.DEAD_LETTER, [se.chat(1)])
    # The operator's replay lacks the deployment's settings: "AI Chat Completed" is not
    # forwarded by this mapping.
    aws.configure(mapping={"forward_event_prefixes": ("LLM ",), "event_renames": {}})
    summary = make_replayer().run()
    assert summary.messages_kept == 1
    assert "would now be filtered" in summary.errors[0]
    assert receiver.requests == []
    assert len(peek_dlq(aws)) == 1
    # Asked explicitly, the replay deletes them.
    dropped = make_replayer(drop_filtered=True).run()
    assert dropped.messages_replayed == 1
    assert peek_dlq(aws) == []
