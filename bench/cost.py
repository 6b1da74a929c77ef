"""What a million events cost, per route, at the durations `make bench` measures.

Three ways in: Segment's webhook (API Gateway -> webhook Lambda -> Raindrop), the mirror
(Raindrop's SDK -> API Gateway -> mirror Lambda -> Raindrop and Segment) and the EventBridge
intake (Segment's EventBridge destination -> partner event bus -> rule -> SQS intake queue ->
consumer Lambda in batches -> Raindrop); and what a retried event adds. The arithmetic is pure
(tests/unit/test_cost.py); only `measure` runs anything.

``python -m bench.cost`` measures the webhook's durations (the end-to-end benchmark's sizes,
50 ms receiver) and prints the section; ``--write`` also puts it into docs/benchmarks.md
between its markers, without rerunning the other benchmarks (``make bench`` writes it too).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# List prices, us-east-1, without the free tier; as AWS's pricing pages gave them (read through
# 2026 summaries of those pages, not from an AWS account): verify before relying on them.
PRICES_AS_OF: Final = "us-east-1 list prices, 2026, without the free tier"
LAMBDA_ARM_GB_SECOND: Final = 0.0000133334
LAMBDA_REQUEST: Final = 0.20 / 1_000_000
API_GATEWAY_REST_REQUEST: Final = 3.50 / 1_000_000  # first 333 million a month
SQS_REQUEST: Final = 0.40 / 1_000_000  # standard queue, first 100 billion a month
# SQS bills each 64 KB chunk of a request's payload as one request; EventBridge each 64 KB
# chunk of an event as one event.
CHUNK_BYTES: Final = 64 * 1024
EVENTBRIDGE_PARTNER_EVENT: Final = 1.00 / 1_000_000  # partner events ingested by the bus
# Data transfer out of AWS to the internet, first 10 TB a month (the first 100 GB of the
# account's month are free); transfer in (Segment's and the SDK's requests) is free.
DATA_OUT_PER_GB: Final = 0.09
GB: Final = 1_000_000_000  # decimal, which overstates the bill by 7% at most

MILLION: Final = 1_000_000
# Assumptions (stated in the report): what the forwarder sends per event, to Raindrop and, in
# the mirror, to Segment; AI events with real prompts and answers, not the benchmark's short
# sample (whose mapped size `measure` reports).
EVENT_BYTES: Final = 3_000
# EventBridge's envelope around Segment's event (version, id, detail-type, source, account,
# time, region, resources).
ENVELOPE_BYTES: Final = 400
WEBHOOK_MEMORY_MB: Final = 1024  # the stack's default webhookMemoryMb; the mirror's too
WORKER_MEMORY_MB: Final = 512  # infra/functions.py: retry worker and EventBridge consumer
SQS_RECEIVE_MAX: Final = 10  # messages per ReceiveMessage and per DeleteMessageBatch
EVENTBRIDGE_BATCH: Final = 100  # core/contract.EVENTBRIDGE_BATCH_SIZE, the stack's default
SDK_BATCH: Final = 10  # Raindrop's SDK sends at most 10 items per request
# Not measured by `make bench`: a mirror request calls Raindrop, then Segment (about 50 ms
# each against the benchmark's receiver).
MIRROR_SECONDS: Final = 0.1
RETRY_MESSAGE_BYTES: Final = 1024 * 1024  # a full retry message (SQS's limit)


def chunks(payload_bytes: int) -> int:
    """Billed requests (SQS) or events (EventBridge) for one payload: one per 64 KB or part."""
    return max(1, math.ceil(payload_bytes / CHUNK_BYTES))


def lambda_dollars(invocations: float, seconds: float, memory_mb: int) -> float:
    """Requests plus duration, each invocation billed to the millisecond above."""
    billed = max(0.001, math.ceil(seconds * 1000 - 1e-9) / 1000)
    return invocations * (LAMBDA_REQUEST + billed * memory_mb / 1024 * LAMBDA_ARM_GB_SECOND)


def data_out_dollars(bytes_per_event: int, *, copies: int = 1, events: int = MILLION) -> float:
    """Internet egress for `events` events, each sent `copies` times."""
    return events * bytes_per_event * copies / GB * DATA_OUT_PER_GB


@dataclass(frozen=True)
class CostRow:
    """Dollars per million events along one route, by service."""

    route: str
    scenario: str
    invocations: float
    seconds: float
    memory_mb: int
    lambda_: float
    front: float  # API Gateway, or EventBridge's partner events
    sqs: float
    data_out: float

    @property
    def total(self) -> float:
        return self.lambda_ + self.front + self.sqs + self.data_out


def webhook(batch_size: int, seconds: float, *, event_bytes: int = EVENT_BYTES) -> CostRow:
    """Segment -> API Gateway -> webhook -> Raindrop; secrets cached, no SQS when healthy."""
    invocations = MILLION / batch_size
    return CostRow(
        route="Segment → webhook",
        scenario=f"batches of {batch_size:,}",
        invocations=invocations,
        seconds=seconds,
        memory_mb=WEBHOOK_MEMORY_MB,
        lambda_=lambda_dollars(invocations, seconds, WEBHOOK_MEMORY_MB),
        front=invocations * API_GATEWAY_REST_REQUEST,
        sqs=0.0,
        data_out=data_out_dollars(event_bytes),
    )


def mirror(
    items_per_request: int, seconds: float = MIRROR_SECONDS, *, event_bytes: int = EVENT_BYTES
) -> CostRow:
    """Raindrop's SDK -> API Gateway -> mirror -> Raindrop and Segment: every byte out twice."""
    invocations = MILLION / items_per_request
    return CostRow(
        route="SDK → mirror",
        scenario=f"{items_per_request} per request",
        invocations=invocations,
        seconds=seconds,
        memory_mb=WEBHOOK_MEMORY_MB,
        lambda_=lambda_dollars(invocations, seconds, WEBHOOK_MEMORY_MB),
        front=invocations * API_GATEWAY_REST_REQUEST,
        sqs=0.0,
        data_out=data_out_dollars(event_bytes, copies=2),
    )


def intake_sqs_requests_per_event(event_bytes: int, *, receive_max: int = SQS_RECEIVE_MAX) -> float:
    """EventBridge sends each event alone (one SendMessage); Lambda's poller receives and
    deletes up to 10 at a time, the receive billed by the chunks of all it returns."""
    message = event_bytes + ENVELOPE_BYTES
    send = chunks(message)
    receive = chunks(message * receive_max) / receive_max
    delete = 1 / receive_max
    return send + receive + delete


def eventbridge(
    seconds: float, *, batch_size: int = EVENTBRIDGE_BATCH, event_bytes: int = EVENT_BYTES
) -> CostRow:
    """Segment -> partner event bus -> rule -> intake queue -> consumer -> Raindrop."""
    invocations = MILLION / batch_size
    return CostRow(
        route="Segment → EventBridge intake",
        scenario=f"batches of {batch_size:,}",
        invocations=invocations,
        seconds=seconds,
        memory_mb=WORKER_MEMORY_MB,
        lambda_=lambda_dollars(invocations, seconds, WORKER_MEMORY_MB),
        front=MILLION * chunks(event_bytes + ENVELOPE_BYTES) * EVENTBRIDGE_PARTNER_EVENT,
        sqs=MILLION * intake_sqs_requests_per_event(event_bytes) * SQS_REQUEST,
        data_out=data_out_dollars(event_bytes),
    )


def retry_requests_per_message(message_bytes: int = RETRY_MESSAGE_BYTES) -> int:
    """SendMessage and ReceiveMessage carry the body (one request per 64 KB); the delete
    carries a receipt handle."""
    return chunks(message_bytes) * 2 + 1


def retried(*, event_bytes: int = EVENT_BYTES, message_bytes: int = RETRY_MESSAGE_BYTES) -> CostRow:
    """What a million events that fail once add: full retry messages through SQS, then sent
    again (the retry worker's run time is not measured)."""
    messages = MILLION * event_bytes / message_bytes
    return CostRow(
        route="retry, on top",
        scenario=f"{message_bytes // 1024:,} KiB messages",
        invocations=math.nan,
        seconds=math.nan,
        memory_mb=WORKER_MEMORY_MB,
        lambda_=math.nan,
        front=0.0,
        sqs=messages * retry_requests_per_message(message_bytes) * SQS_REQUEST,
        data_out=data_out_dollars(event_bytes),
    )


def rows(by_size: Mapping[int, float]) -> list[CostRow]:
    """Every route, from the webhook's measured seconds per batch size."""
    table = [webhook(size, seconds) for size, seconds in sorted(by_size.items())]
    table += [mirror(SDK_BATCH), mirror(1)]
    if EVENTBRIDGE_BATCH in by_size:
        table.append(eventbridge(by_size[EVENTBRIDGE_BATCH]))
    table.append(retried())
    return table


# Where the section goes in docs/benchmarks.md.
HEADING: Final = "## 5. Cost per million events"
MARK_START: Final = "<!-- cost: written by bench/cost.py -->"
MARK_END: Final = "<!-- /cost -->"
DOC: Final = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _dollars(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _row(row: CostRow) -> str:
    measured = "–" if math.isnan(row.seconds) else f"{row.seconds:.3f} s at {row.memory_mb:,} MB"
    invocations = "–" if math.isnan(row.invocations) else f"{row.invocations:,.0f}"
    return (
        f"| {row.route} | {row.scenario} | {invocations} | {measured} | {_dollars(row.lambda_)}"
        f" | {_dollars(row.front)} | {_dollars(row.sqs)} | {_dollars(row.data_out)}"
        f" | **{_dollars(row.total if not math.isnan(row.lambda_) else row.sqs + row.data_out)}** |"
    )


def section(table: Sequence[CostRow], *, sample_bytes_per_event: float) -> list[str]:
    """The report's section 5, between its markers."""
    full = retry_requests_per_message()
    return [
        MARK_START,
        HEADING,
        "",
        f"Dollars per million events at {PRICES_AS_OF}, from AWS's pricing",
        "pages for Lambda, API Gateway, SQS, EventBridge and data transfer (verify before relying",
        f"on them): Lambda arm64 ${LAMBDA_ARM_GB_SECOND:.10f} per GB-s and"
        f" ${LAMBDA_REQUEST * MILLION:.2f} per million requests;",
        f"API Gateway REST ${API_GATEWAY_REST_REQUEST * MILLION:.2f} per million requests;"
        f" SQS ${SQS_REQUEST * MILLION:.2f} per million requests, each 64 KB of",
        "a request's payload billed as one request; EventBridge"
        f" ${EVENTBRIDGE_PARTNER_EVENT * MILLION:.2f} per million partner events",
        "(each 64 KB one event; its rules and their delivery to SQS are free); data transfer out",
        f"to the internet ${DATA_OUT_PER_GB:.2f} per GB (the first 10 TB of a month; GB taken as"
        " 10⁹ bytes; transfer",
        "in is free). Assumptions:",
        "",
        f"- **{EVENT_BYTES / 1000:.0f} KB sent per event** to Raindrop (in the mirror, the same"
        " to Segment as well), for AI",
        "  events with real prompts and answers. This benchmark's short sample chats map to"
        f" {sample_bytes_per_event / 1000:.2f} KB",
        "  per event. Data transfer out scales with the size; below 64 KB nothing else here does.",
        "- **Seconds per invocation**: the webhook's, measured end to end with a 50 ms receiver",
        "  (section 2's set-up) per Segment batch size. The EventBridge consumer maps, chunks and",
        f"  delivers its batches of {EVENTBRIDGE_BATCH} the same way, so it takes the webhook's"
        f" {EVENTBRIDGE_BATCH}-event figure at",
        f"  its {WORKER_MEMORY_MB} MB (half the CPU: it may run longer). The mirror's"
        f" {MIRROR_SECONDS} s is an estimate, not",
        "  measured: a call to Raindrop, then one to Segment.",
        "- Healthy traffic: secrets are cached, nothing is queued for retry. Cold starts"
        " (section 3)",
        "  are billed too but rare. CloudWatch Logs, X-Ray, DynamoDB (the mirror's partial events)",
        "  and the fixed monthly costs are in"
        " [deploy.md](deploy.md#9-what-it-costs-per-million-events).",
        f"- EventBridge: one SQS SendMessage per event ({ENVELOPE_BYTES} bytes of envelope"
        " around it); Lambda's",
        f"  poller receives and deletes {SQS_RECEIVE_MAX} messages per request. Its empty long"
        " polls are a fixed",
        "  monthly cost, whatever the volume.",
        f"- Retry: a full {RETRY_MESSAGE_BYTES // 1024:,} KiB retry message costs {full} SQS"
        f" requests ({chunks(RETRY_MESSAGE_BYTES)} to send,",
        f"  {chunks(RETRY_MESSAGE_BYTES)} to receive, 1 to delete) and its events go out to"
        " Raindrop again; the row",
        "  is on top of the route's (the retry worker's run time is not measured).",
        "",
        "| route | scenario | invocations | seconds per invocation | Lambda $"
        " | API Gateway or EventBridge $ | SQS $ | data out $ | total $ |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_row(row) for row in table),
        "",
        "Once Segment batches, data transfer out is the largest line of the webhook's route; the",
        "mirror pays it twice. The EventBridge intake costs more than the batched webhook: each",
        "event is a partner event and an SQS message before the consumer batches them.",
        MARK_END,
    ]


def write_into(doc: Path, lines: Sequence[str]) -> None:
    """Puts the section in place of the one `doc` holds (between the markers, or, in a report
    written before they existed, from the heading to the next section)."""
    text = doc.read_text(encoding="utf-8")
    block = "\n".join(lines)
    if MARK_START in text:
        before, rest = text.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
    else:
        before, rest = text.split(HEADING, 1)
        after = "\n\n## " + rest.split("\n## ", 1)[1]
        before = before.rstrip("\n") + "\n\n"
    doc.write_text(before + block + after, encoding="utf-8")


def sample_bytes_per_event(events: int = 1_000) -> float:
    """What the forwarder sends Raindrop per event of the benchmark's sample traffic."""
    from bench import workload  # noqa: PLC0415 - the arithmetic above needs none of this
    from segment_raindrop.core.chunking import ChunkBuilder  # noqa: PLC0415
    from segment_raindrop.core.config import MappingConfig  # noqa: PLC0415
    from segment_raindrop.core.mapping.mapper import map_events  # noqa: PLC0415
    from segment_raindrop.core.segment_body import parse_body  # noqa: PLC0415

    mapped = map_events(parse_body(workload.body(events)).events, MappingConfig())
    builder = ChunkBuilder(max_items=100, max_bytes=10_000_000)
    built = [chunk for item in mapped.items if (chunk := builder.add(item.endpoint, item))]
    built += builder.flush()
    return sum(len(chunk.body) for chunk in built) / events


def measure() -> tuple[dict[int, float], float]:
    """The webhook's seconds per batch size (50 ms receiver), and the sample's bytes out."""
    from bench import endtoend, inprocess  # noqa: PLC0415

    return endtoend.ours_by_size(inprocess.SIZES, latency=0.05), sample_bytes_per_event()


def main(argv: list[str]) -> int:
    by_size, sample = measure()
    lines = section(rows(by_size), sample_bytes_per_event=sample)
    print("\n".join(lines))
    if "--write" in argv:
        write_into(DOC, lines)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
