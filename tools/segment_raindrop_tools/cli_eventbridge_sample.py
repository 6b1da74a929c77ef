"""``send-sample --via eventbridge``: the sample conversation put on local mode's Segment partner
event source with ``PutPartnerEvents``, as Segment's Amazon EventBridge (Actions) destination
sends it; moto's EventBridge applies the stack's rule and local mode's EventBridge consumer
takes the intake queue from there."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import typer

from segment_raindrop_tools.cli_common import ExitCode, fail
from segment_raindrop_tools.local.aws import sqs_client
from segment_raindrop_tools.local.eventbridge import eventbridge_client, put_partner_events
from segment_raindrop_tools.local.queues import queue_depth
from segment_raindrop_tools.local.state import ITEMS_FILE, STATE_FILE, read_state

__all__ = ["Via", "send_eventbridge_sample"]

# How long local mode's consumer is given to drain the intake queue (it polls continuously).
DRAIN_TIMEOUT_SECONDS: Final = 30.0


class Via(StrEnum):
    WEBHOOK = "webhook"
    EVENTBRIDGE = "eventbridge"


def _say(line: str = "") -> None:
    print(line, flush=True)


def send_eventbridge_sample(events: list[dict[str, Any]], data_dir: Path) -> None:
    """Put ``events`` on the running local mode's partner source and wait for its consumer to
    drain the intake queue; exits 1 when an entry is refused or the queue does not drain."""
    state = read_state(data_dir)
    if state is None or not state.get("eventbridge_source"):
        fail(
            f"no running local mode with an EventBridge intake found ({data_dir / STATE_FILE}): "
            "start `segment-raindrop local` in another terminal"
        )
    source, endpoint = str(state["eventbridge_source"]), str(state["moto_endpoint"])
    region, queue_url = str(state["region"]), str(state["intake_queue_url"])
    _say(f"Putting a sample AI conversation ({len(events)} events) on {source}")
    _say("  with PutPartnerEvents, as Segment's Amazon EventBridge destination sends them;")
    _say("  the rule passes what the mapping forwards to the intake queue")
    refused = put_partner_events(eventbridge_client(endpoint, region), events, source=source)
    if refused:
        fail(f"EventBridge refused {refused} entries", ExitCode.INCOMPLETE)
    sqs = sqs_client(endpoint, region)
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while (left := queue_depth(sqs, queue_url)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        _say(f"{left} record(s) still on the intake queue after {DRAIN_TIMEOUT_SECONDS:.0f} s")
        raise typer.Exit(ExitCode.INCOMPLETE)
    _say()
    _say("The intake queue is drained: the local mode terminal shows each batch and what")
    if state.get("local_receiver"):
        items = state.get("items_file") or ITEMS_FILE
        _say(f"Raindrop got; the items are also saved in {items}")
    else:
        _say("went to Raindrop")
