"""``segment-raindrop send-sdk-sample``: Raindrop's own Python SDK pointed at the running local
mode (Raindrop -> Segment, the mirror): an AI event with attachments, an interaction begun and
finished in steps (partial events), a feedback signal and an identify.

Local mode prints one ``raindrop`` line per item the Raindrop stand-in took and one ``segment``
line per event the Segment stand-in got, and saves both beside each other in its data directory.
Raindrop's SDK (``raindrop-ai``) is a development dependency: ``make sample`` has it.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from segment_raindrop_tools.cli_common import DataDirOption, fail
from segment_raindrop_tools.local.options import DEFAULT_DATA_DIR
from segment_raindrop_tools.local.state import STATE_FILE, read_state


def send_sdk_sample(
    *,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    user_id: Annotated[str, typer.Option("--user-id", help="The sample user.")] = (
        "usr_sdk_5e21c0"
    ),
    tracing: Annotated[
        bool,
        typer.Option(
            "--tracing",
            help="Turn the SDK's tracing on too: its spans go to <host>/v1/traces, forwarded "
            "to Raindrop.",
        ),
    ] = False,
) -> None:
    """Send AI events with Raindrop's own SDK through the running local mode's SDK endpoint:
    forwarded to Raindrop and mirrored into Segment."""
    endpoint, key = _local_sdk(data_dir)
    try:
        # A development dependency, imported when used; it ships no type information.
        import raindrop.analytics as raindrop  # type: ignore[import-untyped]  # noqa: PLC0415
        from raindrop.models import Attachment  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:
        fail("Raindrop's SDK (raindrop-ai) is not installed: run `make sample`, which has it")
    raindrop.init(api_key=key, endpoint=endpoint, local_workshop_url=None, tracing_enabled=tracing)
    suffix = secrets.token_hex(4)
    try:
        sent = _send(raindrop, Attachment, user_id, suffix)
    finally:
        raindrop.flush()
        raindrop.shutdown()
    print(f"Sent with Raindrop's SDK to {endpoint}:", flush=True)
    for line in sent:
        print(f"  {line}", flush=True)
    print("Local mode's console shows what Raindrop and Segment received.", flush=True)


def _local_sdk(data_dir: Path) -> tuple[str, str]:
    state = read_state(data_dir)
    if state is None:
        fail(
            f"no running local mode found ({data_dir / STATE_FILE} is missing): start "
            "`segment-raindrop local` in another terminal"
        )
    endpoint, key = state.get("raindrop_sdk_endpoint"), state.get("raindrop_api_key")
    if not endpoint or not key:
        fail("this local mode forwards to a real Raindrop: the SDK sample only runs locally")
    return str(endpoint), str(key)


def _send(raindrop: Any, attachment: Any, user_id: str, suffix: str) -> list[str]:
    chat_id = raindrop.track_ai(
        user_id=user_id,
        event="ai_interaction",
        event_id=f"sdk-chat-{suffix}",
        model="gpt-4o",
        input="Summarise this incident report for the on-call channel.",
        output="Checkout latency rose at 14:02 after a config push; rolled back at 14:19.",
        convo_id=f"convo-{suffix}",
        properties={"latency_ms": 812, "prompt_tokens": 640, "completion_tokens": 58},
        attachments=[
            attachment(type="text", name="incident.md", value="# INC-2291 …", role="input"),
            attachment(
                type="code",
                name="rollback",
                value="git revert 4f1c9e2",
                role="output",
                language="shell",
            ),
        ],
    )
    interaction = raindrop.begin(
        user_id=user_id,
        event="ai_interaction",
        event_id=f"sdk-interaction-{suffix}",
        input="Draft a reply to the customer about the delay.",
        model="gpt-4o-mini",
        convo_id=f"convo-{suffix}",
    )
    interaction.set_properties({"step": "drafting", "tone": "apologetic"})
    interaction.add_attachments(
        [attachment(type="text", name="ticket", value="Order #88213 is late", role="context")]
    )
    interaction.finish(output="Sorry for the wait: your order ships tomorrow.")
    raindrop.track_signal(
        event_id=chat_id,
        name="thumbs_up",
        signal_type="feedback",
        sentiment="POSITIVE",
        comment="Clear and short.",
    )
    raindrop.identify(user_id, {"plan": "team", "seats": 12})
    return [
        f"events/track          {chat_id} (2 attachments)",
        f"events/track_partial  sdk-interaction-{suffix} (begun, updated, finished)",
        f"signals/track         thumbs_up on {chat_id}",
        f"users/identify        {user_id}",
    ]
