"""The one shape of every message on the retry and dead-letter queues (docs/runbook.md §2).

A message is a job (:mod:`segment_raindrop.core.jobs`: its kind, endpoint, project and events)
with its history: why its events failed, how often, since when, and who wrote it. It carries the
*original* events, not mapped items, so a retry or a replay re-runs the whole pipeline with the
configuration in force then: a fixed mapping rule heals what it had marked invalid.

Messages written before the kind was one field read the same: a validator turns the older
``destination``/``kind`` pair into today's kind (tests/fixtures/queue_messages_v1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from segment_raindrop.core import codec
from segment_raindrop.core.jobs import Job, JobKind
from segment_raindrop.core.outcomes import FailureReason

FORMAT_VERSION = 1


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class QueueMessage(BaseModel):
    """The body of every message on the retry and dead-letter queues (format version 1)."""

    # Built on first use: a webhook that delivers everything never queues, and this schema
    # was ~5 ms of its import.
    model_config = ConfigDict(extra="ignore", defer_build=True)

    format: Literal[1] = 1
    reason: FailureReason
    status: int | None = None
    error: str | None = None
    attempts: int = Field(default=1, ge=0)
    # Receives by the retry worker before this message was written (0: first time queued).
    retries: int = Field(default=0, ge=0)
    first_failure_at: str
    last_failure_at: str
    request_id: str | None = None
    # The entry point that wrote it: webhook, mirror, retry or replay.
    source: str = "webhook"
    # Events too large for any SQS message: only their identifying fields are kept.
    omitted: list[dict[str, Any]] = Field(default_factory=list)
    # The job: what the events are, the Raindrop endpoint of pass-through items, the project.
    kind: JobKind = JobKind.SEGMENT_TO_RAINDROP
    endpoint: str | None = None
    project: str | None = None
    events: list[Any]

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        # Before the kind was one field, a message for Segment said "destination": "segment"
        # beside "kind": "segment_events" (the events the mirror built).
        if isinstance(data, dict) and data.get("destination") == "segment":
            return {**data, "kind": JobKind.MIRROR_TO_SEGMENT.value}
        return data

    @property
    def job(self) -> Job:
        return Job(self.kind, self.events, endpoint=self.endpoint, project=self.project)

    def header_text(self) -> str:
        """The message as JSON without its events and omitted summaries, for the writer to
        splice them into (each event is serialised once, however the events are packed)."""
        return codec.dumps(self.model_dump(mode="json", exclude={"events", "omitted"}))


def parse_message(body: str) -> QueueMessage:
    """A queue message's body; raises ``ValueError`` when it is not one of ours.

    Read by codec.loads, the reader the webhook uses, so whatever the webhook accepted reads
    back (pydantic's own JSON mode refuses lone surrogates and nesting past 201 levels).
    An event the webhook could not read travels as its raw text, a JSON string, and maps as
    invalid ("event is not a JSON object") when retried or replayed.
    """
    return QueueMessage.model_validate(codec.loads(body))
