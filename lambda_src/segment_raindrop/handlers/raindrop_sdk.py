"""Lambda handler for Raindrop's SDK pointed at the stack (API Gateway REST proxy): Raindrop's
own API under ``/raindrop/v1/``, forwarded to Raindrop unchanged and mirrored into Segment.

``raindrop.init(api_key=<the usual Raindrop key>, endpoint=<WebhookApi>/raindrop/v1/)``: the
SDK posts ``events/track``, ``signals/track``, ``users/identify`` (JSON arrays),
``events/track_partial`` (one object) and ``traces`` (OTLP JSON, forwarded only).

1. **Raindrop first**, the body exactly as received (and ``X-Raindrop-Project-Id`` passed on),
   with the webhook's delivery semantics: retries inside the budget, then the retry queue,
   permanent failures to the dead-letter queue (messages of kind ``raindrop_items``).
2. **Then Segment** (``POST {SEGMENT_API_URL}/batch``): the items mapped back to the guide's
   schema (:mod:`segment_raindrop.core.segment_copy`); partial events merged by event_id
   (:mod:`segment_raindrop.adapters.partials`) and mirrored once finished. Failures are queued for
   Segment (``destination: segment``). A missing or placeholder ``segment_write_key`` turns the
   mirror off (logged, ``MirrorDisabled``), never the forwarding.

Answers: 2xx once every item reached Raindrop or is durably queued for it; 503 when some item
could be neither (the SDK resends on 5xx); 401 for a bearer key that is neither the stored
Raindrop key nor the webhook token; 400 for a body Raindrop would refuse to parse; 404 for a
malformed project header. What happens to the Segment copy never changes the answer: it is
delivered, queued or, failing both, counted in ``MirrorFailures`` and logged, because a 5xx
would make the SDK send Raindrop the same signals twice.
"""

from __future__ import annotations

import hmac
import time
from collections import Counter
from typing import Any

from segment_raindrop.handlers.loading import handler_loading

# In Lambda the rest loads with the garbage collector paused, and is then frozen (loading.py).
with handler_loading():
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from segment_raindrop.adapters.observability import count, logger, metrics, traced_handler
    from segment_raindrop.adapters.partials import PartialsUnavailable
    from segment_raindrop.adapters.queue_writer import Destination, MessageKind, Payload
    from segment_raindrop.adapters.secrets import ForwarderSecret, SecretUnavailable
    from segment_raindrop.core import codec
    from segment_raindrop.core.content_encoding import decode_body
    from segment_raindrop.core.contract import Metric
    from segment_raindrop.core.projects import PROJECT_HEADER, is_project_slug
    from segment_raindrop.core.raindrop_api import SINGLE_OBJECT_ENDPOINTS, Endpoint
    from segment_raindrop.core.segment_copy import NotMirrorable, encode, to_segment
    from segment_raindrop.service.api_front import (
        AUTH_REFRESH_SECONDS,
        Refusal,
        deadlines,
        install_refusals,
        json_response,
        raw_body,
    )
    from segment_raindrop.service.relay import send_raindrop_items, send_segment_events
    from segment_raindrop.service.runtime import LazyRuntime, Runtime
    from segment_raindrop.service.settlement import Routing, Tally, settle

PATH_PREFIX = "/raindrop/v1"

app = APIGatewayRestResolver()
runtime = LazyRuntime(source="mirror")


def _error_body(status: int, message: str) -> dict[str, Any]:
    # Raindrop's own error shape, which its SDK expects.
    return {"error": {"code": status, "message": message}}


install_refusals(app, _error_body, name_bad_settings=False)


@app.post(f"{PATH_PREFIX}/events/track")
def track() -> Response[str]:
    return _receive(Endpoint.TRACK)


@app.post(f"{PATH_PREFIX}/events/track_partial")
def track_partial() -> Response[str]:
    return _receive(Endpoint.TRACK_PARTIAL)


@app.post(f"{PATH_PREFIX}/signals/track")
def signals() -> Response[str]:
    return _receive(Endpoint.SIGNAL)


@app.post(f"{PATH_PREFIX}/users/identify")
def identify() -> Response[str]:
    return _receive(Endpoint.IDENTIFY)


@app.post(f"{PATH_PREFIX}/traces")
def traces() -> Response[str]:
    return _receive(Endpoint.TRACES)


def _receive(endpoint: Endpoint) -> Response[str]:
    started = time.monotonic()
    count(Metric.RAINDROP_SDK_REQUESTS)
    rt = runtime.get()
    headers = app.current_event.headers
    body = decode_body(
        raw_body(app.current_event),
        headers.get("content-encoding"),
        max_bytes=rt.config.max_body_bytes,
    )
    secret = _authenticate(rt, headers.get("authorization") or "")
    api_key = secret.require_raindrop_key()
    project = _project(headers.get(PROJECT_HEADER))
    items = _items(endpoint, body)

    times = deadlines(app.lambda_context, started, budget=rt.config.delivery.budget_seconds)
    request_id = app.lambda_context.aws_request_id

    result = send_raindrop_items(
        rt.forwarder.client,
        endpoint,
        items,
        api_key=api_key,
        deadline=times.delivery,
        refresh_key=rt.secrets.fresh_raindrop_key,
        project=project,
        raw=body,
    )
    payload = Payload(Destination.RAINDROP, MessageKind.RAINDROP_ITEMS, endpoint.value)
    settlement = settle(
        result,
        rt.writer,
        Routing.webhook(
            retry_delay_seconds=rt.config.retry_base_delay_seconds,
            project=project,
            payload=payload,
        ),
        request_id=request_id,
        deadline=times.queueing,
    )
    tally = Tally()
    tally.forwarded(result)
    tally.settled(settlement)
    tally.publish("queued", "dead_lettered")
    mirrored = _mirror(
        rt,
        secret,
        endpoint,
        items,
        deadline=times.delivery,
        queueing_deadline=times.queueing,
        request_id=request_id,
    )
    counts = {
        "received": len(items),
        "forwarded": len(result.forwarded),
        "queued": settlement.queued,
        "dead_lettered": settlement.dead_lettered,
    }
    logger.info(
        "raindrop sdk request processed",
        extra={
            **counts,
            "endpoint": endpoint.value,
            "mirror": dict(mirrored),
            "raindrop_statuses": dict(result.delivery.statuses),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    if settlement.unqueued:
        logger.error(
            "items could be neither delivered nor queued; asking the SDK to resend",
            extra={"unqueued": len(settlement.unqueued)},
        )
        return json_response(503, {**counts, "unqueued": len(settlement.unqueued)})
    return json_response(200, {**counts, "mirrored": mirrored["sent"] + mirrored["queued"]})


def _authenticate(rt: Runtime, authorization: str) -> ForwarderSecret:
    """The secret in force when the bearer key is the Raindrop key or the webhook token."""
    scheme, _, given = authorization.strip().partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    secret = rt.secrets.get()
    if given and _accepts(secret, given):
        return secret
    if given:
        # The key may have just been rotated in Secrets Manager: re-read it (rate-limited).
        try:
            fresh = rt.secrets.refresh_if_due(AUTH_REFRESH_SECONDS)
        except SecretUnavailable:
            fresh = None
        if fresh is not None and _accepts(fresh, given):
            return fresh
    count(Metric.UNAUTHORIZED_REQUESTS)
    logger.warning("raindrop sdk request refused", extra={"reason": "bearer key not accepted"})
    raise Refusal(401, "invalid or missing API key")


def _accepts(secret: ForwarderSecret, given: str) -> bool:
    # Both compared every time, in constant time each, so timing tells nothing of which.
    candidates = [secret.raindrop_api_key if secret.raindrop_key_configured else ""]
    candidates.append(secret.webhook_token or "")
    matches = [hmac.compare_digest(given.encode(), key.encode()) for key in candidates if key]
    return any(matches)


def _project(header: str | None) -> str | None:
    if header is None or not header.strip() or header.strip() == "default":
        return None
    if not is_project_slug(header.strip()):
        raise Refusal(400, f"{PROJECT_HEADER} is not a valid project slug")
    return header.strip()


def _items(endpoint: Endpoint, body: bytes) -> list[Any]:
    try:
        parsed = codec.loads(body)
    except ValueError:
        raise Refusal(400, "body is not valid JSON") from None
    if endpoint in SINGLE_OBJECT_ENDPOINTS:
        if not isinstance(parsed, dict):
            raise Refusal(400, "body must be a JSON object")
        if endpoint is Endpoint.TRACK_PARTIAL and not isinstance(parsed.get("event_id"), str):
            raise Refusal(400, "a partial event needs an event_id")
        return [parsed]
    if not isinstance(parsed, list) or not parsed:
        raise Refusal(400, "body must be a non-empty JSON array")
    return parsed


def _mirror(
    rt: Runtime,
    secret: ForwarderSecret,
    endpoint: Endpoint,
    items: list[Any],
    *,
    deadline: float,
    queueing_deadline: float,
    request_id: str,
) -> Counter[str]:
    """Send the Segment copy of ``items``; what became of it, by outcome."""
    outcome: Counter[str] = Counter(sent=0, queued=0)
    if not rt.config.mirror.enabled or endpoint is Endpoint.TRACES:
        return outcome
    write_key = secret.segment_write_key
    if write_key is None or not secret.segment_write_key_configured:
        count(Metric.MIRROR_DISABLED)
        logger.warning("mirror to Segment is off: segment_write_key is missing or a placeholder")
        outcome["disabled"] = len(items)
        return outcome
    events: list[dict[str, Any]] = []
    for item in items:
        source = _finished(rt, endpoint, item, outcome)
        if source is None:
            continue
        try:
            event = to_segment(endpoint, source, rt.config.mapping)
        except NotMirrorable as exc:
            outcome["not_mirrorable"] += 1
            logger.warning("item not mirrored", extra={"reason": str(exc)})
            continue
        if encode(event).truncated:  # cuts ``event`` in place, so what is queued fits too
            outcome["truncated"] += 1
        events.append(event)
    if events:
        result = send_segment_events(rt.segment, events, write_key=write_key, deadline=deadline)
        settlement = settle(
            result,
            rt.writer,
            Routing.webhook(
                retry_delay_seconds=rt.config.retry_base_delay_seconds,
                payload=Payload(Destination.SEGMENT),
            ),
            request_id=request_id,
            deadline=queueing_deadline,
        )
        outcome["sent"] = len(result.forwarded)
        outcome["queued"] = settlement.queued
        outcome["dead_lettered"] = settlement.dead_lettered
        outcome["lost"] += len(settlement.unqueued)
        if settlement.unqueued:
            logger.error(
                "mirrored events could be neither delivered nor queued",
                extra={"unqueued": len(settlement.unqueued)},
            )
    _publish(outcome)
    return outcome


def _finished(rt: Runtime, endpoint: Endpoint, item: Any, outcome: Counter[str]) -> Any:
    """The item to mirror: itself, or for a partial event the whole interaction once it is
    finished (None while it is pending, or when its patches cannot be kept)."""
    if endpoint is not Endpoint.TRACK_PARTIAL:
        return item
    finished = item.get("is_pending") is False
    if rt.partials is None:
        # No table: only an interaction sent whole (one finishing patch) can be mirrored.
        if not finished:
            outcome["pending_untracked"] += 1
            return None
        return {key: value for key, value in item.items() if key != "is_pending"}
    try:
        merged = rt.partials.add(item)
    except PartialsUnavailable as exc:
        outcome["lost"] += 1
        logger.error("partial event not mirrored", extra={"reason": str(exc)})
        return None
    if merged is None:
        outcome["pending"] += 1
    return merged


def _publish(outcome: Counter[str]) -> None:
    if outcome["sent"]:
        count(Metric.MIRROR_EVENTS_SENT, outcome["sent"])
    failures = (
        outcome["queued"] + outcome["dead_lettered"] + outcome["lost"] + outcome["not_mirrorable"]
    )
    if failures:
        count(Metric.MIRROR_FAILURES, failures)
    if outcome["truncated"]:
        count(Metric.MIRROR_EVENTS_TRUNCATED, outcome["truncated"])


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
