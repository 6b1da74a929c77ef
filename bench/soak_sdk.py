"""`make soak`'s Raindrop SDK traffic: Raindrop's own Python SDK (``raindrop-ai``) pointed at
local mode's SDK endpoint, through the mirror, while the soak's faults come and go.

It runs as its own process (``python -m bench.soak_sdk <endpoint> <key> <seconds> <seed>
<ledger.json>``): the SDK's state, flush thread and trace pipeline are process-global. For
``seconds`` it sends, with tracing on:

- interactions: ``begin()``, properties set while pending, a tool span, ``finish()`` (partial
  events, ``events/track_partial``; the span goes to ``/v1/traces``);
- AI events (``track_ai``, ``events/track``);
- feedback signals on earlier events (``signals/track``).

Every item carries a marker (its event id, or event id + signal name; a span its name). The SDK's
own HTTP calls are observed (its ``requests`` module, wrapped to record each answer), so the
ledger says which items the stack *acknowledged* (answered 2xx): those must reach Raindrop and
Segment. An item never acknowledged was refused to the SDK (503: neither delivered nor queued),
and the SDK dropped it after its 3 attempts: reported apart, the SDK's loss, not the stack's.
So are the Segment copies of a 2xx answer that says ``mirror_unkept`` (signals: a resend would
give Raindrop them twice, so the stack says so instead of asking for one).
Spans go through the OpenTelemetry exporter, which is not observed: :func:`judge` counts a
missing span as lost only when the stack answered every span export 2xx.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Every SDK item's id starts so (the soak's Raindrop never refuses these on purpose).
SDK_PREFIX = "soak-sdk"


class _Recorder:
    """The ``requests`` module as the SDK sees it: every post's items recorded as acknowledged
    (2xx) or not, the call itself unchanged."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.acknowledged: set[str] = set()
        self.refused: set[str] = set()
        # Items of 2xx answers saying some Segment copies could not be kept.
        self.unkept: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def post(self, url: str, *args: Any, json: Any = None, **kwargs: Any) -> Any:
        try:
            response = self._real.post(url, *args, json=json, **kwargs)
        except Exception:
            self.refused.update(item_markers(url, json))
            raise
        target = self.acknowledged if 200 <= response.status_code < 300 else self.refused
        target.update(item_markers(url, json))
        if target is self.acknowledged and _unkept(response):
            self.unkept.update(item_markers(url, json))
        return response


def _unkept(response: Any) -> bool:
    try:
        answer = response.json()
    except ValueError:
        return False
    return isinstance(answer, dict) and bool(answer.get("mirror_unkept"))


def item_markers(url: str, payload: Any) -> set[str]:
    """What identifies each item of an SDK request: ``kind:event_id[:more]``."""
    items = payload if isinstance(payload, list) else [payload]
    found: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("event_id"), str):
            continue
        event_id = item["event_id"]
        if url.endswith("events/track_partial"):
            found.add(
                f"partial:{event_id}:{'final' if item.get('is_pending') is False else 'pending'}"
            )
        elif url.endswith("signals/track"):
            found.add(f"signal:{event_id}:{item.get('signal_name')}")
        elif url.endswith("events/track"):
            found.add(f"event:{event_id}")
    return found


def _send(raindrop: Any, seconds: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    interactions: list[str] = []
    events: list[str] = []
    signals: list[str] = []
    spans: list[str] = []
    ends = time.monotonic() + seconds
    n = 0
    while time.monotonic() < ends:
        n += 1
        roll = rng.random()
        if roll < 0.6:
            event_id = f"{SDK_PREFIX}-int-{seed}-{n}"
            interaction = raindrop.begin(
                user_id=f"{SDK_PREFIX}-user-{n % 7}",
                event="ai_interaction",
                event_id=event_id,
                input=f"question {n}",
                model="soak-model",
            )
            interaction.set_properties({"soak_step": n})
            span_name = f"{SDK_PREFIX}-tool-{n}"
            span = interaction.start_span("tool", span_name)
            span.record_input({"q": n})
            span.end()
            spans.append(f"{span_name}.tool")
            if rng.random() < 0.5:
                # The pending patch sent before the finish (else the SDK folds it into the
                # finishing one); the SDK tries an explicit flush once.
                raindrop.flush()
            time.sleep(rng.uniform(0, 0.1))
            interaction.finish(output=f"answer {n}")
            interactions.append(event_id)
        elif roll < 0.85 or not (interactions or events):
            event_id = raindrop.track_ai(
                user_id=f"{SDK_PREFIX}-user-{n % 7}",
                event="ai_interaction",
                event_id=f"{SDK_PREFIX}-ev-{seed}-{n}",
                model="soak-model",
                input=f"prompt {n}",
                output=f"reply {n}",
                properties={"soak_step": n},
            )
            events.append(event_id)
        else:
            target = rng.choice(interactions + events)
            name = f"thumbs-{n}"
            raindrop.track_signal(
                event_id=target, name=name, signal_type="feedback", sentiment="NEGATIVE",
                comment=f"comment {n}",
            )  # fmt: skip
            signals.append(f"{target}:{name}")
        time.sleep(rng.uniform(0, 0.05))
    return {"interactions": interactions, "events": events, "signals": signals, "spans": spans}


def main(endpoint: str, api_key: str, seconds: float, seed: int, ledger: Path) -> None:
    import raindrop.analytics as raindrop  # noqa: PLC0415 - a development dependency

    recorder = _Recorder(raindrop.requests)
    raindrop.requests = recorder
    raindrop.init(api_key=api_key, endpoint=endpoint, local_workshop_url=None, tracing_enabled=True)
    sent = _send(raindrop, seconds, seed)
    raindrop.flush()
    raindrop.shutdown()
    sent["acknowledged"] = sorted(recorder.acknowledged)
    sent["refused"] = sorted(recorder.refused - recorder.acknowledged)
    sent["unkept"] = sorted(recorder.unkept)
    ledger.write_text(json.dumps(sent), encoding="utf-8")


# -- the verdict (in the soak's process) -------------------------------------------------------


@dataclass
class SdkVerdict:
    sent: dict[str, int] = field(default_factory=dict)
    # Items the stack answered 2xx for, by kind.
    acknowledged: dict[str, int] = field(default_factory=dict)
    # Items the SDK was refused (never answered 2xx) and dropped: the SDK's loss, counted apart.
    refused_to_the_sdk: int = 0
    at_raindrop: int = 0
    # Acknowledged items Segment gets a copy of: all but pending patches.
    for_segment: int = 0
    at_segment: int = 0
    lost_raindrop: list[str] = field(default_factory=list)
    lost_segment: list[str] = field(default_factory=list)
    # Acknowledged items whose Segment copy the stack said it could not keep, and is missing.
    unkept_reported: list[str] = field(default_factory=list)
    spans_sent: int = 0
    spans_at_raindrop: int = 0
    # Whether the stack answered every span export 2xx (a missing span is then lost).
    spans_all_acknowledged: bool = True

    @property
    def ok(self) -> bool:
        return not self.lost_raindrop and not self.lost_segment


def judge(
    ledger: dict[str, Any],
    *,
    raindrop: dict[str, list[dict[str, Any]]],
    segment_events: Iterable[dict[str, Any]],
    span_names: set[str],
    span_exports_ok: bool,
) -> SdkVerdict:
    """What became of the SDK's items: every acknowledged one at Raindrop and in Segment."""
    acknowledged = set(ledger["acknowledged"])
    unkept = set(ledger.get("unkept", []))
    verdict = SdkVerdict(
        sent={kind: len(ledger[kind]) for kind in ("interactions", "events", "signals")},
        refused_to_the_sdk=len(ledger["refused"]),
    )
    at_raindrop = _raindrop_markers(raindrop)
    latest = _latest_segment(segment_events)
    expected = _expected(ledger, acknowledged)
    verdict.acknowledged = {
        kind: sum(1 for marker, _ in expected if marker.startswith(f"{kind}:"))
        for kind in ("partial", "event", "signal")
    }
    for marker, segment_check in expected:
        if marker in at_raindrop:
            verdict.at_raindrop += 1
        else:
            verdict.lost_raindrop.append(marker)
        if segment_check is None:
            continue
        in_segment = segment_check(latest)
        if not in_segment and marker in unkept:
            verdict.unkept_reported.append(marker)
            continue
        verdict.for_segment += 1
        if in_segment:
            verdict.at_segment += 1
        else:
            verdict.lost_segment.append(marker)
    verdict.spans_sent = len(ledger["spans"])
    verdict.spans_at_raindrop = len(set(ledger["spans"]) & span_names)
    verdict.spans_all_acknowledged = span_exports_ok
    if span_exports_ok:
        verdict.lost_raindrop += sorted(set(ledger["spans"]) - span_names)
    return verdict


Check = Any  # Callable[[dict[str, dict[str, Any]]], bool] | None


def _expected(ledger: dict[str, Any], acknowledged: set[str]) -> list[tuple[str, Check]]:
    expected: list[tuple[str, Check]] = []
    for event_id in ledger["interactions"]:
        step = int(event_id.rsplit("-", 1)[1])
        pending = f"partial:{event_id}:pending"
        if pending in acknowledged:
            expected.append((pending, None))  # Raindrop's; Segment's is the finished one
        final = f"partial:{event_id}:final"
        if final in acknowledged:
            expected.append((final, _interaction_in_segment(event_id, step)))
    for event_id in ledger["events"]:
        marker = f"event:{event_id}"
        if marker in acknowledged:
            expected.append((marker, lambda latest, e=event_id: e in latest))
    for signal in ledger["signals"]:
        marker = f"signal:{signal}"
        if marker in acknowledged:
            expected.append((marker, lambda latest, s=signal: f"signal:{s}" in latest))
    return expected


def _interaction_in_segment(event_id: str, step: int) -> Check:
    def check(latest: dict[str, dict[str, Any]]) -> bool:
        event = latest.get(event_id)
        if event is None:
            return False
        properties = event.get("properties") or {}
        ai_data = properties.get("ai_data") or {}
        return bool(
            properties.get("soak_step") == step
            and ai_data.get("output") == f"answer {step}"
            and ai_data.get("input") == f"question {step}"
        )

    return check


def _raindrop_markers(accepted: dict[str, list[dict[str, Any]]]) -> set[str]:
    found: set[str] = set()
    for endpoint, items in accepted.items():
        found |= item_markers(endpoint, items)
    return found


def _latest_segment(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Segment's copy of each AI event by trace id (its latest revision), and of each signal
    by ``signal:<trace id>:<name>``."""
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        properties = event.get("properties") or {}
        trace_id = properties.get("trace_id")
        if not isinstance(trace_id, str) or not trace_id.startswith(SDK_PREFIX):
            continue
        if "signal_name" in properties:
            latest[f"signal:{trace_id}:{properties['signal_name']}"] = event
            continue
        known = latest.get(trace_id)
        revision = properties.get("mirror_revision", 1)
        if known is None or revision >= (known.get("properties") or {}).get("mirror_revision", 1):
            latest[trace_id] = event
    return latest


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
