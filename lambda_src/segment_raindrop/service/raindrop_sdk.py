"""A request from Raindrop's SDK pointed at the stack (``/raindrop/v1/<endpoint>``): forwarded to
Raindrop unchanged, then mirrored into Segment.

``raindrop.init(api_key=<the usual Raindrop key>, endpoint=<RaindropSdkEndpoint>)``: the
SDK posts ``events/track``, ``signals/track``, ``users/identify`` (JSON arrays),
``events/track_partial`` (one object) and ``traces`` (OTLP JSON, forwarded only); with tracing
on, its exporter posts OTLP protobuf to ``/traces`` (forwarded byte for byte as a
:attr:`~segment_raindrop.core.jobs.JobKind.RAINDROP_BYTES` job).

1. **Raindrop first**, the body exactly as received (and ``X-Raindrop-Project-Id`` passed on),
   as a :attr:`~segment_raindrop.core.jobs.JobKind.RAINDROP_PASS_THROUGH` job; with
   ``REDACT_PII`` or ``REDACT_KEYS`` set, the items redacted (and so re-serialised) instead.
   An item nested too deeply to read is dead-lettered on its own; the others go.
2. **Then Segment**: the items' Segment copies (:mod:`segment_raindrop.service.segment_copies`)
   as a :attr:`~segment_raindrop.core.jobs.JobKind.MIRROR_TO_SEGMENT` job. A missing or
   placeholder ``segment_write_key`` turns the mirror off (logged, ``MirrorDisabled``), never
   the forwarding.

The webhook's guarantees hold here too: only the stored Raindrop key authenticates (the webhook
token too only with ``MIRROR_ACCEPTS_WEBHOOK_TOKEN``), the project must be on
``RAINDROP_PROJECTS`` when that is set, and redaction applies to what Raindrop and Segment get.

Answers: 2xx once every item reached Raindrop or is durably queued for it; 503 when some item
could be neither (the SDK resends on 5xx); 401 for a bearer key it does not accept; 400 for a
body Raindrop would refuse to parse or a malformed project header; 404 for a project not on
the allow-list. The Segment copy is delivered or queued; failing both, it is counted in
``MirrorFailures`` and logged, and then the answer depends on what a resend costs: 503 for AI
events and partial events (Raindrop takes them again without a second copy, and the SDK still
holds them), 200 with ``mirror_unkept`` for signals and identifies, which a resend would give
Raindrop twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segment_raindrop.adapters.observability import count, logger
from segment_raindrop.adapters.secrets import SecretValues
from segment_raindrop.core import codec
from segment_raindrop.core.contract import Metric
from segment_raindrop.core.jobs import Job, JobKind
from segment_raindrop.core.projects import (
    PRODUCTION_PROJECT,
    PROJECT_HEADER,
    admits,
    is_project_slug,
)
from segment_raindrop.core.raindrop_api import (
    IDEMPOTENT_ENDPOINTS,
    SINGLE_OBJECT_ENDPOINTS,
    Endpoint,
)
from segment_raindrop.core.redaction import Redactor
from segment_raindrop.core.segment_body import BodyError, parse_body
from segment_raindrop.core.stored_body import stored
from segment_raindrop.service import authentication
from segment_raindrop.service.intake import defer, take
from segment_raindrop.service.requests import Answer, ApiRequest, Deadlines, Refusal
from segment_raindrop.service.runtime import Runtime
from segment_raindrop.service.segment_copies import Copies, segment_copies
from segment_raindrop.service.tally import Count, Tally


@dataclass(frozen=True, slots=True)
class _Mirrored:
    # Partial patches queued for the table (on the Segment ledger as queued, not yet events).
    deferred: int = 0
    # Segment copies, and partial patches, that could be neither sent nor queued.
    unkept: int = 0


def receive(rt: Runtime, request: ApiRequest, endpoint: Endpoint) -> Answer:
    count(Metric.RAINDROP_SDK_REQUESTS)
    headers = request.headers
    # The key is a header: a stranger's body is never decoded.
    secret = authentication.sdk_request(
        rt.secrets, headers, accepts_webhook_token=rt.config.mirror.accepts_webhook_token
    )
    project = _project(headers.get(PROJECT_HEADER))
    # After authentication, so strangers can probe neither the allow-list nor the set-up state.
    # As on the webhook, a project named by the request must be allowed; none is Production.
    if project != PRODUCTION_PROJECT and not admits(project, rt.config.delivery.projects):
        logger.warning("request for a project not in RAINDROP_PROJECTS refused")
        raise Refusal(404, "not found")
    secret.require_raindrop_key()
    body = request.decoded_body(max_bytes=rt.config.max_body_bytes)
    tally = Tally()
    if endpoint is Endpoint.TRACES and not _is_json(headers.get("content-type")):
        items = [_opaque_spans(rt, headers.get("content-type") or "", body)]
        job = Job(JobKind.RAINDROP_BYTES, items, endpoint=endpoint, project=project)
    else:
        items, changed = _redacted(rt, _items(endpoint, body), tally)
        raw = None if changed else body
        job = Job(JobKind.RAINDROP_PASS_THROUGH, items, endpoint=endpoint, project=project, raw=raw)
    times = request.deadlines(budget=rt.config.delivery.budget_seconds)
    result, settlement = take(rt, job, times, request_id=request.request_id, tally=tally)
    mirrored = _mirror(
        rt, secret, endpoint, items, times, request_id=request.request_id, tally=tally
    )
    tally.publish(Count.QUEUED, Count.DEAD_LETTERED)
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
            "mirror": tally.segment.nonzero(),
            "raindrop_statuses": dict(result.delivery.statuses),
            "duration_ms": request.elapsed_ms(),
        },
    )
    if settlement.unqueued:
        logger.error(
            "items could be neither delivered nor queued; asking the SDK to resend",
            extra={"unqueued": len(settlement.unqueued)},
        )
        return Answer(503, {**counts, "unqueued": len(settlement.unqueued)})
    if mirrored.unkept:
        counts["mirror_unkept"] = mirrored.unkept
        if endpoint in IDEMPOTENT_ENDPOINTS:
            # The SDK still holds the items and resends on 5xx; Raindrop takes them again
            # without a second copy, and the resend brings the Segment copy another chance.
            logger.warning("Segment copy not kept; asking the SDK to resend")
            return Answer(503, counts)
    # Segment events sent or queued; patches queued for the table are not events (yet).
    segment = tally.segment.counts
    sent_or_queued = segment[Count.FORWARDED] + segment[Count.QUEUED] - mirrored.deferred
    return Answer(200, {**counts, "mirrored": sent_or_queued})


def _mirror(
    rt: Runtime,
    secret: SecretValues,
    endpoint: Endpoint,
    items: list[Any],
    times: Deadlines,
    *,
    request_id: str,
    tally: Tally,
) -> _Mirrored:
    """Send the Segment copy of ``items``; what became of it is on the Segment ledger."""
    if not rt.config.mirror.enabled or endpoint is Endpoint.TRACES:
        return _Mirrored()
    if not secret.segment_write_key_configured:
        count(Metric.MIRROR_DISABLED)
        logger.warning("mirror to Segment is off: segment_write_key is missing or a placeholder")
        tally.segment.counts[Count.DISABLED] += len(items)
        return _Mirrored()
    copies = segment_copies(
        endpoint, items, mapping=rt.config.mapping, partials=rt.partials, ledger=tally.segment
    )
    deferred = _defer_patches(rt, copies, times, request_id=request_id, tally=tally)
    if not copies.events:
        return deferred
    job = Job(JobKind.MIRROR_TO_SEGMENT, copies.events)
    # Without the write key now, the copies wait on the queue.
    _, settlement = take(rt, job, times, request_id=request_id, tally=tally, queue_when_unsent=True)
    if settlement.unqueued:
        logger.error(
            "mirrored events could be neither delivered nor queued",
            extra={"unqueued": len(settlement.unqueued)},
        )
    return _Mirrored(deferred.deferred, deferred.unkept + len(settlement.unqueued))


def _defer_patches(
    rt: Runtime, copies: Copies, times: Deadlines, *, request_id: str, tally: Tally
) -> _Mirrored:
    """Queue the partial patches the table could not take now."""
    if not copies.deferred:
        return _Mirrored()
    # The table failed for these patches: the retry worker merges them later.
    patches = Job(JobKind.PARTIAL_PATCHES, [patch for _, patch, _ in copies.deferred])
    reason = copies.deferred[0][2]
    deferred = defer(rt, patches, reason, times, request_id=request_id, tally=tally)
    if deferred.unqueued:
        logger.error(
            "partial events could be neither merged nor queued",
            extra={
                "unqueued": len(deferred.unqueued),
                "event_ids": [patches.events[i].get("event_id") for i in deferred.unqueued],
                "reason": reason,
            },
        )
    return _Mirrored(deferred.queued, len(deferred.unqueued))


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _opaque_spans(rt: Runtime, content_type: str, body: bytes) -> dict[str, str]:
    """Spans the SDK's OTLP exporter sent as protobuf, to forward as they came. They cannot be
    read here, so not redacted either: with redaction on they are refused, never passed on in
    clear (tool spans the SDK sends as OTLP JSON are redacted like any item)."""
    mapping = rt.config.mapping
    if mapping.redact_pii or mapping.redact_keys:
        raise Refusal(
            415, "spans must be OTLP JSON while the forwarder redacts (REDACT_PII, REDACT_KEYS)"
        )
    if not body:
        raise Refusal(400, "body is empty")
    return stored(content_type, body)


# What identifies and names a Raindrop item: never redacted, so it still links and routes.
_ITEM_IDS = frozenset(
    {"event_id", "user_id", "event", "timestamp", "is_pending", "signal_name", "signal_type",
     "sentiment", "attachment_id", "convo_id"}
)  # fmt: skip


def _redacted(rt: Runtime, items: list[Any], tally: Tally) -> tuple[list[Any], bool]:
    """``items`` with REDACT_PII/REDACT_KEYS applied to everything but their ids (the same
    redactor as the webhook's), and whether any changed. Redacted here, before anything is
    sent or queued, so neither Raindrop, Segment nor a queue ever holds the clear text."""
    mapping = rt.config.mapping
    redactor = Redactor(pii=mapping.redact_pii, drop_keys=mapping.redact_keys)
    if not redactor.active:
        return items, False
    redacted = [
        {key: value if key in _ITEM_IDS else redactor.value(value) for key, value in item.items()}
        if isinstance(item, dict)
        else item
        for item in items
    ]
    tally.raindrop.redactions.update(redactor.counts)
    return redacted, redacted != items


def _project(header: str | None) -> str:
    """The request's own project, as Raindrop reads the header: none, empty or ``default`` is
    Production (never the webhook's configured project)."""
    slug = (header or "").strip()
    if not slug:
        return PRODUCTION_PROJECT
    if not is_project_slug(slug):
        raise Refusal(400, f"{PROJECT_HEADER} is not a valid project slug")
    return slug


def _items(endpoint: Endpoint, body: bytes) -> list[Any]:
    """The request's items: its one object, or the elements of its array, read one by one
    when the whole cannot be (an element nested too deeply is kept as an
    :class:`~segment_raindrop.core.codec.UnparsedEvent`, dead-lettered alone)."""
    if endpoint in SINGLE_OBJECT_ENDPOINTS:
        try:
            parsed = codec.loads(body)
        except ValueError:
            raise Refusal(400, "body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise Refusal(400, "body must be a JSON object")
        if endpoint is Endpoint.TRACK_PARTIAL and not isinstance(parsed.get("event_id"), str):
            raise Refusal(400, "a partial event needs an event_id")
        return [parsed]
    try:
        document = parse_body(body)
    except BodyError:
        raise Refusal(400, "body is not valid JSON") from None
    if document.shape != "array" or not document.events:
        raise Refusal(400, "body must be a non-empty JSON array")
    return document.events
