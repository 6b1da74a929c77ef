"""Lambda handler for Segment's webhook requests (API Gateway REST, ``POST /segment``).

What Segment is told, and why (it retries 5xx, 408 and 429 for four hours and drops 4xx):

- 200 with counts: every event was forwarded, filtered, or durably queued by us.
- 400: the body is not JSON, or not an event, an array or a batch envelope.
- 401: the request is not Segment's.
- 413: the body is larger than ``MAX_BODY_BYTES``.
- 503: we could not take responsibility for the events: the configuration or the secret is
  unusable, the Raindrop key is not set yet, or SQS was unreachable while events needed
  queueing. Segment resends, so a half-finished set-up or an outage loses nothing. (An SQS
  that hangs rather than refuses can outlast even the time kept for queueing; API Gateway then
  answers 504 when the function times out, which Segment retries too.)
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from segment_raindrop.auth import AuthDecision, authenticate
from segment_raindrop.config import ConfigError
from segment_raindrop.credentials import ForwarderSecret, SecretUnavailable
from segment_raindrop.observability import (
    logger,
    metrics,
    record_counts,
    record_dead_letters,
    record_delivery,
    tracer,
)
from segment_raindrop.pipeline import ForwardResult, settle
from segment_raindrop.runtime import LazyRuntime, Runtime
from segment_raindrop.segment import BodyError, parse_body

# Failed authentication re-reads the secret (a just-changed token) at most this often.
AUTH_REFRESH_SECONDS = 30.0
# Time kept back from the Lambda's remaining time for queueing and answering.
QUEUEING_RESERVE_SECONDS = 2.5
# Time kept back from the Lambda's remaining time to answer once queueing gives up.
ANSWER_RESERVE_SECONDS = 0.5

app = APIGatewayRestResolver()
runtime = LazyRuntime(source="webhook")


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
    )


def _error(status: int, message: str) -> Response[str]:
    metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)
    return _json(status, {"error": message})


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            raise BodyError("body is not valid base64") from None
    return body.encode("utf-8")


class _Refusal(Exception):
    """Ends a request early with ``status`` and a short message safe to show the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@app.post("/segment")
@app.post("/v1/batch")  # where Segment's server libraries post; the stack routes it here too
def receive() -> Response[str]:
    started = time.monotonic()
    try:
        rt, secret, body = _admit()
        secret, auth = _authenticate(rt, secret, body)
        parsed = parse_body(body)
    except _Refusal as refusal:
        return _error(refusal.status, refusal.message)
    except BodyError as exc:
        logger.warning("bad request body", extra={"problem": str(exc)})
        return _error(400, str(exc))
    return _forward(rt, secret, parsed.events, started, shape=parsed.shape, auth=auth)


def _admit() -> tuple[Runtime, ForwarderSecret, bytes]:
    body = _raw_body()
    try:
        rt = runtime.get()
    except ConfigError as exc:
        logger.error("configuration is invalid", extra={"problem": str(exc)})
        raise _Refusal(503, f"forwarder configuration is invalid: {exc}") from None
    if len(body) > rt.config.max_body_bytes:
        logger.warning(
            "request body too large", extra={"bytes": len(body), "limit": rt.config.max_body_bytes}
        )
        raise _Refusal(413, f"body is larger than {rt.config.max_body_bytes} bytes")
    try:
        secret = rt.secrets.get()
    except SecretUnavailable as exc:
        logger.error("secret unavailable", extra={"problem": str(exc)})
        raise _Refusal(503, "forwarder secret is unavailable") from None
    return rt, secret, body


def _authenticate(rt: Runtime, secret: ForwarderSecret, body: bytes) -> tuple[ForwarderSecret, str]:
    """The secret in force (it may have been re-read) and how the request authenticated."""
    headers = {name.lower(): value for name, value in (app.current_event.headers or {}).items()}

    def decide(current: ForwarderSecret) -> AuthDecision:
        return authenticate(
            headers,
            body,
            webhook_token=current.webhook_token,
            shared_secret=current.segment_shared_secret,
        )

    decision = decide(secret)
    if decision.method is None:
        # The token or shared secret may have just been changed in Secrets Manager: Segment
        # drops 401s, so re-read it (at most every AUTH_REFRESH_SECONDS) before refusing.
        try:
            fresh = rt.secrets.refresh_if_due(AUTH_REFRESH_SECONDS)
        except SecretUnavailable:
            fresh = None
        if fresh is not None:
            secret, decision = fresh, decide(fresh)
    if decision.method is None:
        metrics.add_metric(name="UnauthorizedRequests", unit=MetricUnit.Count, value=1)
        logger.warning("request refused", extra={"reason": decision.reason})
        raise _Refusal(401, "unauthorized")
    if not secret.raindrop_key_configured:
        # After authentication, so strangers cannot probe the set-up state.
        logger.error("the Raindrop API key in the secret is missing or a placeholder")
        raise _Refusal(503, "Raindrop API key is not configured yet")
    return secret, decision.method.value


def _forward(
    rt: Runtime,
    secret: ForwarderSecret,
    events: list[Any],
    started: float,
    *,
    shape: str,
    auth: str,
) -> Response[str]:
    remaining = app.lambda_context.get_remaining_time_in_millis() / 1000
    budget = min(rt.config.delivery.budget_seconds, remaining - QUEUEING_RESERVE_SECONDS)
    deadline = started + max(budget, 0.0)
    # Past this, SQS is not asked again: the events left are answered for with a 503.
    queueing_deadline = time.monotonic() + remaining - ANSWER_RESERVE_SECONDS

    result = rt.forwarder.forward(
        events,
        api_key=secret.raindrop_api_key,
        deadline=deadline,
        refresh_key=rt.secrets.fresh_raindrop_key,
    )
    settlement = settle(
        result,
        rt.writer,
        request_id=app.lambda_context.aws_request_id,
        retry_delay_seconds=min(rt.config.retry_base_delay_seconds, 900),
        deadline=queueing_deadline,
    )
    counts = {
        "received": len(events),
        "forwarded": len(result.forwarded),
        "filtered": len(result.filtered),
        "queued": settlement.queued,
        "dead_lettered": settlement.dead_lettered,
    }
    _observe(result, counts, started, shape=shape, auth=auth)
    if settlement.unqueued:
        logger.error(
            "events could be neither delivered nor queued; asking Segment to resend",
            extra={"unqueued": len(settlement.unqueued)},
        )
        return _json(503, {**counts, "unqueued": len(settlement.unqueued)})
    return _json(200, counts)


def _observe(
    result: ForwardResult,
    counts: dict[str, int],
    started: float,
    *,
    shape: str,
    auth: str,
) -> None:
    report = result.delivery
    record_counts(counts)
    record_delivery(report.requests, report.failed_requests, report.latencies_ms)
    by_reason = Counter(failure.reason.value for failure in result.failures.values())
    record_dead_letters(
        {reason: by_reason[reason] for reason in ("invalid", "rejected") if by_reason[reason]}
    )
    for user_hash in result.mapped.deletions:
        logger.info(
            "user deletion request received (not forwarded)", extra={"user_hash": user_hash}
        )
    logger.info(
        "request processed",
        extra={
            **counts,
            "shape": shape,
            "auth": auth,
            "failures_by_reason": dict(by_reason),
            "filtered_by_reason": dict(Counter(result.filtered.values())),
            "raindrop_requests": report.requests,
            "raindrop_statuses": dict(report.statuses),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
