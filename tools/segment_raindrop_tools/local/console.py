"""What local mode prints: the banner, then one timestamped line per thing that happens.

Lines carry counts, names, ids and statuses, never prompt or answer text or trait values.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from segment_raindrop_tools.item_summary import ENDPOINT_WIDTH, describe_item
from segment_raindrop_tools.item_summary import clean as _clean
from segment_raindrop_tools.local.apigw import SDK_API_PREFIX
from segment_raindrop_tools.local.options import LocalEndpoints

if TYPE_CHECKING:
    from segment_raindrop_tools.local.event_source import BatchRun
    from segment_raindrop_tools.local.front import Exchange

__all__ = ["Console", "Echo", "banner", "describe_item", "describe_segment_event"]

Echo = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


class Console:
    """Local mode's output, through ``echo`` (default: stdout); thread-safe."""

    def __init__(self, echo: Echo | None = None) -> None:
        self._echo = echo or _print
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        with self._lock:
            self._echo(f"{stamp}  {text}" if text else text)

    def exchange(self, exchange: Exchange) -> None:
        # The SDK API's requests (under its stage, /v1/...) or the webhook API's.
        api = "sdk-api" if exchange.path.startswith(f"{SDK_API_PREFIX}/") else "webhook"
        self.line(
            f"{api:<9} {exchange.method} {exchange.path} -> {exchange.status}  "
            f"{_describe_answer(exchange)}  ({exchange.duration_ms:.0f} ms)"
        )

    def webhook_failed(self, error: BaseException) -> None:
        self.line(f"webhook   the handler raised {type(error).__name__}: {_clean(str(error), 200)}")

    def retry_run(self, run: BatchRun) -> None:
        if run.delete_error is not None:
            self.line(
                f"retry     could not delete settled messages: {type(run.delete_error).__name__}"
            )
        if run.error is not None:
            error = f"{type(run.error).__name__}: {run.error}"
            self.line(
                f"retry     the worker failed ({_clean(error, 200)}); its {run.received} "
                "message(s) come back after the queue's visibility timeout"
            )
            return
        self.line(
            f"retry     {run.received} message(s): {run.deleted} settled, "
            f"{run.failed} back on the queue for a later attempt"
        )

    def intake_run(self, run: BatchRun) -> None:
        if run.error is not None:
            error = f"{type(run.error).__name__}: {run.error}"
            self.line(
                f"eventbridge the consumer failed ({_clean(error, 200)}); its {run.received} "
                "record(s) come back after the queue's visibility timeout"
            )
            return
        self.line(
            f"eventbridge {run.received} record(s): {run.deleted} settled, "
            f"{run.failed} back on the intake queue"
        )

    def poll_failed(self, error: BaseException) -> None:
        self.line(f"retry     could not poll the retry queue: {type(error).__name__}")

    def accepted(self, endpoint: str, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.line(f"raindrop  {endpoint:<{ENDPOINT_WIDTH}} {describe_item(endpoint, item)}")

    def mirrored(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.line(f"segment   {describe_segment_event(event)}")


def describe_segment_event(event: Mapping[str, Any]) -> str:
    """One line about an event the mirror sent Segment: its type, name, user and ids."""
    kind = str(event.get("type") or "?")
    name = _clean(event.get("event") or "", 28) if kind == "track" else ""
    properties = event.get("properties")
    parts = [f"{kind:<{ENDPOINT_WIDTH}} {name:<28}"]
    user = event.get("userId") or event.get("anonymousId")
    if user:
        parts.append(f"user={_clean(user, 32)}")
    trace_id = properties.get("trace_id") if isinstance(properties, dict) else None
    if trace_id:
        parts.append(f"trace_id={_clean(trace_id, 40)}")
    traits = event.get("traits")
    if isinstance(traits, dict):
        parts.append(f"{len(traits)} traits")
    return "  ".join(parts).rstrip()


def _describe_answer(exchange: Exchange) -> str:
    answer = exchange.answer or {}
    keys = (
        "received",
        "forwarded",
        "filtered",
        "queued",
        "dead_lettered",
        "unqueued",
        "mirrored",
    )
    if "received" in answer:
        return "  ".join(f"{key}={answer[key]}" for key in keys if key in answer)
    return _clean(answer.get("error") or answer.get("message") or "", 80)


def banner(ep: LocalEndpoints) -> str:
    """What local mode prints once it runs: where everything is and how to use it."""
    if ep.local_receiver:
        raindrop = f"local stand-in at {ep.raindrop_url} (items saved to {ep.items_file})"
    else:
        raindrop = f"{ep.raindrop_url} (the real thing, with your Raindrop API key)"
    exports = " \\\n    ".join(
        f"{name}={shlex.quote(value)}" for name, value in ep.replay_environment().items()
    )
    rows = [
        ("Webhook endpoint", ep.webhook_url),
        ("Segment libraries", f"host={ep.tracking_api_host}  write key=the webhook token"),
        ("Webhook token", ep.webhook_token),
        ("Shared secret", ep.shared_secret),
        ("Raindrop", raindrop),
        ("AWS (moto)", ep.moto_endpoint),
        ("EventBridge source", f"{ep.eventbridge_source}  (send-sample --via eventbridge)"),
        ("Retry queue", ep.retry_queue_url),
        ("Dead-letter queue", ep.dlq_url),
        ("State file", ep.state_file),
    ]
    lines = [
        "",
        "segment-raindrop local mode is running on 127.0.0.1 (Ctrl-C to stop)",
        "",
        *(f"  {label:<18} {value}" for label, value in rows),
        "",
        "Send an event (paste into another terminal):",
        "",
        ep.curl(),
        "",
        "or a whole AI conversation:  segment-raindrop send-sample",
        "",
        *_sdk_lines(ep),
        f"To run `segment-raindrop replay` against this instance: source {ep.env_file}",
        "(or export these yourself):",
        "",
        f"  export {exports}",
        "",
        "Waiting for events...",
        "",
    ]
    return "\n".join(lines)


def _sdk_lines(ep: LocalEndpoints) -> list[str]:
    """How to point Raindrop's Python SDK at local mode (Raindrop -> Segment, the mirror)."""
    if not ep.raindrop_sdk_endpoint:
        return []
    return [
        "Raindrop's SDK (Raindrop -> Segment): forwarded to Raindrop, mirrored to the local",
        f"Segment stand-in at {ep.segment_api_url} (events saved to {ep.segment_events_file}):",
        "",
        "  import raindrop.analytics as raindrop",
        "  raindrop.init(",
        f"      api_key={ep.raindrop_api_key or '<your Raindrop API key>'!r},",
        f"      endpoint={ep.raindrop_sdk_endpoint!r},",
        "      local_workshop_url=None,",
        "      tracing_enabled=True,  # spans go to <host>/v1/traces: forwarded too",
        "  )",
        "",
    ]
