"""Every setting of the forwarder, as validated values.

The models are the configuration; where the values come from is someone else's concern: the
Lambda functions read them from environment variables (:mod:`segment_raindrop.core.environment`,
which also writes that environment for the stack), local mode, the CLI and the tests build them
directly. Each field's alias is its environment variable, so errors name the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from segment_raindrop.core.contract import (
    DEFAULT_RETRY_MAX_RECEIVES,
    LOCAL_STAGE,
    MAX_DECODED_BODY_BYTES,
    SEGMENT_PARTNER_SOURCE,
    WEBHOOK_DELIVERY_BUDGET_SECONDS,
)
from segment_raindrop.core.field_paths import validate_field_paths
from segment_raindrop.core.projects import check_slugs

DEFAULT_RAINDROP_API_URL = "https://api.raindrop.ai/v1"
# Segment's HTTP Tracking API; EU workspaces use https://events.eu1.segmentapis.com/v1.
DEFAULT_SEGMENT_API_URL = "https://api.segment.io/v1"

NonEmptyStr = Annotated[str, Field(min_length=1)]


def _base_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


# An API's base URL, without the trailing slash the endpoints are joined with.
BaseUrl = Annotated[NonEmptyStr, AfterValidator(_base_url)]


def describe_errors(exc: ValidationError, *, name: Callable[[str], str] | None = None) -> str:
    """A ValidationError as ``where: problem; ...`` without echoing any input value; ``name``
    turns a top-level field name into what the user wrote (a variable, a context key)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        if loc and name is not None:
            loc[0] = name(loc[0])
        problems.append(f"{'.'.join(loc) or 'value'}: {error['msg']}")
    return "; ".join(problems)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting (variable or key)."""


class MappingConfig(BaseModel):
    """Which Segment events are forwarded and how they are named (docs/wire.md §3)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    forward_event_prefixes: tuple[NonEmptyStr, ...] = Field(
        default=("AI ",), validation_alias="FORWARD_EVENT_PREFIXES"
    )
    forward_event_names: frozenset[NonEmptyStr] = Field(
        default=frozenset(), validation_alias="FORWARD_EVENT_NAMES"
    )
    event_renames: dict[NonEmptyStr, NonEmptyStr] = Field(
        default_factory=lambda: {"AI Chat Completed": "ai_interaction"},
        validation_alias="EVENT_RENAMES",
    )
    feedback_event_names: frozenset[NonEmptyStr] = Field(
        default=frozenset({"AI Feedback Submitted"}), validation_alias="FEEDBACK_EVENT_NAMES"
    )
    forward_identify: bool = Field(default=True, validation_alias="FORWARD_IDENTIFY")
    enrich_from_context_traits: bool = Field(
        default=True, validation_alias="ENRICH_FROM_CONTEXT_TRAITS"
    )
    # Personal data and credentials replaced by placeholders before items leave the account,
    # and property/trait keys dropped at any depth (segment_raindrop.core.redaction).
    redact_pii: bool = Field(default=False, validation_alias="REDACT_PII")
    redact_keys: frozenset[NonEmptyStr] = Field(default=frozenset(), validation_alias="REDACT_KEYS")
    # Raindrop field -> the Segment paths it is read from, in order; fields not given keep
    # their defaults (segment_raindrop.core.field_paths.DEFAULT_FIELD_PATHS).
    field_paths: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, validation_alias="FIELD_PATHS"
    )

    @field_validator("field_paths")
    @classmethod
    def _known_field_paths(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return validate_field_paths(value)

    def is_forwarded_track(self, name: str) -> bool:
        return (
            name in self.forward_event_names
            or name in self.feedback_event_names
            or name.startswith(self.forward_event_prefixes)
        )


class DeliveryConfig(BaseModel):
    """Where Raindrop is, and how chunks reach it and Segment: sizes, concurrency, retries,
    the time budget and the circuit breaker (the mirror's Segment deliveries use the same
    settings; Segment's URL is MirrorConfig's)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    raindrop_api_url: BaseUrl = Field(
        default=DEFAULT_RAINDROP_API_URL, validation_alias="RAINDROP_API_URL"
    )
    project_id: str | None = Field(default=None, validation_alias="RAINDROP_PROJECT_ID")
    # The slugs POST /segment/{project} may name; None: any well-formed slug (see projects.py).
    projects: frozenset[str] | None = Field(default=None, validation_alias="RAINDROP_PROJECTS")
    chunk_max_items: int = Field(default=100, ge=1, le=10_000, validation_alias="CHUNK_MAX_ITEMS")
    chunk_max_bytes: int = Field(
        default=1_000_000, ge=1_024, le=50_000_000, validation_alias="CHUNK_MAX_BYTES"
    )
    concurrency: int = Field(default=8, ge=1, le=64, validation_alias="DELIVERY_CONCURRENCY")
    budget_seconds: float = Field(
        default=WEBHOOK_DELIVERY_BUDGET_SECONDS,
        gt=0,
        le=900,
        validation_alias="DELIVERY_BUDGET_SECONDS",
    )
    max_attempts: int = Field(default=3, ge=1, le=20, validation_alias="DELIVERY_MAX_ATTEMPTS")
    connect_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, validation_alias="RAINDROP_CONNECT_TIMEOUT_SECONDS"
    )
    read_timeout_seconds: float = Field(
        default=5.0, gt=0, le=300, validation_alias="RAINDROP_READ_TIMEOUT_SECONDS"
    )
    backoff_base_seconds: float = Field(
        default=0.2, ge=0, le=60, validation_alias="RETRY_BACKOFF_BASE_SECONDS"
    )
    backoff_cap_seconds: float = Field(
        default=2.0, ge=0, le=300, validation_alias="RETRY_BACKOFF_CAP_SECONDS"
    )
    retry_after_cap_seconds: float = Field(
        default=5.0, ge=0, le=900, validation_alias="RETRY_AFTER_CAP_SECONDS"
    )
    # Consecutive transient request failures (timeouts, connection errors, 5xx) that open the
    # circuit breaker; 0 disables it. See segment_raindrop.adapters.breaker.
    breaker_failure_threshold: int = Field(
        default=5, ge=0, le=1_000, validation_alias="BREAKER_FAILURE_THRESHOLD"
    )
    breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, le=3_600, validation_alias="BREAKER_COOLDOWN_SECONDS"
    )

    @field_validator("projects")
    @classmethod
    def _project_slugs(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None:
            check_slugs(sorted(value))
        return value

    @field_validator("project_id")
    @classmethod
    def _project_slug(cls, value: str | None) -> str | None:
        # Raindrop answers 400 to every chunk sent with a malformed project (all of them then
        # dead-lettered as rejected): refused at start-up instead, naming the setting.
        if value:
            check_slugs([value])
        return value or None


class MirrorConfig(BaseModel):
    """The Raindrop -> Segment direction (segment_raindrop.handlers.raindrop_sdk): where Segment
    is and where partial events wait for their interaction to finish."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    enabled: bool = Field(default=True, validation_alias="MIRROR_TO_SEGMENT")
    # Whether Raindrop's SDK route also takes the webhook token as its bearer key. Off: the
    # token sits in Segment's destination settings, and whoever reads it there could write
    # into Raindrop and the Segment source through this route.
    accepts_webhook_token: bool = Field(
        default=False, validation_alias="MIRROR_ACCEPTS_WEBHOOK_TOKEN"
    )
    segment_api_url: BaseUrl = Field(
        default=DEFAULT_SEGMENT_API_URL, validation_alias="SEGMENT_API_URL"
    )
    # DynamoDB table (partition key event_id, TTL attribute expires_at); None: partial events
    # are mirrored only when a single patch finishes the interaction.
    partials_table: NonEmptyStr | None = Field(default=None, validation_alias="PARTIALS_TABLE")
    # How long an unfinished interaction's patches are kept before DynamoDB's TTL drops them.
    partials_ttl_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, validation_alias="PARTIALS_TTL_SECONDS"
    )


# A stage name as the stack's context accepts it (infra/config.py): letters, digits, hyphens.
STAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,30}$"


class TelemetryConfig(BaseModel):
    """What every function's metrics carry besides their values: the stack's stage, a
    dimension of each metric (core.contract.metric_dimensions), so two stages deployed in one
    account and region never count into each other's alarms. Read once, when a function's
    module loads (adapters.observability)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    stage: str = Field(default=LOCAL_STAGE, pattern=STAGE_PATTERN, validation_alias="STAGE")


class ForwarderConfig(BaseModel):
    """Everything the webhook, the retry worker and the replay Lambda need."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    secret_id: NonEmptyStr = Field(validation_alias="RAINDROP_SECRET_ID")
    retry_queue_url: NonEmptyStr = Field(validation_alias="RETRY_QUEUE_URL")
    dlq_url: NonEmptyStr = Field(validation_alias="DLQ_URL")
    secret_max_age_seconds: int = Field(
        default=300, ge=0, le=86_400, validation_alias="SECRET_MAX_AGE_SECONDS"
    )
    # No larger body can reach the function (docs/wire.md §5); decompressed bodies are held to
    # the same limit, which bounds what a small gzip body can make the function hold.
    max_body_bytes: int = Field(
        default=MAX_DECODED_BODY_BYTES,
        ge=1_024,
        le=MAX_DECODED_BODY_BYTES,
        validation_alias="MAX_BODY_BYTES",
    )
    retry_base_delay_seconds: int = Field(
        default=30, ge=0, le=43_200, validation_alias="RETRY_BASE_DELAY_SECONDS"
    )
    # Receives before SQS's redrive; the same number as the queue's redrive policy.
    retry_max_attempts: int = Field(
        default=DEFAULT_RETRY_MAX_RECEIVES, ge=1, le=1_000, validation_alias="RETRY_MAX_ATTEMPTS"
    )
    # The EventBridge intake: Segment's partner event sources and the Raindrop project of each
    # (None: RAINDROP_PROJECT_ID's). Empty: any source, each to the configured project.
    segment_event_sources: dict[str, str | None] = Field(
        default_factory=dict, validation_alias="SEGMENT_EVENT_SOURCES"
    )
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    mirror: MirrorConfig = Field(default_factory=MirrorConfig)

    @field_validator("segment_event_sources")
    @classmethod
    def _partner_sources(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        check_event_sources(value)
        return value


def check_event_sources(sources: dict[str, str | None]) -> None:
    """Raise ``ValueError`` naming the first source that is not a Segment partner event source
    or whose project is not a Raindrop project slug."""
    for source, project in sources.items():
        if SEGMENT_PARTNER_SOURCE.fullmatch(source) is None:
            raise ValueError(
                f"{source!r} is not a Segment partner event source "
                "(aws.partner/segment.com/<Segment source id>)"
            )
        if project:
            check_slugs([project])


class ReplayConfig(BaseModel):
    """What an operator's replay needs: the dead-letter queue and, unless it is a dry run, the
    secret. Replay writes only to the queue it replays, so no retry queue is asked for."""

    # Built on first use: of the functions, only the replay reads it, yet every one imports it.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    dlq_url: NonEmptyStr = Field(validation_alias="DLQ_URL")
    # Where events still being isolated go on (the retry worker splits them further); None:
    # back to the dead-letter queue.
    retry_queue_url: NonEmptyStr | None = Field(default=None, validation_alias="RETRY_QUEUE_URL")
    secret_id: NonEmptyStr | None = Field(default=None, validation_alias="RAINDROP_SECRET_ID")
    secret_max_age_seconds: int = Field(
        default=300, ge=0, le=86_400, validation_alias="SECRET_MAX_AGE_SECONDS"
    )
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    mirror: MirrorConfig = Field(default_factory=MirrorConfig)
