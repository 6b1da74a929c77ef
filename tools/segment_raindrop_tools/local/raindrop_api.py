"""How Raindrop's ``/v1`` API answers one request, as pure functions of the request.

The receiver (:mod:`~segment_raindrop_tools.local.receiver`) serves the socket and records;
this module decides the answer: the bearer key, the method, size and content-type checks, the
JSON array, the item ``validator``, and what an injected fault answers instead.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from typing import Any

from segment_raindrop_tools.local.faults import Fault
from segment_raindrop_tools.local.raindrop_items import SINGLE_OBJECT_ENDPOINTS

__all__ = ["Answer", "Validator", "error_answer", "evaluate", "fault_answer", "parse_items_quietly"]

Validator = Callable[[str, list[Any]], str | None]


@dataclass(frozen=True)
class Answer:
    status: int | None
    payload: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    accepted_items: list[dict[str, Any]] | None = None
    fault: Fault | None = None


def error_answer(status: int, message: str, *headers: tuple[str, str]) -> Answer:
    return Answer(status, json.dumps({"error": message}).encode(), headers)


class _Refused(Exception):
    """The request is answered with an error status instead of being accepted."""

    def __init__(self, status: int, message: str, *headers: tuple[str, str]) -> None:
        super().__init__(message)
        self.answer = error_answer(status, message, *headers)


def _refuse_if(condition: bool, status: int, message: str, *headers: tuple[str, str]) -> None:
    if condition:
        raise _Refused(status, message, *headers)


def _reject_constant(name: str) -> Any:
    # Python's json emits NaN/Infinity by default, but they are not JSON and a real API rejects
    # them: refusing them here catches a forwarder that serialises floats carelessly.
    raise ValueError(f"{name} is not valid JSON")


# What OTLP/HTTP exporters send spans as by default.
OTLP_PROTOBUF = "application/x-protobuf"


def _parse_items(body: bytes, endpoint: str) -> list[Any]:
    try:
        parsed = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _Refused(400, f"body is not valid JSON: {exc}") from None
    if endpoint in SINGLE_OBJECT_ENDPOINTS:
        if not isinstance(parsed, dict):
            raise _Refused(400, "body must be a JSON object")
        return [parsed]
    if not isinstance(parsed, list):
        raise _Refused(400, "body must be a JSON array")
    return parsed


def parse_items_quietly(body: bytes, endpoint: str | None = None) -> list[Any] | None:
    """The items of a body (a single-object endpoint's object as a one-item list)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if endpoint in SINGLE_OBJECT_ENDPOINTS and isinstance(parsed, dict):
        return [parsed]
    return parsed if isinstance(parsed, list) else None


def _bearer_matches(authorization: str | None, api_key: str) -> bool:
    if authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), api_key)


def fault_answer(fault: Fault) -> Answer:
    """What a request meeting ``fault`` gets (status None: the connection is dropped)."""
    if fault.drop:
        return Answer(None, fault=fault)
    if fault.body is not None:
        payload = fault.body.encode()
    else:
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "injected fault"
        payload = json.dumps({"error": phrase}).encode()
    headers = () if fault.retry_after is None else (("Retry-After", fault.retry_after),)
    return Answer(fault.status, payload, headers, fault=fault)


def evaluate(
    method: str,
    endpoint: str | None,
    headers: Message,
    body: bytes,
    *,
    api_key: str | None,
    max_body_bytes: int | None,
    validator: Validator | None,
) -> tuple[Answer, list[Any] | None]:
    """The answer to a request, and the items it carried (None unless a JSON array)."""
    if endpoint is None:
        return error_answer(404, "not found"), parse_items_quietly(body)
    try:
        _refuse_if(method != "POST", 405, "method not allowed", ("Allow", "POST"))
        _refuse_if(
            api_key is not None and not _bearer_matches(headers.get("Authorization"), api_key),
            401,
            "invalid or missing API key",
            ("WWW-Authenticate", "Bearer"),
        )
        _refuse_if(
            max_body_bytes is not None and len(body) > max_body_bytes,
            413,
            f"body exceeds {max_body_bytes} bytes",
        )
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        encoding = headers.get("Content-Encoding", "identity").strip().lower()
        _refuse_if(encoding != "identity", 415, f"unsupported Content-Encoding {encoding!r}")
        if endpoint == "traces" and content_type == OTLP_PROTOBUF:
            # OTLP spans as protobuf (the SDK's exporter): taken as they are, recorded raw.
            _refuse_if(not body, 400, "body is empty")
            return Answer(200, b""), None
        _refuse_if(content_type != "application/json", 415, "Content-Type must be JSON")
        items = _parse_items(body, endpoint)
    except _Refused as refusal:
        return refusal.answer, parse_items_quietly(body, endpoint)
    try:
        _validate(endpoint, items, validator)
    except _Refused as refusal:
        return refusal.answer, items
    return Answer(200, b'{"ok": true}', accepted_items=items), items


def _validate(endpoint: str, items: list[Any], validator: Validator | None) -> None:
    _refuse_if(not items, 400, "body must not be an empty array")
    for index, item in enumerate(items):
        _refuse_if(not isinstance(item, dict), 400, f"item {index} is not a JSON object")
    if validator is None:
        return
    try:
        problem = validator(endpoint, items)
    except Exception as exc:
        # A broken validator is a test bug: report it to the client rather than hang up.
        raise _Refused(500, f"validator raised {exc!r}") from exc
    if problem is not None:
        raise _Refused(400, problem)
