"""The cost model's arithmetic (bench/cost.py): SQS's and EventBridge's 64 KB chunks, data
transfer out (twice in the mirror), Lambda's billing to the millisecond."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bench import cost


@pytest.mark.parametrize(
    ("payload", "billed"),
    [(1, 1), (3_000, 1), (64 * 1024, 1), (64 * 1024 + 1, 2), (256 * 1024, 4), (1024 * 1024, 16)],
)
def test_each_64_kb_chunk_of_a_payload_is_billed_once(payload: int, billed: int) -> None:
    assert cost.chunks(payload) == billed


def test_a_full_retry_message_costs_16_requests_to_send_and_16_to_receive() -> None:
    assert cost.retry_requests_per_message(1024 * 1024) == 16 + 16 + 1
    assert cost.retry_requests_per_message(10_000) == 1 + 1 + 1


def test_data_transfer_out_is_27_cents_a_million_3_kb_events_and_doubled_in_the_mirror() -> None:
    assert cost.data_out_dollars(3_000) == pytest.approx(0.27)
    assert cost.data_out_dollars(3_000, copies=2) == pytest.approx(0.54)
    assert cost.webhook(100, 0.05).data_out == pytest.approx(0.27)
    assert cost.mirror(10).data_out == pytest.approx(2 * cost.webhook(100, 0.05).data_out)


def test_lambda_bills_each_invocation_to_the_millisecond_above() -> None:
    one_gb_ms = 0.001 * cost.LAMBDA_ARM_GB_SECOND
    assert cost.lambda_dollars(1, 0.0001, 1024) == pytest.approx(cost.LAMBDA_REQUEST + one_gb_ms)
    assert cost.lambda_dollars(1, 0.0021, 1024) == pytest.approx(
        cost.LAMBDA_REQUEST + 3 * one_gb_ms
    )
    assert cost.lambda_dollars(1, 0.002, 512) == pytest.approx(cost.LAMBDA_REQUEST + one_gb_ms)


def test_the_webhook_pays_api_gateway_per_batch_and_no_sqs_when_healthy() -> None:
    row = cost.webhook(1_000, 0.1)
    assert row.invocations == 1_000
    assert row.front == pytest.approx(1_000 * 3.50 / 1_000_000)
    assert row.sqs == 0
    assert row.total == pytest.approx(row.lambda_ + row.front + row.data_out)


def test_the_eventbridge_intake_pays_a_partner_event_and_a_queue_message_per_event() -> None:
    row = cost.eventbridge(0.05)
    assert row.front == pytest.approx(1.00)  # a million partner events under 64 KB
    # One SendMessage per event, a receive and a delete per ten.
    assert cost.intake_sqs_requests_per_event(3_000) == pytest.approx(1.2)
    assert row.sqs == pytest.approx(1.2 * 0.40)
    assert row.invocations == 1_000_000 / cost.EVENTBRIDGE_BATCH
    # Events near 64 KB: each is two partner events and two requests to send.
    assert cost.eventbridge(0.05, event_bytes=64 * 1024).front == pytest.approx(2.00)


def test_retried_events_cost_the_queue_and_a_second_trip_out() -> None:
    row = cost.retried(event_bytes=3_000)
    messages = 1_000_000 * 3_000 / (1024 * 1024)
    assert row.sqs == pytest.approx(messages * 33 * 0.40 / 1_000_000)
    assert row.data_out == pytest.approx(0.27)
    assert math.isnan(row.lambda_)


def test_every_route_is_in_the_table_and_the_section_between_its_markers() -> None:
    table = cost.rows({1: 0.05, 100: 0.06, 1_000: 0.15})
    routes = {row.route for row in table}
    assert routes == {
        "Segment → webhook",
        "SDK → mirror",
        "Segment → EventBridge intake",
        "retry, on top",
    }
    lines = cost.section(table, sample_bytes_per_event=720.0)
    assert lines[0] == cost.MARK_START
    assert lines[1] == cost.HEADING
    assert lines[-1] == cost.MARK_END
    assert (
        sum(line.startswith("| ") for line in lines) == len(table) + 2
    )  # with the header and its rule


def test_the_section_replaces_the_one_a_report_holds(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# B\n\n## 4. Size\n\nx\n\n## 5. Cost per million events\n\nold\n\n## 6. Next\n")
    cost.write_into(doc, [cost.MARK_START, cost.HEADING, "", "new", cost.MARK_END])
    first = doc.read_text()
    assert "old" not in first
    assert first.endswith("new\n<!-- /cost -->\n\n## 6. Next\n")
    cost.write_into(doc, [cost.MARK_START, cost.HEADING, "", "newer", cost.MARK_END])
    assert doc.read_text() == first.replace("new\n", "newer\n")
