"""What every API route does with a job it received: deliver -> settle -> tally.

A job received now is delivered within the request's delivery deadline, and what failed is
queued as a first failure (permanent failures dead-lettered, transient ones for the retry
worker) before the queueing deadline; what could be neither is the route's to answer for
(``Settlement.unqueued``).
"""

from __future__ import annotations

from collections.abc import Mapping

from segment_raindrop.adapters.observability import logger
from segment_raindrop.adapters.secrets import SecretUnavailable
from segment_raindrop.core.jobs import Job, UndeliverableJob
from segment_raindrop.core.mapping.items import MapResult
from segment_raindrop.core.outcomes import DeliveryReport, ForwardResult
from segment_raindrop.service.delivery import deliver
from segment_raindrop.service.requests import Deadlines
from segment_raindrop.service.runtime import Runtime
from segment_raindrop.service.settlement import Routing, Settlement, settle
from segment_raindrop.service.tally import Tally


def take(
    rt: Runtime,
    job: Job,
    times: Deadlines,
    *,
    request_id: str,
    tally: Tally,
    queue_when_unsent: bool = False,
) -> tuple[ForwardResult, Settlement]:
    """Deliver ``job`` (one of the request ``request_id``'s) by ``times``, queue what failed.

    ``SecretUnavailable`` (no key to send with) is raised for the route to answer, unless
    ``queue_when_unsent``: then the events are queued for the retry worker instead.
    """
    try:
        result = deliver(job, rt.channels, deadline=times.delivery)
    except (SecretUnavailable, UndeliverableJob) as exc:
        if not queue_when_unsent:
            raise
        logger.error("job not sent; queued for a retry", extra={"problem": str(exc)})
        result = ForwardResult.unsent(job.events, str(exc))
    # Raindrop has no deletion API: every intake logs Segment's requests (as a hash of the user
    # id) so operators notice them.
    for user_hash in result.mapped.deletions:
        logger.info(
            "user deletion request received (not forwarded)", extra={"user_hash": user_hash}
        )
    return result, _first_failure(rt, job, result, times, request_id=request_id, tally=tally)


def defer(
    rt: Runtime, job: Job, error: str, times: Deadlines, *, request_id: str, tally: Tally
) -> Settlement:
    """Queue ``job`` for the retry worker without sending it now (what it needs failed just
    now: ``error``, safe to log), as a first failure."""
    result = ForwardResult.unsent(job.events, error)
    return _first_failure(rt, job, result, times, request_id=request_id, tally=tally)


def refuse(
    rt: Runtime,
    job: Job,
    reasons: Mapping[int, str],
    times: Deadlines,
    *,
    request_id: str,
    tally: Tally,
) -> tuple[ForwardResult, Settlement]:
    """Dead-letter ``job``'s events as invalid without delivering them, each with its reason
    (``reasons``: by index, for every event): what arrived but is not an event at all."""
    invalid = MapResult(invalid=dict(reasons))
    result = ForwardResult.of(job.events, DeliveryReport(), sent=(), mapped=invalid)
    return result, _first_failure(rt, job, result, times, request_id=request_id, tally=tally)


def _first_failure(
    rt: Runtime,
    job: Job,
    result: ForwardResult,
    times: Deadlines,
    *,
    request_id: str,
    tally: Tally,
) -> Settlement:
    """What failed of ``result`` queued as a first failure by the queueing deadline; counted."""
    routing = Routing.first_failure(
        request_id=request_id, retry_delay_seconds=rt.config.retry_base_delay_seconds
    )
    settlement = settle(result, job, rt.writer, routing, deadline=times.queueing)
    tally.add(job, result, settlement)
    return settlement
