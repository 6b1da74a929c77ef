"""``--ping``: one ``AI Chat Completed`` event sent to the webhook as Segment would send it.

Authenticated with the secret's webhook token (``Authorization: Bearer``) and, when the secret
holds Segment's shared secret, signed with it (``X-Signature``). The event is real: it reaches
Raindrop as an ``ai_interaction`` of user ``segment-raindrop-status``, recognisable by its
trace id ``status-ping-<UTC time>-<random>``.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from segment_raindrop.adapters.secrets import SecretValues
from segment_raindrop.core.request_auth import sign
from segment_raindrop_tools.events import AI_CHAT, ai_data, track_call
from segment_raindrop_tools.status.report import PingResult, iso

__all__ = ["PING_USER", "ping", "ping_event"]

PING_USER: Final = "segment-raindrop-status"
# Above the webhook's own 10 s (Segment's timeout), so its answer always arrives.
_TIMEOUT_SECONDS: Final = 15.0
_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


def ping_event(trace_id: str, now: datetime) -> dict[str, Any]:
    return track_call(
        AI_CHAT,
        {
            "trace_id": trace_id,
            "model": "segment-raindrop-status",
            "ai_data": ai_data("segment-raindrop status --ping", "pong", convo_id=trace_id),
        },
        userId=PING_USER,
        messageId=trace_id,
        timestamp=iso(now),
    )


def ping(url: str | None, secret: SecretValues | None, now: datetime) -> PingResult:
    trace_id = f"status-ping-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    if not url:
        return PingResult(url=None, trace_id=trace_id, error="no webhook URL to send to")
    if secret is None or not (secret.webhook_token or secret.segment_shared_secret):
        return PingResult(
            url=url,
            trace_id=trace_id,
            error="nothing to authenticate with: the secret has no webhook token or shared secret",
        )
    # What JSON.stringify produces: the exact bytes Segment signs.
    body = json.dumps(ping_event(trace_id, now), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "segment-raindrop status"}
    if secret.webhook_token:
        headers["Authorization"] = f"Bearer {secret.webhook_token}"
    if secret.segment_shared_secret:
        headers["X-Signature"] = sign(body, secret.segment_shared_secret)
    # Local mode is reached directly; anything else the way the shell says (proxies included).
    local = urlsplit(url).hostname in _LOCAL_HOSTS
    try:
        with httpx.Client(timeout=_TIMEOUT_SECONDS, trust_env=not local) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return PingResult(url=url, trace_id=trace_id, error=f"no answer ({type(exc).__name__})")
    try:
        answer = response.json()
    except ValueError:
        answer = {"message": response.text[:200]}
    return PingResult(
        url=url,
        trace_id=trace_id,
        status=response.status_code,
        answer=answer if isinstance(answer, dict) else {"message": str(answer)[:200]},
    )
