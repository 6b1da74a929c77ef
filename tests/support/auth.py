"""Credentials as clients send them."""

from __future__ import annotations

from typing import Protocol


class _WithWebhookToken(Protocol):
    @property
    def webhook_token(self) -> str: ...


def bearer(credential: str | _WithWebhookToken) -> dict[str, str]:
    """``Authorization: Bearer <token>``: Segment's mapping header, Raindrop's SDK key. Given a
    test environment, its webhook token."""
    token = credential if isinstance(credential, str) else credential.webhook_token
    return {"Authorization": f"Bearer {token}"}
