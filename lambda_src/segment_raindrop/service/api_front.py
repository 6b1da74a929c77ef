"""What the two API Gateway handlers share: the raw body, JSON answers, the refusals, and the
time a request leaves for delivery and for queueing.

The webhook (Segment's side) and the mirror (Raindrop's SDK) refuse the same things for the
same reasons, through Powertools' ``@app.exception_handler``; they differ only in the shape of
an error body (the webhook's ``{"error": message}``, Raindrop's ``{"error": {"code",
"message"}}``), which each passes in as its ``Answer``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from segment_raindrop.adapters.observability import count, logger
from segment_raindrop.adapters.secrets import RaindropKeyNotSet, SecretUnavailable
from segment_raindrop.core.config import ConfigError
from segment_raindrop.core.content_encoding import BodyTooLarge, UnsupportedEncoding
from segment_raindrop.core.contract import Metric
from segment_raindrop.core.timing import deadline_within

# Failed authentication re-reads the secret (a just-changed token) at most this often.
AUTH_REFRESH_SECONDS = 30.0
# Time kept back from the Lambda's remaining time for queueing and answering.
QUEUEING_RESERVE_SECONDS = 2.5
# Time kept back from the Lambda's remaining time to answer once queueing gives up.
ANSWER_RESERVE_SECONDS = 0.5

# An error body for a status and a message safe to show the caller.
ErrorBody = Callable[[int, str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """When a request's delivery must stop, and past which SQS is not asked again (the events
    left are answered for with a 503)."""

    delivery: float
    queueing: float


def deadlines(context: LambdaContext, started: float, *, budget: float) -> Deadlines:
    remaining = context.get_remaining_time_in_millis() / 1000
    return Deadlines(
        delivery=deadline_within(
            started, budget=budget, remaining=remaining, reserve=QUEUEING_RESERVE_SECONDS
        ),
        queueing=time.monotonic() + remaining - ANSWER_RESERVE_SECONDS,
    )


class Refusal(Exception):
    """Ends a request early with ``status`` and a short message safe to show the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
    )


def raw_body(event: APIGatewayProxyEvent) -> bytes:
    """The request body as sent: API Gateway hands it over base64-encoded (the stack's binary
    media type ``*/*``) or, without binary media types, as text."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            logger.warning("bad request body", extra={"problem": "body is not valid base64"})
            raise Refusal(400, "body is not valid base64") from None
    return body.encode("utf-8")


def install_refusals(
    app: APIGatewayRestResolver, error_body: ErrorBody, *, name_bad_settings: bool
) -> Callable[[int, str], Response[str]]:
    """Register the answer to each refusal on ``app``; returns the refusal answer itself.

    ``name_bad_settings``: say which setting is invalid in the 503 (the webhook does, for the
    operator reading Segment's delivery log; the mirror answers an SDK, which logs nothing
    useful with it).
    """

    def refuse(status: int, message: str) -> Response[str]:
        count(Metric.REQUESTS_REFUSED)
        return json_response(status, error_body(status, message))

    def refused(refusal: Refusal) -> Response[str]:
        return refuse(refusal.status, refusal.message)

    def bad_configuration(exc: ConfigError) -> Response[str]:
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        detail = f": {exc}" if name_bad_settings else ""
        return refuse(503, f"forwarder configuration is invalid{detail}")

    def too_large(exc: BodyTooLarge) -> Response[str]:
        logger.warning("request body too large", extra={"limit": exc.max_bytes})
        return refuse(413, f"body is larger than {exc.max_bytes} bytes")

    def unsupported_encoding(exc: UnsupportedEncoding) -> Response[str]:
        logger.warning("unsupported content encoding", extra={"problem": str(exc)})
        return refuse(415, str(exc))

    def key_not_set(exc: RaindropKeyNotSet) -> Response[str]:
        logger.error(str(exc))
        return refuse(503, "Raindrop API key is not configured yet")

    def secret_unavailable(exc: SecretUnavailable) -> Response[str]:
        logger.error("secret unavailable", extra={"problem": str(exc)})
        return refuse(503, "forwarder secret is unavailable")

    handlers: dict[type[Exception], Callable[[Any], Response[str]]] = {
        Refusal: refused,
        ConfigError: bad_configuration,
        BodyTooLarge: too_large,
        UnsupportedEncoding: unsupported_encoding,
        RaindropKeyNotSet: key_not_set,
        SecretUnavailable: secret_unavailable,
    }
    for exc_class, handler in handlers.items():
        app.exception_handler(exc_class)(handler)
    return refuse
