"""A request from Segment (``POST /segment``, ``/segment/{project}``, ``/v1/batch``): admitted,
authenticated and parsed, then its events delivered to Raindrop as one job.

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
"""

from __future__ import annotations

import functools

from segment_raindrop.adapters.observability import logger
from segment_raindrop.core.jobs import Job, JobKind
from segment_raindrop.core.outcomes import ForwardResult
from segment_raindrop.core.projects import admits, is_project_slug, resolved
from segment_raindrop.core.request_auth import AuthMethod
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop.service import authentication
from segment_raindrop.service.intake import take
from segment_raindrop.service.requests import Answer, ApiRequest, Refusal
from segment_raindrop.service.runtime import Runtime
from segment_raindrop.service.tally import Count, Tally

# What the answer counts, in this order; they add up to ``received``.
ANSWERED = (Count.RECEIVED, Count.FORWARDED, Count.FILTERED, Count.QUEUED, Count.DEAD_LETTERED)


def check_project(project: str) -> None:
    """Raindrop would create a project for any new slug: a malformed one is refused before
    anything else is done (the allow-list only after authentication)."""
    if not is_project_slug(project):
        raise Refusal(404, "not found")


def receive(rt: Runtime, request: ApiRequest, *, project: str | None) -> Answer:
    # Segment signs the uncompressed JSON: a signature is checked against the decoded body, so
    # decoding comes first for a request authenticated by its signature alone, and after the
    # token for any other. Decoding is bounded (size, members, layers) either way.
    @functools.cache
    def body() -> bytes:
        return request.decoded_body(max_bytes=rt.config.max_body_bytes)

    secret, method = authentication.segment_request(rt.secrets, request.headers, body)
    # After authentication, so strangers can probe neither the allow-list nor the set-up state.
    if project is not None and not admits(project, rt.config.delivery.projects):
        logger.warning("request for a project not in RAINDROP_PROJECTS refused")
        raise Refusal(404, "not found")
    secret.require_raindrop_key()
    parsed = parse_body(body())
    routed = resolved(project, rt.config.delivery.project_id)
    job = Job(JobKind.SEGMENT_TO_RAINDROP, parsed.events, project=routed)
    tally = Tally()
    tally.raindrop.counts[Count.RECEIVED] = len(job.events)
    times = request.deadlines(budget=rt.config.delivery.budget_seconds)
    result, settlement = take(rt, job, times, request_id=request.request_id, tally=tally)
    tally.publish(*ANSWERED)
    counts = tally.raindrop.of(*ANSWERED)
    _log(request, result, tally, counts, shape=parsed.shape, method=method)
    if settlement.unqueued:
        logger.error(
            "events could be neither delivered nor queued; asking Segment to resend",
            extra={"unqueued": len(settlement.unqueued)},
        )
        return Answer(503, {**counts, "unqueued": len(settlement.unqueued)})
    return Answer(200, counts)


def _log(
    request: ApiRequest,
    result: ForwardResult,
    tally: Tally,
    counts: dict[str, int],
    *,
    shape: str,
    method: AuthMethod,
) -> None:
    ledger = tally.raindrop
    logger.info(
        "request processed",
        extra={
            **counts,
            "shape": shape,
            "auth": method.value,
            "failures_by_reason": dict(ledger.failed_by_reason),
            "filtered_by_reason": dict(ledger.filtered_by_reason),
            # Counts and field names only: never the text repaired or the timestamps.
            "texts_repaired": ledger.counts[Count.TEXTS_REPAIRED],
            "attachments_dropped": ledger.counts[Count.ATTACHMENTS_DROPPED],
            "timestamp_fallbacks": dict(result.mapped.timestamp_fallbacks),
            "redactions": dict(ledger.redactions),
            "raindrop_requests": ledger.delivery.requests,
            "raindrop_statuses": dict(ledger.delivery.statuses),
            "duration_ms": request.elapsed_ms(),
        },
    )
