"""What local mode is asked to do (:class:`LocalOptions`) and where it runs
(:class:`LocalEndpoints`, also the state file's content)."""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from segment_raindrop.core.config import DeliveryConfig, ForwarderConfig, MappingConfig
from segment_raindrop_tools.events import AI_CHAT, ai_data, track_call

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "HOST",
    "WEBHOOK_PATH",
    "LocalEndpoints",
    "LocalOptions",
]

HOST: Final = "127.0.0.1"  # local mode never listens on any other address
DEFAULT_PORT: Final = 8787
DEFAULT_DATA_DIR: Final = Path("local-data")
WEBHOOK_PATH: Final = "/segment"
_DEFAULT_MAX_BODY_BYTES: Final[int] = ForwarderConfig.model_fields["max_body_bytes"].default


@dataclass(frozen=True)
class LocalOptions:
    """How to run local mode; every port 0 means an ephemeral port."""

    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    # Forward to this Raindrop (with ``raindrop_api_key``) instead of the local receiver.
    raindrop_url: str | None = None
    raindrop_api_key: str | None = None
    # Fixed credentials for Segment's side; random ones when None.
    webhook_token: str | None = None
    shared_secret: str | None = None
    moto_port: int = 0
    receiver_port: int = 0
    region: str = "us-east-1"
    retry_base_delay_seconds: int = 5
    # Long-poll wait of the retry worker's ReceiveMessage (SQS allows 0..20); 0 polls every
    # SHORT_POLL_PAUSE_SECONDS instead, which lets stop() return at once (tests).
    retry_poll_seconds: int = 2
    # Queue and secret names; tests running several instances against one moto use their own.
    resource_prefix: str = "segment-raindrop"
    verbose: bool = False
    # The forwarder's settings to try (the CLI reads them from the operator's shell, as the
    # Lambda reads its environment). The Raindrop URL is local mode's own unless raindrop_url.
    mapping: MappingConfig = field(default_factory=MappingConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    max_body_bytes: int = _DEFAULT_MAX_BODY_BYTES
    # Where the forwarder's SQS calls go instead of the emulator itself (a proxy in front of
    # it that injects faults: the soak); the event source still reads the emulator directly.
    sqs_endpoint: str | None = None

    @property
    def forwards_to_real_raindrop(self) -> bool:
        return bool(self.raindrop_url or self.raindrop_api_key)


@dataclass(frozen=True)
class LocalEndpoints:
    """Where everything runs and the credentials to use; also what the state file holds."""

    webhook_url: str
    # Where both APIs are served: the webhook API at its root, the SDK API under /v1.
    origin: str
    tracking_api_host: str
    batch_url: str
    webhook_token: str
    shared_secret: str
    moto_endpoint: str
    region: str
    secret_id: str
    retry_queue_url: str
    dlq_url: str
    raindrop_url: str
    local_receiver: bool
    items_file: str | None
    state_file: str
    env_file: str
    pid: int
    started_at: str
    # The mirror (Raindrop's SDK -> local mode -> Raindrop and Segment).
    raindrop_sdk_endpoint: str | None = None
    segment_api_url: str | None = None
    raindrop_api_key: str | None = None
    # What the Segment stand-in took (the mirror), one event a line.
    segment_events_file: str | None = None
    # The EventBridge intake: the partner source Segment's events are put on (moto's
    # EventBridge), the intake queue and its own dead-letter queue.
    eventbridge_source: str | None = None
    intake_queue_url: str | None = None
    intake_dlq_url: str | None = None

    def replay_environment(self) -> dict[str, str]:
        """What ``segment-raindrop replay`` (or any AWS tool) needs to use these resources."""
        return {
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "RAINDROP_SECRET_ID": self.secret_id,
            "RETRY_QUEUE_URL": self.retry_queue_url,
            "DLQ_URL": self.dlq_url,
            "RAINDROP_API_URL": self.raindrop_url,
        }

    def curl(self, *, now: datetime | None = None) -> str:
        """A ready-to-paste curl sending one AI chat event with the bearer token."""
        at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event = track_call(
            AI_CHAT,
            {
                "model": "gpt-4o",
                "convo_id": "convo-1",
                "ai_data": ai_data(
                    "How do I rotate my API key?", "Go to Settings, API keys, and choose Rotate."
                ),
            },
            userId="user-123",
            messageId=f"curl-{secrets.token_hex(4)}",
            timestamp=at,
        )
        body = json.dumps(event, separators=(",", ":"))
        return (
            f"curl -sS -w '\\n' -X POST {shlex.quote(self.webhook_url)} \\\n"
            f"  -H {shlex.quote('Authorization: Bearer ' + self.webhook_token)} \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(body)}"
        )
