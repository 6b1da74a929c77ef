"""The EventBridge intake: events per second one consumer sustains.

Realistic Segment events (``samples.batch``) that the stack's rule would pass, wrapped in
EventBridge envelopes as the rule's SQS target receives them, wait on the intake queue in moto
(SQS over HTTP on 127.0.0.1). One consumer drains it as Lambda's SQS event source does: up to
``BATCH_SIZE`` records per invocation (gathered with 10-message receives), the real handler
(``handlers.eventbridge``) delivering to the Raindrop stand-in in its own process (50 ms a
request), and the records it did not fail deleted. Reported: events per second end to end
(moto's receives and deletes included, which Lambda's poller does outside the function) and
the handler's own seconds per batch, which is what Lambda bills. What a million events cost
through this intake, beside the webhook and the mirror, is bench/cost.py's (docs/benchmarks.md
section 5: one model for every route, data transfer out and 64 KB billing included).

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

from bench.endtoend import receiver
from segment_raindrop.adapters.observability import logger as forwarder_logger
from segment_raindrop.core.config import DeliveryConfig, ForwarderConfig
from segment_raindrop.core.eventbridge import matches
from segment_raindrop.handlers import eventbridge
from segment_raindrop.service.runtime import build_runtime
from segment_raindrop_tools import samples
from segment_raindrop_tools.local.apigw import LocalContext
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


def run() -> IntakeRun:
    """The intake's run against the Raindrop stand-in."""
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
        try:
            sqs = sqs_client(moto.endpoint_url, REGION)
            envelopes = _envelopes(source, intake.pattern)
            arn = sqs.get_queue_attributes(QueueUrl=intake.queue_url, AttributeNames=["QueueArn"])
            intake_run = _drain(sqs, intake.queue_url, arn["Attributes"]["QueueArn"], envelopes)
            for queue in (resources.retry_queue_url, resources.dlq_url, intake.queue_url):
                assert queue_depth(sqs, queue) == 0, f"{queue} is not empty"
        finally:
            eventbridge.runtime.use(None)
    return intake_run


def markdown(intake_run: IntakeRun, *, machine: str) -> str:
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
        "What a million events cost through this intake, beside the webhook and the mirror, "
        "is in [benchmarks.md section 5](benchmarks.md#5-cost-per-million-events) (bench/cost.py: "
        "one model for every route, data transfer out and SQS's and EventBridge's 64 KB billing "
        "included).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    intake_run = run()
    machine = (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    text = markdown(intake_run, machine=machine)
    (DOCS / "benchmarks-eventbridge.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
