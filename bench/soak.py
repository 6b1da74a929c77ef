"""`make soak`: local mode under randomized traffic and faults, then healed, then accounted for.

For ``SOAK_SECONDS`` (default 120) a Segment-like client posts batches of 1-500 events (the AI
event mix plus hostile text, :mod:`bench.soak_traffic`) to local mode's webhook, resending on
5xx and dropped connections as Segment does, while a chaos loop keeps changing how Raindrop
behaves (healthy, 5xx, 429 with Retry-After, hanging, dropping connections, refusing single
items) and how often SQS refuses the forwarder's calls (:mod:`bench.sqs_chaos`).

One event in ten is one Raindrop refuses for good, whatever the chaos does.

At the same time Raindrop's own SDK (``raindrop-ai``, tracing on) posts through the mirror from
a process of its own (:mod:`bench.soak_sdk`): interactions begun and finished (partial events,
some with a pending patch sent first, and a tool span each), AI events and feedback signals,
while the chaos also takes Segment down ("segment-down"). Every SDK item the stack answered 2xx
must reach Raindrop and be in Segment's copy (an interaction with every patch's fields); items
refused to the SDK (503) and dropped by it are counted apart.

Then everything heals: Raindrop answers, SQS accepts, the retry worker drains its queue and the
dead-letter queue is replayed (and what that re-queues drained again). The verdict: every
forwardable event delivered, every invalid one in the dead-letter queue with reason
``invalid``, every refused one there as ``rejected``, nothing filtered showing up anywhere, none
unaccounted, and none dead-lettered as ``rejected`` that Raindrop had not refused on its own.
A summary table is printed; the exit status is non-zero if anything was lost.
"""

from __future__ import annotations

import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import soak_sdk
from bench.soak_sdk import SDK_PREFIX, SdkVerdict
from bench.soak_traffic import REFUSED_PREFIX, Traffic, Verdict, judge, markers
from bench.sqs_chaos import SqsChaos
from segment_raindrop.core.codec import loads
from segment_raindrop.core.config import DeliveryConfig
from segment_raindrop.core.queue_message import QueueMessage
from segment_raindrop.service.replay.options import ReplayOptions
from segment_raindrop.service.replay.replayer import Replayer
from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.mode import LocalMode
from segment_raindrop_tools.local.options import LocalOptions
from segment_raindrop_tools.local.queues import peek_messages, queue_depth
from segment_raindrop_tools.local.receiver import RaindropReceiver
from segment_raindrop_tools.local.segment_tracking import SegmentTrackingApi
from segment_raindrop_tools.local.wiring import HANDLERS

DEFAULT_SECONDS = 120
# How long the healed system gets to empty the retry queue before the verdict: a message's
# back-off grows to about two minutes by its last receive (RETRY_BASE_DELAY 1 s, doubling).
DRAIN_LIMIT_SECONDS = 300.0
RETRY_VISIBILITY_SECONDS = 10
# The SDK's process ends its traffic with the Segment traffic, then flushes and shuts down.
SDK_EXIT_SECONDS = 120
# A Segment-like client: resend a refused request this often before giving up on it (Segment
# itself retries for four hours).
RESENDS = 60
# The forwarder's delivery settings for the soak: the deployed ones, with a shorter budget and
# breaker cool-down so outages come and go many times in a short run.
SOAK_DELIVERY = DeliveryConfig(
    budget_seconds=2.0,
    read_timeout_seconds=1.0,
    connect_timeout_seconds=1.0,
    backoff_base_seconds=0.05,
    backoff_cap_seconds=0.2,
    retry_after_cap_seconds=1.0,
    breaker_cooldown_seconds=1.0,
)

Say = Callable[[str], None]


@dataclass
class SoakResult:
    verdict: Verdict
    requests: int
    resends: int
    unanswered: int
    statuses: Counter[str]
    raindrop_faults: Counter[str]
    sqs_refused: int
    replayed_messages: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    # Raindrop's SDK through the mirror (None: the SDK is not installed).
    sdk: SdkVerdict | None = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Chaos:
    """Changes Raindrop's, Segment's and SQS's behaviour every 0.5-2 s until stopped."""

    MODES = (
        "healthy", "5xx", "429", "hang", "drop", "refuse-items", "sqs-refuses", "segment-down",
    )  # fmt: skip

    def __init__(
        self, receiver: RaindropReceiver, segment: SegmentTrackingApi, sqs: SqsChaos, seed: int
    ) -> None:
        self._receiver = receiver
        self._segment = segment
        self._sqs = sqs
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self.modes: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name="soak-chaos", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._calm()

    def _calm(self) -> None:
        self._segment.heal()
        self._receiver.heal()
        self._receiver.set_latency(0)
        self._receiver.refuse_items(refused_for_good)
        self._sqs.refusal_rate = 0.0

    def _run(self) -> None:
        cycle: list[str] = []
        while not self._stop.is_set():
            self._calm()
            if not cycle:  # every mode once per cycle, in a random order
                cycle = list(self.MODES)
                self._random.shuffle(cycle)
            mode = cycle.pop()
            self.modes[mode] += 1
            if mode == "5xx":
                self._receiver.outage(Fault(status=self._random.choice((500, 502, 503))))
            elif mode == "429":
                self._receiver.outage(Fault(status=429, retry_after="1"))
            elif mode == "hang":
                self._receiver.outage(Fault(delay=1.5))  # past the 1 s read timeout
            elif mode == "drop":
                self._receiver.outage(Fault(drop=True))
            elif mode == "refuse-items":
                self._receiver.refuse_items(_refuse_some(self._random.randrange(1_000)))
            elif mode == "sqs-refuses":
                # With Raindrop failing too, so that the webhook has events to queue.
                self._receiver.outage(Fault(status=503))
                self._sqs.refusal_rate = self._random.choice((0.3, 0.7, 1.0))
            elif mode == "segment-down":
                # The mirror's copies queue for the retry worker; Raindrop is failing too.
                self._segment.outage(Fault(status=self._random.choice((500, 503))))
                self._receiver.outage(Fault(status=503))
            self._stop.wait(self._random.uniform(0.5, 2.0))


def refused_for_good(_endpoint: str, item: dict[str, Any]) -> bool:
    """Raindrop's refusal of the events the traffic marks to be refused, whatever the chaos."""
    return str(item.get("event_id") or "").startswith(REFUSED_PREFIX)


def _refuse_some(salt: int) -> Callable[[str, dict[str, Any]], bool]:
    # About one item in twenty, besides those refused for good: which ones changes with the salt.
    def refuse(endpoint: str, item: dict[str, Any]) -> bool:
        key = str(item.get("event_id") or item.get("user_id") or "")
        if key.startswith(SDK_PREFIX):
            # The SDK's items are accounted as delivered: Raindrop's refusals are the
            # Segment traffic's to test.
            return False
        return refused_for_good(endpoint, item) or hash((key, salt)) % 20 == 0

    return refuse


class _Segment:
    """Posts batches the way Segment's webhook destination does: resend on 5xx and transport
    errors, give up on 4xx."""

    def __init__(self, url: str, token: str) -> None:
        self._client = httpx.Client(timeout=15.0, trust_env=False)
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.requests = 0
        self.resends = 0
        self.unanswered = 0
        self.statuses: Counter[str] = Counter()

    def send(self, body: str, *, give_up_at: float) -> None:
        for attempt in range(RESENDS):
            self.requests += 1
            self.resends += attempt > 0
            try:
                response = self._client.post(self._url, content=body, headers=self._headers)
            except httpx.HTTPError:
                self.statuses["transport error"] += 1
            else:
                self.statuses[str(response.status_code)] += 1
                if response.status_code < 500:
                    return
            if time.monotonic() > give_up_at:
                break
            time.sleep(min(0.1 * 2**attempt, 2.0))
        self.unanswered += 1

    def close(self) -> None:
        self._client.close()


def run(seconds: float, *, seed: int = 7, say: Say = print, with_sdk: bool = True) -> SoakResult:
    started = time.monotonic()
    phases: dict[str, float] = {}
    moto_port = _free_port()
    sqs = SqsChaos(f"http://127.0.0.1:{moto_port}", seed=seed).start()
    with tempfile.TemporaryDirectory(prefix="soak-") as data:
        options = LocalOptions(
            port=0,
            data_dir=Path(data),
            moto_port=moto_port,
            retry_base_delay_seconds=1,
            retry_poll_seconds=0,
            resource_prefix=f"soak-{seed}",
            delivery=SOAK_DELIVERY,
            sqs_endpoint=sqs.url,
        )
        local = LocalMode(options, echo=lambda _line: None).start()
        try:
            # A retry message whose back-off could not be set (SQS refusing) comes back after the
            # queue's visibility timeout, 6 min as deployed: shortened so the healed system
            # drains within the soak. Nothing else about the queue changes.
            local.resources.sqs_client().set_queue_attributes(
                QueueUrl=local.endpoints.retry_queue_url,
                Attributes={"VisibilityTimeout": str(RETRY_VISIBILITY_SECONDS)},
            )
            receiver = local.receiver
            assert receiver is not None
            traffic = Traffic(seed)
            segment = _Segment(local.endpoints.webhook_url, local.endpoints.webhook_token)
            segment_api = local.segment
            assert segment_api is not None
            chaos = _Chaos(receiver, segment_api, sqs, seed)
            rng = random.Random(seed)
            say(f"soak: {seconds:g} s of traffic under faults ...")
            chaos.start()
            sdk_ledger = Path(data) / "sdk-ledger.json"
            sdk = _start_sdk(local, seconds, seed, sdk_ledger) if with_sdk else None
            traffic_ends = time.monotonic() + seconds
            while time.monotonic() < traffic_ends:
                size = rng.choice((1, 2, 5, 20, 100, rng.randint(1, 500)))
                segment.send(traffic.batch(size), give_up_at=traffic_ends + 60)
            if sdk is not None:
                _finish_sdk(sdk)
            chaos.stop()
            phases["traffic"] = time.monotonic() - started
            say("soak: healed; draining the retry queue ...")
            drained = _drain(local, DRAIN_LIMIT_SECONDS)
            phases["drain"] = time.monotonic() - started - phases["traffic"]
            if not drained:
                say("soak: the retry queue did not empty in time")
            dead_before_replay = _dead_letters(local)
            say("soak: replaying the dead-letter queue ...")
            replayed = _replay()
            _drain(local, DRAIN_LIMIT_SECONDS)  # what the replay left still being isolated
            phases["replay"] = time.monotonic() - started - phases["traffic"] - phases["drain"]
            dead_letters = _dead_letters(local)
            verdict = judge(
                traffic.ledger,
                _accepted(receiver),
                dead_letters,
                refused_alone=_refused_alone(receiver),
                dead_before_replay=dead_before_replay,
            )
            segment.close()
            sdk_verdict = _judge_sdk(local, sdk_ledger) if sdk is not None else None
            return SoakResult(
                verdict=verdict,
                requests=segment.requests,
                resends=segment.resends,
                unanswered=segment.unanswered,
                statuses=segment.statuses,
                raindrop_faults=chaos.modes,
                sqs_refused=sqs.refused,
                replayed_messages=replayed,
                seconds=time.monotonic() - started,
                phases=phases,
                sdk=sdk_verdict,
            )
        finally:
            local.stop()
            sqs.stop()


def _start_sdk(local: LocalMode, seconds: float, seed: int, ledger: Path) -> subprocess.Popen[str]:
    """Raindrop's SDK posting through the mirror for ``seconds``, in its own process."""
    endpoint = local.endpoints.raindrop_sdk_endpoint
    key = local.endpoints.raindrop_api_key
    assert endpoint is not None
    assert key is not None
    return subprocess.Popen(  # our own module, with our own arguments
        [sys.executable, "-m", soak_sdk.__name__, endpoint, key, str(seconds), str(seed),
         str(ledger)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip


def _finish_sdk(sdk: subprocess.Popen[str]) -> None:
    _, errors = sdk.communicate(timeout=SDK_EXIT_SECONDS)
    if sdk.returncode != 0:
        raise RuntimeError(f"the SDK's traffic failed: {errors[-2000:]}")


def _judge_sdk(local: LocalMode, ledger: Path) -> SdkVerdict:
    receiver = local.receiver
    segment_api = local.segment
    assert receiver is not None
    assert segment_api is not None
    exports = [e for e in local.exchanges if e.path == "/v1/traces"]
    return soak_sdk.judge(
        json.loads(ledger.read_text(encoding="utf-8")),
        raindrop={
            endpoint: receiver.accepted(endpoint)
            for endpoint in ("events/track", "events/track_partial", "signals/track")
        },
        segment_events=segment_api.accepted_events(),
        span_names=_span_names(receiver),
        span_exports_ok=all(200 <= e.status < 300 for e in exports),
    )


def _span_names(receiver: RaindropReceiver) -> set[str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceRequest,
    )

    names: set[str] = set()
    for request in receiver.requests_to("traces"):
        if request.status != 200 or request.body is None:
            continue
        export = ExportTraceServiceRequest()
        try:
            export.ParseFromString(request.body)
        except Exception:  # OTLP JSON (tool spans without tracing): not protobuf
            continue
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                names.update(span.name for span in scope.spans)
    return names


def _drain(local: LocalMode, limit: float) -> bool:
    sqs = local.resources.sqs_client()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if queue_depth(sqs, local.endpoints.retry_queue_url) == 0:
            return True
        time.sleep(0.5)
    return False


def _replay() -> int:
    # The replay Lambda's own runtime, as local mode installed it (clients bound to the
    # emulator, the healed SQS path).
    replay_runtime = HANDLERS[2].get()
    total = 0
    for _ in range(5):  # a partly replayed message comes back as a new one: go round again
        summary = Replayer.from_runtime(
            replay_runtime, ReplayOptions(wait_seconds=0, message_budget_seconds=5)
        ).run()
        total += summary.messages_deleted
        if summary.messages_deleted == 0:
            break
    return total


def _dead_letters(local: LocalMode) -> list[tuple[str, Any]]:
    sqs = local.resources.sqs_client()
    found: list[tuple[str, Any]] = []
    for message in peek_messages(sqs, local.endpoints.dlq_url):
        parsed = QueueMessage.model_validate(loads(message["Body"]))
        found += [(parsed.reason.value, event) for event in parsed.events]
        found += [(parsed.reason.value, summary) for summary in parsed.omitted]
    return found


def _refused_alone(receiver: RaindropReceiver) -> set[str]:
    """The markers of the items Raindrop refused in a request of their own."""
    alone: set[str] = set()
    for request in receiver.requests:
        if request.status in (400, 422) and request.items is not None and len(request.items) == 1:
            alone |= markers(json.dumps(request.items[0]))
    return alone


def _accepted(receiver: RaindropReceiver) -> dict[str, list[dict[str, Any]]]:
    return {
        endpoint: receiver.accepted(endpoint)
        for endpoint in ("events/track", "signals/track", "users/identify")
    }


def table(result: SoakResult) -> str:
    verdict = result.verdict
    rows = [
        ("events sent", verdict.sent),
        ("delivered to Raindrop", verdict.delivered),
        ("delivered more than once (extra copies)", verdict.duplicates),
        ("dead-lettered as invalid (expected)", verdict.dead_lettered),
        ("dead-lettered as rejected, refused for good (expected)", verdict.refused),
        ("filtered (expected)", verdict.filtered),
        ("lost", len(verdict.lost)),
        ("misplaced (filtered or refused, but found)", len(verdict.misplaced)),
        ("rejected without being refused on its own", len(verdict.rejected_with_a_neighbour)),
    ]
    width = max(len(label) for label, _ in rows)
    lines = ["", "| outcome | events |", "| --- | ---: |"]
    lines += [f"| {label:<{width}} | {value} |" for label, value in rows]
    lines += [
        "",
        f"webhook requests {result.requests} ({result.resends} resends, "
        f"{result.unanswered} given up), answers {dict(sorted(result.statuses.items()))}",
        f"chaos modes {dict(sorted(result.raindrop_faults.items()))}, "
        f"SQS calls refused {result.sqs_refused}, dead-letter messages replayed "
        f"{result.replayed_messages}",
        f"by kind {dict(sorted(verdict.by_kind.items()))}",
        f"took {result.seconds:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in result.phases.items())})",
    ]
    if result.sdk is not None:
        lines += sdk_table(result.sdk)
    if verdict.lost:
        lines.append(f"lost (first 20): {verdict.lost[:20]}")
    duplicate_rate = verdict.duplicates / max(verdict.delivered, 1)
    lines.append(f"duplicate rate {duplicate_rate:.2%}")
    lost = len(verdict.lost) + len(verdict.misplaced) + result.unanswered
    if verdict.rejected_with_a_neighbour:
        lines.append(
            f"rejected with a neighbour (first 20): {verdict.rejected_with_a_neighbour[:20]}"
        )
    lines.append(f"{lost} lost events")
    return "\n".join(lines)


def sdk_table(sdk: SdkVerdict) -> list[str]:
    """The SDK traffic's rows: what the stack acknowledged, and where it got."""
    acknowledged = sum(sdk.acknowledged.values())
    rows = [
        ("SDK items acknowledged (2xx) by the stack", acknowledged),
        ("  at Raindrop", sdk.at_raindrop),
        ("  lost for Raindrop", len(sdk.lost_raindrop)),
        ("  that Segment gets a copy of (all but pending patches)", sdk.for_segment),
        ("  in Segment", sdk.at_segment),
        ("  lost for Segment", len(sdk.lost_segment)),
        ("  not in Segment, the stack's answer said so (mirror_unkept)", len(sdk.unkept_reported)),
        ("SDK items refused (503) and dropped by the SDK", sdk.refused_to_the_sdk),
        ("spans sent (tracing on)", sdk.spans_sent),
        ("  at Raindrop", sdk.spans_at_raindrop),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    lines = ["", "| Raindrop SDK through the mirror | items |", "| --- | ---: |"]
    lines += [f"| {label:<{width}} | {value} |" for label, value in rows]
    lines.append(
        f"SDK sent {dict(sorted(sdk.sent.items()))}, acknowledged by kind "
        f"{dict(sorted(sdk.acknowledged.items()))}; span exports all answered 2xx: "
        f"{sdk.spans_all_acknowledged}"
    )
    for label, lost in (("Raindrop", sdk.lost_raindrop), ("Segment", sdk.lost_segment)):
        if lost:
            lines.append(f"SDK items lost for {label} (first 20): {lost[:20]}")
    lines.append(
        f"SDK: {len(sdk.lost_raindrop)} lost for Raindrop, {len(sdk.lost_segment)} lost for Segment"
    )
    return lines


REPORT = Path(__file__).resolve().parent.parent / "docs" / "soak.md"


def report(result: SoakResult, seconds: float) -> str:
    """docs/soak.md: the last run's table, which docs/benchmarks.md includes."""
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    return (
        f"Last `make soak SOAK_SECONDS={seconds:g}` ({datetime.now(UTC):%Y-%m-%d}, {machine}): "
        f"{seconds:g} s of random batches of 1-500 events under faults, with Raindrop's SDK "
        "(`raindrop-ai`, tracing on) sending interactions, AI events and signals through the "
        "mirror at the same time, then healed, drained and replayed; every event's fate checked "
        "against a ledger, at Raindrop and in Segment (bench/soak.py, bench/soak_sdk.py).\n"
        + table(result)
        + "\n"
    )


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", DEFAULT_SECONDS))
    # The handlers' metrics are EMF lines on stdout, thousands of them here; this process is
    # the soak's own, so Powertools' switch turns them off (the summary is the output).
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    result = run(seconds)
    print(table(result), flush=True)
    REPORT.write_text(report(result, seconds), encoding="utf-8")
    ok = result.verdict.ok and result.unanswered == 0 and (result.sdk is None or result.sdk.ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
