"""What to replay and how: the replay Lambda's event and the CLI's options."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from segment_raindrop.core.outcomes import FailureReason


class ReplayOptions(BaseModel):
    """What to replay and how; also the replay Lambda's event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_messages: int | None = Field(default=None, ge=1)  # None: every message
    dry_run: bool = False
    # Events were forwardable when they failed; if the mapping in force now filters them, the
    # replay most likely runs with other settings than the deployment (a CLI without its
    # FORWARD_EVENT_* variables). Their message is kept, and the run not ok, unless this is set.
    drop_filtered: bool = False
    reason: FailureReason | None = None
    # Compared with the message's first failure: since <= first_failure_at < until.
    since: datetime | None = None
    until: datetime | None = None
    rate: float | None = Field(default=None, gt=0)  # events per second; None: unlimited
    visibility_timeout: int = Field(default=300, ge=30, le=43_000)
    # Delivery budget per message; None: DELIVERY_BUDGET_SECONDS, at most 60 s.
    message_budget_seconds: float | None = Field(default=None, gt=0, le=900)
    # Long polling per receive: short polls can come back empty while messages remain.
    wait_seconds: int = Field(default=1, ge=0, le=20)

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be earlier than until")
        return self

    def selects(self, reason: FailureReason, first_failure_at: str) -> bool:
        """Whether a message failed for ``reason`` first at ``first_failure_at`` is chosen."""
        if self.reason is not None and reason != self.reason:
            return False
        if self.since is None and self.until is None:
            return True
        first = _parse_time(first_failure_at)
        if first is None:
            return False
        if self.since is not None and first < self.since:
            return False
        return self.until is None or first < self.until


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
