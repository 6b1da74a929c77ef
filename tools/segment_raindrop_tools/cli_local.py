"""``segment-raindrop local`` and ``segment-raindrop send-sample`` (docs/local-mode.md).

``local`` runs the whole forwarder on 127.0.0.1 (:mod:`segment_raindrop_tools.local.mode`);
``send-sample`` posts a realistic AI conversation to it, or to any deployed endpoint.
Register both on the console script's app with :func:`register`.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from segment_raindrop.core.config import ConfigError, ForwarderConfig
from segment_raindrop.core.environment import read_config
from segment_raindrop.core.request_auth import sign
from segment_raindrop_tools import samples
from segment_raindrop_tools.cli_common import DataDirOption, ExitCode, fail, interrupts
from segment_raindrop_tools.cli_eventbridge_sample import Via, send_eventbridge_sample
from segment_raindrop_tools.cli_sdk_sample import send_sdk_sample
from segment_raindrop_tools.local.mode import LocalMode
from segment_raindrop_tools.local.options import DEFAULT_DATA_DIR, DEFAULT_PORT, LocalOptions
from segment_raindrop_tools.local.state import ITEMS_FILE, STATE_FILE, read_state

# A second signal this soon after the first is the same Ctrl-C, forwarded by `uv run` or make.
_SAME_PRESS_SECONDS = 1.0
SEND_TIMEOUT_SECONDS = 15.0  # above the webhook's 10 s, so its own answer always arrives
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_COUNT_KEYS = ("received", "forwarded", "filtered", "queued", "dead_lettered", "unqueued")
# Local mode provisions the secret and the queues itself; placeholders stand in for them while
# the rest of the forwarder's settings are read from the operator's shell.
_LOCAL_RESOURCES = {"RAINDROP_SECRET_ID": "local", "RETRY_QUEUE_URL": "local", "DLQ_URL": "local"}


def register(app: typer.Typer) -> None:
    """Add the ``local``, ``send-sample`` and ``send-sdk-sample`` commands to ``app``."""
    app.command("local")(local)
    app.command("send-sample")(send_sample)
    app.command("send-sdk-sample")(send_sdk_sample)


def _say(line: str = "") -> None:
    try:
        print(line, flush=True)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "ascii"
        print(line.encode(encoding, "replace").decode(encoding), flush=True)


# --- local -----------------------------------------------------------------------------------


def local(
    *,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            envvar="SEGMENT_RAINDROP_PORT",
            min=0,
            max=65535,
            help="Port of the webhook on 127.0.0.1.",
        ),
    ] = DEFAULT_PORT,
    raindrop_url: Annotated[
        str | None,
        typer.Option(
            "--raindrop-url",
            help="Forward to this Raindrop API (needs RAINDROP_API_KEY) instead of the local "
            "stand-in.",
            show_default=False,
        ),
    ] = None,
    raindrop_api_key: Annotated[
        str | None,
        typer.Option(
            "--raindrop-api-key",
            envvar="RAINDROP_API_KEY",
            help="Raindrop write key; when set, events go to the real Raindrop "
            "(https://api.raindrop.ai/v1 unless --raindrop-url). Prefer the variable.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    webhook_token: Annotated[
        str | None,
        typer.Option(
            "--webhook-token",
            envvar="WEBHOOK_TOKEN",
            help="Webhook token to accept (default: a fresh random one).",
            show_default=False,
        ),
    ] = None,
    shared_secret: Annotated[
        str | None,
        typer.Option(
            "--shared-secret",
            envvar="SEGMENT_SHARED_SECRET",
            help="Segment shared secret for X-Signature (default: a fresh random one).",
            show_default=False,
        ),
    ] = None,
    retry_base_delay: Annotated[
        int,
        typer.Option(
            "--retry-base-delay",
            min=0,
            max=900,
            help="RETRY_BASE_DELAY_SECONDS: first retry back-off, doubled per attempt.",
        ),
    ] = 5,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Print the forwarder's JSON logs and metrics here "
            "(default: its logs to forwarder.log in the data directory).",
        ),
    ] = False,
) -> None:
    """Run the whole forwarder on this machine: no AWS account, no Raindrop account needed.

    Starts, on 127.0.0.1 only: a moto server with the secret and both queues, a local Raindrop
    stand-in (unless RAINDROP_API_KEY or --raindrop-url), the webhook and the retry worker.
    Stops on Ctrl-C.
    """
    if raindrop_url and not raindrop_api_key:
        fail("--raindrop-url needs a Raindrop API key: set RAINDROP_API_KEY")
    if raindrop_url and not raindrop_url.startswith(("https://", "http://")):
        fail("--raindrop-url must be an http(s) URL")
    settings = _settings_from_shell()
    if not verbose:
        # The CloudWatch metrics (EMF) would print a JSON document per invocation; Powertools
        # reads this switch from the process environment only, and this process is local mode.
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    options = LocalOptions(
        port=port,
        data_dir=data_dir,
        raindrop_url=raindrop_url,
        raindrop_api_key=raindrop_api_key,
        webhook_token=webhook_token,
        shared_secret=shared_secret,
        retry_base_delay_seconds=retry_base_delay,
        verbose=verbose,
        mapping=settings.mapping,
        delivery=settings.delivery,
        max_body_bytes=settings.max_body_bytes,
    )
    stop = threading.Event()
    with interrupts(
        graceful=stop.set,
        # Ctrl-C again while stopping: quit at once, whatever the main thread is waiting for.
        abort=lambda: os._exit(ExitCode.ABORTED),
        signals=(signal.SIGINT, signal.SIGTERM),
        same_press_seconds=_SAME_PRESS_SECONDS,
    ):
        _say("Starting local mode (moto, Raindrop stand-in, webhook, retry worker)...")
        mode = _start(options)
        try:
            _say(mode.banner())
            while not stop.wait(0.5):
                pass
            _say()
            _say("Stopping... (Ctrl-C again to quit at once)")
        finally:
            mode.stop()
        _say("Stopped.")


def _settings_from_shell() -> ForwarderConfig:
    """The forwarder's settings in the operator's shell, read as the Lambda reads its own."""
    try:
        return read_config({**os.environ, **_LOCAL_RESOURCES})
    except ConfigError as exc:
        fail(f"the forwarder's configuration is invalid: {exc}")


def _start(options: LocalOptions) -> LocalMode:
    try:
        return LocalMode(options, echo=_say).start()
    except ConfigError as exc:
        fail(f"the forwarder's configuration is invalid: {exc}")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"port {options.port} on 127.0.0.1 is already in use (is local mode already "
                "running?); choose another with --port"
            )
        fail(f"could not start local mode: {exc}")


# --- send-sample -----------------------------------------------------------------------------


def sample_conversation(
    user_id: str, *, seed: int, turns: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """An identify, a page view (filtered) and an AI conversation, timed just before ``now``.

    The conversation (``samples.conversation``): ``turns`` chat completions (the first with
    an attachment), a tool call and an edit signal after the first, and feedback on the last.
    Its events are spaced up to 45 s apart.
    """
    now = now or datetime.now(UTC)
    start = now - timedelta(seconds=45 * (turns + 3) + 15)
    identify = _at(samples.identify(user_id, seed=seed), start)
    page = _at(samples.page(user_id, seed=seed), start + timedelta(seconds=2))
    conversation = samples.conversation(
        user_id, seed=seed, turns=turns, start=start + timedelta(seconds=5)
    )
    return [identify, page, *conversation]


def _at(event: dict[str, Any], when: datetime) -> dict[str, Any]:
    event["timestamp"] = event["originalTimestamp"] = samples.iso(when)
    event["sentAt"] = samples.iso(when + timedelta(milliseconds=120))
    event["receivedAt"] = samples.iso(when + timedelta(milliseconds=310))
    return event


def _compact(value: Any) -> bytes:
    # What JSON.stringify produces (Segment signs exactly these bytes).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _describe(events: list[dict[str, Any]]) -> str:
    names = Counter(event.get("event") or event.get("type") for event in events)
    return ", ".join(
        f"{count} x {name}" if count > 1 else str(name) for name, count in names.items()
    )


def _resolve_target(
    url: str | None, token: str | None, data_dir: Path
) -> tuple[str, str | None, dict[str, Any] | None]:
    state = read_state(data_dir)
    if url is None:
        if state is None:
            fail(
                f"no running local mode found ({data_dir / STATE_FILE} is missing): start "
                "`segment-raindrop local` in another terminal, or pass --url and --token"
            )
        url = str(state["webhook_url"])
    local_urls = () if state is None else (state.get("webhook_url"), state.get("batch_url"))
    if token is None and state is not None and url in local_urls:
        token = str(state["webhook_token"])
    local_state = state if state is not None and url == state.get("webhook_url") else None
    return url, token, local_state


def send_sample(
    *,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Webhook URL (default: the running local mode's, from its state file).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="WEBHOOK_TOKEN",
            help="Webhook token, sent as Authorization: Bearer (default: local mode's).",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch/--single",
            help="One request holding a JSON array (Segment's batched Webhooks mapping), or "
            "one request per event.",
        ),
    ] = True,
    signature_secret: Annotated[
        str | None,
        typer.Option(
            "--signature-secret",
            help="Sign like Segment (X-Signature) with this shared secret; single requests then "
            "go without local mode's token (a batch keeps it, as Segment's batched mapping must).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    user_id: Annotated[str, typer.Option("--user-id", help="The sample user.")] = (
        "usr_4f1c9e2a7b30"
    ),
    turns: Annotated[
        int, typer.Option("--turns", min=1, max=50, help="Chat turns in the conversation.")
    ] = 3,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Make the sample repeatable (default: random).", show_default=False
        ),
    ] = None,
    via: Annotated[
        Via,
        typer.Option(
            "--via",
            help="webhook: POST to the webhook; eventbridge: put the events on local mode's "
            "Segment partner event source (PutPartnerEvents) for the EventBridge intake.",
        ),
    ] = Via.WEBHOOK,
) -> None:
    """Send a realistic AI conversation (chat turns, a tool call, feedback, an identify).

    Prints what the forwarder answered for each request: how many events it received,
    forwarded to Raindrop, filtered, queued for retry and dead-lettered.
    """
    if via is Via.EVENTBRIDGE:
        seeded = seed if seed is not None else secrets.randbelow(2**31)
        send_eventbridge_sample(sample_conversation(user_id, seed=seeded, turns=turns), data_dir)
        return
    explicit_token = token
    url, token, local_state = _resolve_target(url, token, data_dir)
    if signature_secret is not None and explicit_token is None and not batch:
        # Sign like Segment does, without local mode's token. A batch keeps the token: its
        # signature covers the first event only, so Segment's batched mapping sends both.
        token = None
    if token is None and signature_secret is None:
        fail("pass --token (the webhook token) or --signature-secret")
    events = sample_conversation(
        user_id, seed=seed if seed is not None else secrets.randbelow(2**31), turns=turns
    )
    credentials = _SampleCredentials(token, signature_secret, batch=batch)
    _say(f"Sending a sample AI conversation of user {user_id} to {url}")
    _say(f"  {len(events)} events: {_describe(events)}")
    shape = "one request holding a JSON array" if batch else f"{len(events)} requests"
    _say(f"  as {shape}, authenticated with {credentials.describe()}")
    _say()
    totals, ok = _send_all(url, [events] if batch else [[event] for event in events], credentials)
    _say()
    _summarise(totals, local_state)
    if not ok:
        raise typer.Exit(ExitCode.INCOMPLETE)


@dataclass(frozen=True)
class _SampleCredentials:
    """What the sample's requests authenticate with: the token, Segment's signature, or both."""

    token: str | None
    signature_secret: str | None
    batch: bool

    def describe(self) -> str:
        auth = []
        if self.token is not None:
            auth.append("the webhook token (Authorization: Bearer)")
        if self.signature_secret is not None:
            signed = "the first element, as Segment signs batches" if self.batch else "the body"
            auth.append(f"an X-Signature of {signed}")
        return " and ".join(auth)

    def headers(self, group: list[dict[str, Any]], body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "Segment (Actions)"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.signature_secret is not None:
            signed = _compact(group[0]) if self.batch else body
            headers["X-Signature"] = sign(signed, self.signature_secret)
        return headers


def _send_all(
    url: str, requests: list[list[dict[str, Any]]], credentials: _SampleCredentials
) -> tuple[Counter[str], bool]:
    """Post each request, printing the forwarder's answer; the counts added up, and whether
    every request was answered 2xx."""
    totals: Counter[str] = Counter()
    ok = True
    host = urlsplit(url).hostname or ""
    with httpx.Client(timeout=SEND_TIMEOUT_SECONDS, trust_env=host not in _LOCAL_HOSTS) as client:
        for group in requests:
            body = _compact(group) if credentials.batch else _compact(group[0])
            label = f"{len(group)} events" if credentials.batch else _describe(group)
            try:
                response = client.post(url, content=body, headers=credentials.headers(group, body))
            except httpx.TransportError as exc:
                fail(
                    f"could not reach {url} ({type(exc).__name__}); is `segment-raindrop local` "
                    "running?",
                    ExitCode.INCOMPLETE,
                )
            ok &= _report(label, response, totals)
    return totals, ok


def _report(label: str, response: httpx.Response, totals: Counter[str]) -> bool:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "received" in answer:
        for key in _COUNT_KEYS:
            totals[key] += int(answer.get(key, 0) or 0)
        counts = "  ".join(
            f"{key.replace('_', '-')} {answer[key]}" for key in _COUNT_KEYS if key in answer
        )
    else:
        detail = answer.get("error") if isinstance(answer, dict) else response.text[:200]
        counts = str(detail or response.reason_phrase)
    _say(f"  POST {label:<28} -> {response.status_code}  {counts}")
    return response.is_success


def _summarise(totals: Counter[str], local_state: dict[str, Any] | None) -> None:
    if not totals:
        _say("The forwarder refused the request; nothing was forwarded.")
        return
    _say(
        f"Raindrop got {totals['forwarded']} of {totals['received']} events; "
        f"{totals['filtered']} filtered (not AI events), {totals['queued']} queued for retry, "
        f"{totals['dead_lettered']} dead-lettered."
    )
    if local_state is not None and local_state.get("local_receiver"):
        items = local_state.get("items_file") or ITEMS_FILE
        _say(f"The local mode terminal shows each Raindrop item; they are also saved in {items}")


def main() -> None:
    """``python -m segment_raindrop_tools.cli_local``: these commands on their own."""
    app = typer.Typer(add_completion=False, no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()
