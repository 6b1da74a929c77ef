"""The EventBridge intake: events per second one consumer sustains, and what a million cost,
against the webhook measured the same way.

Realistic Segment events (``samples.batch``) that the stack's rule would pass, wrapped in
EventBridge envelopes as the rule's SQS target receives them, wait on the intake queue in moto
(SQS over HTTP on 127.0.0.1). One consumer drains it as Lambda's SQS event source does: up to
``BATCH_SIZE`` records per invocation (gathered with 10-message receives), the real handler
(``handlers.eventbridge``) delivering to the Raindrop stand-in in its own process (50 ms a
request), and the records it did not fail deleted. Reported: events per second end to end
(moto's receives and deletes included, which Lambda's poller does outside the function) and
the handler's own seconds per batch, which is what Lambda bills. The webhook is timed on the
same machine and receiver: its handler invoked with Segment batches of 1 and 1,000 events.

Run on its own with ``python -m bench.eventbridge`` (writes docs/benchmarks-eventbridge.md);
``make bench`` runs it too.
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench import cost
from bench.endtoend import receiver
from segment_raindrop.adapters.observability import logger as forwarder_logger
from segment_raindrop.core.config import DeliveryConfig, ForwarderConfig
from segment_raindrop.core.eventbridge import matches
from segment_raindrop.handlers import eventbridge, webhook
from segment_raindrop.service.runtime import build_runtime
from segment_raindrop_tools import samples
from segment_raindrop_tools.local.apigw import LocalContext, rest_proxy_event
from segment_raindrop_tools.local.aws import forwarder_clients, provision, sqs_client
from segment_raindrop_tools.local.event_source import sqs_lambda_event
from segment_raindrop_tools.local.eventbridge import local_source, provision_eventbridge
from segment_raindrop_tools.local.moto import start_moto_server
from segment_raindrop_tools.local.queues import queue_depth

DOCS: Final = Path(__file__).resolve().parent.parent / "docs"
EVENTS: Final = 2_000
BATCH_SIZE: Final = 100  # the stack's default segmentEventBatchSize
LATENCY: Final = 0.05
PROMPT_CHARS: Final = 100
REGION: Final = "us-east-1"
TOKEN: Final = "bench-token"
# us-east-1 list prices, 2026: EventBridge bills partner events as it does custom events,
# per 64 KB chunk (Segment caps an event at 32 KB: one each); SQS per request (64 KB chunks).
EVENTBRIDGE_EVENT: Final = 1.00 / 1_000_000
SQS_REQUEST: Final = 0.40 / 1_000_000
CONSUMER_MEMORY_GB: Final = 0.5  # infra/functions.py WORKER_MEMORY_MB
# SQS requests per event: EventBridge's SendMessage, and a tenth each of the poller's
# ReceiveMessage and DeleteMessageBatch (10 messages a call).
SQS_REQUESTS_PER_EVENT: Final = 1.2


@dataclass(frozen=True)
class IntakeRun:
    events: int
    batches: int
    wall_seconds: float
    handler_seconds: list[float]

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall_seconds

    @property
    def seconds_per_batch(self) -> float:
        return statistics.median(self.handler_seconds)


@dataclass(frozen=True)
class CostLine:
    name: str
    lambda_dollars: float
    front_dollars: float  # API Gateway, or EventBridge + SQS

    @property
    def total(self) -> float:
        return self.lambda_dollars + self.front_dollars


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The handlers print a log line and their metrics per invocation.
    saved = forwarder_logger.log_level
    forwarder_logger.setLevel("WARNING")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        forwarder_logger.setLevel(saved)


def _envelopes(source: str, pattern: dict[str, Any]) -> list[str]:
    envelopes = []
    for event in samples.batch(EVENTS * 2, seed=11, prompt_chars=PROMPT_CHARS):
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": event.get("type", "track"),
            "source": source,
            "account": "123456789012",
            "time": event.get("timestamp"),
            "region": REGION,
            "resources": [],
            "detail": event,
        }
        if matches(pattern, envelope):  # what the rule lets through
            envelopes.append(json.dumps(envelope))
    return envelopes[:EVENTS]


def _gather(sqs: Any, url: str) -> list[Any]:
    messages: list[Any] = []
    while len(messages) < BATCH_SIZE:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            break
        messages += got
    return messages


def _fill(sqs: Any, url: str, envelopes: list[str]) -> None:
    for start in range(0, len(envelopes), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "MessageBody": body}
                for n, body in enumerate(envelopes[start : start + 10])
            ],
        )


def _drain(sqs: Any, url: str, arn: str, envelopes: list[str]) -> IntakeRun:
    """One batch at a time: put on the queue (not timed), then received, handled and deleted
    (timed). moto's ReceiveMessage slows down with the depth of the queue (about 0.25 s for
    10 of 500 waiting), which Lambda's pollers do not: the queue is kept one batch deep."""
    handler_seconds: list[float] = []
    done = batches = 0
    timed = 0.0
    for start in range(0, len(envelopes), BATCH_SIZE):
        _fill(sqs, url, envelopes[start : start + BATCH_SIZE])
        began_batch = time.perf_counter()
        messages = _gather(sqs, url)
        event = sqs_lambda_event(messages, queue_arn=arn, region=REGION)
        began = time.perf_counter()
        with _quiet():
            answer = eventbridge.handler(event, LocalContext(timeout_seconds=60))
        handler_seconds.append(time.perf_counter() - began)
        assert answer["batchItemFailures"] == [], answer
        for first in range(0, len(messages), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages[first : first + 10])
                ],
            )
        timed += time.perf_counter() - began_batch
        done += len(messages)
        batches += 1
    return IntakeRun(done, batches, timed, handler_seconds)


def _webhook_seconds(events: list[dict[str, Any]], size: int, repeat: int) -> float:
    body = samples.body(events[:size])
    timings = []
    for _ in range(repeat):
        request = rest_proxy_event(
            method="POST",
            path="/segment",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            body=body,
        )
        began = time.perf_counter()
        with _quiet():
            answer = webhook.handler(request, LocalContext(timeout_seconds=8))
        timings.append(time.perf_counter() - began)
        assert answer["statusCode"] == 200, answer
    return statistics.median(timings)


def run() -> tuple[IntakeRun, dict[int, float]]:
    """The intake's run, and the webhook's median handler seconds by Segment batch size."""
    source = local_source("bench")
    with start_moto_server() as moto, receiver(LATENCY) as url:
        resources = provision(
            endpoint_url=moto.endpoint_url,
            region=REGION,
            secret={"raindrop_api_key": "bench-key", "webhook_token": TOKEN},
            prefix="bench",
        )
        intake = provision_eventbridge(
            endpoint_url=moto.endpoint_url, region=REGION, sources=[source], prefix="bench"
        )
        config = ForwarderConfig(
            secret_id=resources.secret_id,
            retry_queue_url=resources.retry_queue_url,
            dlq_url=resources.dlq_url,
            delivery=DeliveryConfig(raindrop_api_url=url, budget_seconds=20),
            segment_event_sources={source: None},
        )
        factory: Callable[[str], Any] = lambda name: build_runtime(  # noqa: E731
            config, source=name, aws=forwarder_clients(moto.endpoint_url, REGION)
        )
        eventbridge.runtime.use(lambda: factory("eventbridge"))
        webhook.runtime.use(lambda: factory("webhook"))
        try:
            sqs = sqs_client(moto.endpoint_url, REGION)
            envelopes = _envelopes(source, intake.pattern)
            arn = sqs.get_queue_attributes(QueueUrl=intake.queue_url, AttributeNames=["QueueArn"])
            intake_run = _drain(sqs, intake.queue_url, arn["Attributes"]["QueueArn"], envelopes)
            for queue in (resources.retry_queue_url, resources.dlq_url, intake.queue_url):
                assert queue_depth(sqs, queue) == 0, f"{queue} is not empty"
            events = samples.batch(1_000, seed=12, prompt_chars=PROMPT_CHARS)
            hook = {1: _webhook_seconds(events, 1, 100), 1_000: _webhook_seconds(events, 1_000, 5)}
        finally:
            eventbridge.runtime.use(None)
            webhook.runtime.use(None)
    return intake_run, hook


def intake_cost(seconds_per_batch: float, batch_size: int = BATCH_SIZE) -> CostLine:
    invocations = 1_000_000 / batch_size
    billed = max(0.001, round(seconds_per_batch + 0.0005, 3))
    lambda_dollars = (
        invocations * billed * CONSUMER_MEMORY_GB * cost.LAMBDA_ARM_GB_SECOND
        + invocations * cost.LAMBDA_REQUEST
    )
    front = 1_000_000 * (EVENTBRIDGE_EVENT + SQS_REQUESTS_PER_EVENT * SQS_REQUEST)
    return CostLine(f"EventBridge intake, batches of {batch_size}", lambda_dollars, front)


def webhook_cost(batch_size: int, seconds: float) -> CostLine:
    row = cost.per_million(batch_size, seconds)
    name = "webhook, unbatched" if batch_size == 1 else f"webhook, batches of {batch_size:,}"
    return CostLine(name, row.lambda_dollars_per_million, row.api_gateway_dollars_per_million)


def markdown(intake_run: IntakeRun, hook: dict[int, float], *, machine: str) -> str:
    lines = [
        "# EventBridge intake benchmark",
        "",
        f"Generated by `python -m bench.eventbridge` (also run by `make bench`) on {machine}.",
        "How it is measured: the docstring of bench/eventbridge.py.",
        "",
        "## Throughput of one consumer",
        "",
        f"{intake_run.events:,} events that the rule passes (`samples.batch`, prompts of "
        f"{PROMPT_CHARS} characters), in {intake_run.batches} batches of up to {BATCH_SIZE}, "
        f"the Raindrop stand-in answering after {LATENCY * 1000:.0f} ms:",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| events per second, end to end (the emulator's receives and deletes included) | "
        f"{intake_run.events_per_second:,.0f} |",
        f"| handler seconds per batch of {BATCH_SIZE} (median) | "
        f"{intake_run.seconds_per_batch:.3f} |",
        f"| events per second inside the handler | "
        f"{BATCH_SIZE / intake_run.seconds_per_batch:,.0f} |",
        "",
        "Lambda runs up to `segmentEventMaxConcurrency` consumers (default 5) at once.",
        "",
        "## Cost per million events (us-east-1 list prices)",
        "",
        "| path | Lambda | API Gateway / EventBridge + SQS | total |",
        "| --- | --- | --- | --- |",
    ]
    rows = [
        intake_cost(intake_run.seconds_per_batch),
        *(webhook_cost(size, seconds) for size, seconds in sorted(hook.items())),
    ]
    lines += [
        f"| {row.name} | ${row.lambda_dollars:.3f} | ${row.front_dollars:.3f} | ${row.total:.3f} |"
        for row in rows
    ]
    lines += [
        "",
        "EventBridge bills $1.00 per million partner events; SQS about 1.2 requests per event "
        "(EventBridge's SendMessage, a tenth each of a receive and a delete), $0.40 per million. "
        "The consumer's handler seconds are billed at 512 MB; the webhook's at 1 GB "
        f"(handler seconds measured here: {hook[1] * 1000:.1f} ms for one event, "
        f"{hook[1_000]:.3f} s for 1,000). Not included: the idle long polls of Lambda's SQS "
        "pollers (a few hundred thousand requests a month, some $0.10-0.30), the retry queue, "
        "logs and metrics, which both paths share.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    intake_run, hook = run()
    machine = (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    text = markdown(intake_run, hook, machine=machine)
    (DOCS / "benchmarks-eventbridge.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
