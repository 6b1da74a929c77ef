"""A request body that is not JSON (OTLP spans as protobuf, from Raindrop's SDK with tracing
on), held as a JSON value so that a job and a queue message can carry it like any event.

``{"content_type": "application/x-protobuf", "base64": "<the body, base64-encoded>"}``: the
body is sent again byte for byte, with its content type, however often it is retried.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any


def stored(content_type: str, body: bytes) -> dict[str, str]:
    return {"content_type": content_type, "base64": base64.b64encode(body).decode("ascii")}


def restored(value: Any) -> tuple[str, bytes] | None:
    """(content type, body) of a :func:`stored` value; None for anything else."""
    if not isinstance(value, dict):
        return None
    content_type, encoded = value.get("content_type"), value.get("base64")
    if not isinstance(content_type, str) or not content_type or not isinstance(encoded, str):
        return None
    try:
        return content_type, base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
