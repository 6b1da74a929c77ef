"""Lambda handler for Segment's webhook requests (API Gateway REST, ``POST /segment``, and
``POST /segment/{project}`` to send a request's items to that Raindrop project).

What Segment is told, and why (it retries 5xx, 408 and 429 for four hours and drops 4xx;
docs/wire.md §6):

- 200 with counts: every event was forwarded, filtered, or durably queued by us.
- 400: the body is not JSON, or not an event, an array or a batch envelope.
- 401: the request is not Segment's.
- 404: ``/segment/{project}`` names a malformed project slug, or (after authentication) one
  not in ``RAINDROP_PROJECTS`` when that allow-list is set: a typo must not create a project.
- 413: the body (decompressed, for a gzip or deflate ``Content-Encoding``) is larger than
  ``MAX_BODY_BYTES``.
- 415: a ``Content-Encoding`` other than gzip, deflate or identity.
- 503: we could not take responsibility for the events: the configuration or the secret is
  unusable, the Raindrop key is not set yet, a batch is signed over its first element only and
  no webhook token is configured to check the rest (the answer names the fix), or SQS was
  unreachable while events needed queueing. Segment resends, so a half-finished set-up or an
  outage loses nothing. (An SQS that hangs rather than refuses can outlast even the time kept
  for queueing; a REST proxy integration then answers 502 when the function times out, which
  Segment retries too.)

The route only admits, authenticates and parses; the pipeline does the rest, and every refusal
is an exception turned into its answer by one of the ``@app.exception_handler`` functions.
"""

from __future__ import annotations

import time
from typing import Any

from segment_raindrop.handlers.loading import handler_loading

# In Lambda the rest loads with the garbage collector paused, and is then frozen (loading.py).
with handler_loading():
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from segment_raindrop.adapters.observability import count, logger, metrics, traced_handler
    from segment_raindrop.adapters.secrets import ForwarderSecret, SecretUnavailable
    from segment_raindrop.core.content_encoding import decode_body
    from segment_raindrop.core.contract import Metric
    from segment_raindrop.core.projects import admits, is_project_slug
    from segment_raindrop.core.request_auth import AuthDecision, authenticate
    from segment_raindrop.core.segment_body import BodyError, parse_body
    from segment_raindrop.service.api_front import (
        AUTH_REFRESH_SECONDS,
        Refusal,
        deadlines,
        install_refusals,
        json_response,
        raw_body,
    )
    from segment_raindrop.service.forwarding import ForwardResult
    from segment_raindrop.service.runtime import LazyRuntime, Runtime
    from segment_raindrop.service.settlement import Routing, Tally, settle

app = APIGatewayRestResolver()
runtime = LazyRuntime(source="webhook")


def _error_body(_status: int, message: str) -> dict[str, Any]:
    return {"error": message}


_refuse = install_refusals(app, _error_body, name_bad_settings=True)


def _bad_body(exc: BodyError) -> Response[str]:
    logger.warning("bad request body", extra={"problem": str(exc)})
    return _refuse(400, str(exc))


app.exception_handler(BodyError)(_bad_body)


@app.post("/segment")
@app.post("/v1/batch")  # where Segment's server libraries post; the stack routes it here too
def receive() -> Response[str]:
    return _receive(project=None)


@app.post("/segment/<project>")
def receive_for_project(project: str) -> Response[str]:
    """One Segment destination per source, each to its own Raindrop project."""
    # Raindrop would create a project for any new slug: refuse malformed ones before anything.
    if not is_project_slug(project):
        raise Refusal(404, "not found")
    return _receive(project=project)


def _receive(*, project: str | None) -> Response[str]:
    started = time.monotonic()
    raw = raw_body(app.current_event)
    rt = runtime.get()
    # Segment signs the uncompressed JSON, so the body is decoded before it is authenticated;
    # decoding stops at the size limit, so a compressed bomb costs no more than a large body.
    body = decode_body(
        raw,
        app.current_event.headers.get("content-encoding"),
        max_bytes=rt.config.max_body_bytes,
    )
    secret, auth = _authenticate(rt, rt.secrets.get(), body)
    # After authentication, so strangers can probe neither the allow-list nor the set-up state.
    if project is not None and not admits(project, rt.config.delivery.projects):
        logger.warning("request for a project not in RAINDROP_PROJECTS refused")
        raise Refusal(404, "not found")
    api_key = secret.require_raindrop_key()
    parsed = parse_body(body)
    return _forward(
        rt,
        secret,
        api_key,
        parsed.events,
        started,
        shape=parsed.shape,
        auth=auth,
        project=project,
    )


def _authenticate(rt: Runtime, secret: ForwarderSecret, body: bytes) -> tuple[ForwarderSecret, str]:
    """The secret in force (it may have been re-read) and how the request authenticated."""
    headers = app.current_event.headers  # Powertools' case-insensitive view

    def decide(current: ForwarderSecret) -> AuthDecision:
        return authenticate(
            headers,
            body,
            webhook_token=current.webhook_token,
            shared_secret=current.segment_shared_secret,
            previous_webhook_token=current.webhook_token_previous,
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
    if decision.unverifiable:
        # Genuine as far as it can be checked, but events 2..n are not covered: refusing with
        # a 4xx would make Segment drop them, so ask it to resend until the set-up is fixed.
        count(Metric.UNVERIFIABLE_BATCHES)
        logger.error("batch cannot be verified", extra={"reason": decision.reason})
        raise Refusal(503, decision.reason)
    if decision.method is None:
        count(Metric.UNAUTHORIZED_REQUESTS)
        logger.warning("request refused", extra={"reason": decision.reason})
        raise Refusal(401, "unauthorized")
    return secret, decision.method.value


def _forward(
    rt: Runtime,
    secret: ForwarderSecret,
    api_key: str,
    events: list[Any],
    started: float,
    *,
    shape: str,
    auth: str,
    project: str | None,
) -> Response[str]:
    times = deadlines(app.lambda_context, started, budget=rt.config.delivery.budget_seconds)
    result = rt.forwarder.forward(
        events,
        api_key=api_key,
        deadline=times.delivery,
        refresh_key=rt.secrets.fresh_raindrop_key,
        user_hash_key=secret.deletion_hash_key,
        project=project,
    )
    settlement = settle(
        result,
        rt.writer,
        Routing.webhook(retry_delay_seconds=rt.config.retry_base_delay_seconds, project=project),
        request_id=app.lambda_context.aws_request_id,
        deadline=times.queueing,
    )
    tally = Tally()
    tally.events["received"] = len(events)
    tally.forwarded(result)
    tally.settled(settlement)
    counts = tally.counts("received", "forwarded", "filtered", "queued", "dead_lettered")
    tally.publish(*counts)
    _log(result, tally, counts, started, shape=shape, auth=auth)
    if settlement.unqueued:
        logger.error(
            "events could be neither delivered nor queued; asking Segment to resend",
            extra={"unqueued": len(settlement.unqueued)},
        )
        return json_response(503, {**counts, "unqueued": len(settlement.unqueued)})
    return json_response(200, counts)


def _log(
    result: ForwardResult,
    tally: Tally,
    counts: dict[str, int],
    started: float,
    *,
    shape: str,
    auth: str,
) -> None:
    report = result.delivery
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
            "failures_by_reason": dict(tally.failed_by_reason),
            "filtered_by_reason": dict(tally.filtered_by_reason),
            # Counts and field names only: never the text repaired or the timestamps.
            "texts_repaired": result.mapped.repaired_texts,
            "attachments_dropped": tally.events["attachments_dropped"],
            "timestamp_fallbacks": dict(result.mapped.timestamp_fallbacks),
            "redactions": dict(tally.redactions),
            "raindrop_requests": report.requests,
            "raindrop_statuses": dict(report.statuses),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
