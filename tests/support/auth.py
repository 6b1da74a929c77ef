"""Credentials as clients send them."""

from __future__ import annotations


def bearer(token: str) -> dict[str, str]:
    """``Authorization: Bearer <token>``: Segment's mapping header, Raindrop's SDK key."""
    return {"Authorization": f"Bearer {token}"}
