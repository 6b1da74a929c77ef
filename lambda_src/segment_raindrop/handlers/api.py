"""What the two API Gateway handlers share: API Gateway's event as a service request, and the
service's answers and refusals as API Gateway's responses.

The webhook (Segment's side) and the mirror (Raindrop's SDK) refuse the same things for the
same reasons, through Powertools' ``@app.exception_handler``; they differ only in the shape of
an error body (the webhook's ``{"error": message}``, Raindrop's ``{"error": {"code",
"message"}}``), which each passes in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from segment_raindrop.adapters.observability import count, logger
from segment_raindrop.adapters.secrets import RaindropKeyNotSet, SecretUnavailable
from segment_raindrop.core.config import ConfigError
from segment_raindrop.core.content_encoding import BodyTooLarge, UnsupportedEncoding
from segment_raindrop.core.contract import Metric
from segment_raindrop.core.segment_body import BodyError
from segment_raindrop.service.requests import Answer, ApiRequest, Refusal

# An error body for a status and a message safe to show the caller.
ErrorBody = Callable[[int, str], dict[str, Any]]


def api_request(app: APIGatewayRestResolver) -> ApiRequest:
    """The request ``app`` is resolving, as the service takes it."""
    event = app.current_event
    context = app.lambda_context
    return ApiRequest(
        headers=event.headers,  # Powertools' case-insensitive view
        body=_raw_body(event.body, is_base64=bool(event.is_base64_encoded)),
        request_id=context.aws_request_id,
        remaining=lambda: context.get_remaining_time_in_millis() / 1000,
        intact=bool(event.is_base64_encoded),
    )


def response(answer: Answer) -> Response[str]:
    return Response(
        status_code=answer.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(answer.body, separators=(",", ":")),
    )


def _raw_body(body: str | None, *, is_base64: bool) -> bytes:
    """The request body as sent: API Gateway hands it over base64-encoded (the SDK API's binary
    media type ``*/*``) or, without binary media types (the webhook API), as text."""
    if is_base64:
        try:
            return base64.b64decode(body or "", validate=True)
        except binascii.Error:
            logger.warning("bad request body", extra={"problem": "body is not valid base64"})
            raise Refusal(400, "body is not valid base64") from None
    return (body or "").encode("utf-8")


def install_refusals(app: APIGatewayRestResolver, error_body: ErrorBody) -> None:
    """Register the answer to each refusal on ``app``.

    An answer may reach anyone, the configuration is refused before anyone is authenticated:
    what is wrong with the settings goes to the log, never into the answer.
    """

    def refuse(status: int, message: str) -> Response[str]:
        count(Metric.REQUESTS_REFUSED)
        return response(Answer(status, error_body(status, message)))

    def refused(refusal: Refusal) -> Response[str]:
        return refuse(refusal.status, refusal.message)

    def bad_body(exc: BodyError) -> Response[str]:
        logger.warning("bad request body", extra={"problem": str(exc)})
        return refuse(400, str(exc))

    def bad_configuration(exc: ConfigError) -> Response[str]:
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        return refuse(503, "forwarder configuration is invalid; its log says which setting")

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
        BodyError: bad_body,
        ConfigError: bad_configuration,
        BodyTooLarge: too_large,
        UnsupportedEncoding: unsupported_encoding,
        RaindropKeyNotSet: key_not_set,
        SecretUnavailable: secret_unavailable,
    }
    for exc_class, handler in handlers.items():
        app.exception_handler(exc_class)(handler)
