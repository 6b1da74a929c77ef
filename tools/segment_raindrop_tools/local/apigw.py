"""What API Gateway and Lambda hand a function, and what API Gateway makes of its answer.

Local mode and the tests call the real handlers with these, so the only code that differs
from production is the translation between HTTP and the REST proxy integration (payload v1).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from segment_raindrop.core.contract import OTLP_TRACES_ROUTES, RAINDROP_SDK_PATH, SDK_API_STAGE


@dataclass
class LocalContext:
    """The parts of ``LambdaContext`` the handlers and Powertools read."""

    function_name: str = "segment-raindrop-local"
    timeout_seconds: float = 10.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/segment-raindrop-local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


# The stack serves two REST APIs: the SDK API (binary media type ``*/*``, stage
# ``SDK_API_STAGE``: Segment's libraries at /v1/batch, Raindrop's SDKs at /raindrop/v1/ and their
# spans at /traces) and the webhook API (``/segment``, no binary media types).
SDK_API_PREFIX: Final = f"/{SDK_API_STAGE}"
_SDK_ROUTES: Final = ("/v1/batch", *OTLP_TRACES_ROUTES)


def is_sdk_path(path: str) -> bool:
    """Whether the stack serves the function path ``path`` (as the event's ``path`` gives it,
    without a stage) on its SDK API."""
    route = path.partition("?")[0].rstrip("/") or "/"
    return route in _SDK_ROUTES or route.startswith(f"/{RAINDROP_SDK_PATH}/")


def sdk_api_route(request_path: str) -> str | None:
    """The function path of a request to local mode's port when it is for the SDK API (whose
    URLs, as deployed, start with its stage), else None: a request for the webhook API."""
    if request_path.startswith(f"{SDK_API_PREFIX}/"):
        return request_path[len(SDK_API_PREFIX) :]
    return None


def rest_proxy_event(
    *,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
    body: bytes,
    source_ip: str = "127.0.0.1",
    stage: str = "local",
    request_id: str | None = None,
    binary: bool | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0) for one HTTP request.

    ``binary``: the body base64-encoded whatever it is (``isBase64Encoded``), as the SDK API
    delivers every body; otherwise as text, as the webhook API (no binary media types)
    does, bytes that are not UTF-8 replaced. By default, as the stack's API for ``path`` would.
    """
    if binary is None:
        binary = is_sdk_path(path)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    text, encoded = _text_or_base64(body, binary=binary)
    path_only, _, query = path.partition("?")
    return {
        "resource": path_only,
        "path": path_only,
        "httpMethod": method.upper(),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": _query(query),
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path_only,
            "httpMethod": method.upper(),
            "path": f"/{stage}{path_only}",
            "stage": stage,
            "requestId": request_id or str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


def _text_or_base64(body: bytes, *, binary: bool) -> tuple[str, bool]:
    if binary:
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8", errors="replace"), False


def _query(query: str) -> dict[str, str] | None:
    if not query:
        return None
    pairs = (part.partition("=") for part in query.split("&") if part)
    return {name: value for name, _, value in pairs}


def http_answer(answer: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """A proxy integration's answer as API Gateway writes it: status, headers, body bytes.

    A header in ``multiValueHeaders`` keeps every value and wins over the same name in
    ``headers``; a base64-encoded body is decoded; no status means a bad gateway.
    """
    multi = {
        str(name): [str(value) for value in values]
        for name, values in (answer.get("multiValueHeaders") or {}).items()
    }
    headers = [
        (str(name), str(value))
        for name, value in (answer.get("headers") or {}).items()
        if name not in multi
    ]
    headers += [(name, value) for name, values in multi.items() for value in values]
    body = answer.get("body") or ""
    payload = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
    return int(answer.get("statusCode", 502)), headers, payload
