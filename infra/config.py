"""The stack's settings, read from CDK context (`cdk.json` defaults, `-c key=value` overrides).

Every key is camelCase in the context and validated here, so a bad value fails `cdk synth` with a
message that names the key instead of failing later in CloudFormation or at Lambda start-up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

# One error type for bad settings, whether they come from the context or the environment.
from segment_raindrop.core.config import (
    DEFAULT_RAINDROP_API_URL,
    DEFAULT_SEGMENT_API_URL,
    STAGE_PATTERN,
    ConfigError,
    MappingConfig,
    check_event_sources,
)
from segment_raindrop.core.context import MAPPING_KEYS, mapping_from_context
from segment_raindrop.core.contract import (
    DEFAULT_RETRY_MAX_RECEIVES,
    EVENTBRIDGE_BATCH_SIZE,
    EVENTBRIDGE_BATCH_WINDOW_SECONDS,
    SEGMENT_MAX_EVENT_BYTES,
    WEBHOOK_DELIVERY_BUDGET_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
)
from segment_raindrop.core.environment import is_structured, to_environment
from segment_raindrop.core.eventbridge import event_pattern
from segment_raindrop.core.projects import PROJECT_SLUG, check_slugs

__all__ = ["ConfigError", "StackConfig", "config_from_context"]

# What the event lists may take of Lambda's 4 KB of environment variables.
ENVIRONMENT_BUDGET_BYTES: Final = 2800

# CloudWatch Logs accepts only these retention periods: days -> aws_logs.RetentionDays member.
LOG_RETENTION_DAYS: Final = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}

_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9_/+=.@-]+$"
)
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_/+=.@-]{1,512}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A standard topic: CloudWatch alarms cannot publish to FIFO topics.
_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
# API Gateway's default account-level throttle per region (a quota that can be raised).
MAX_THROTTLE_RATE: Final = 10_000
MAX_THROTTLE_BURST: Final = 5_000
# Our own keys are plain camelCase words; CDK's keys contain "@", ":" or "/" (feature flags,
# bundling-stacks, lookups), so anything else that looks like ours is probably a typo.
_OWN_KEY_SHAPE = re.compile(r"^[a-z][A-Za-z0-9]*$")


class Throttle(NamedTuple):
    """One API's route limits: requests per second, and the burst the token bucket holds."""

    rate_limit: float
    burst_limit: int


def stack_mapping(context: Mapping[str, Any]) -> MappingConfig:
    """The mapping settings the context gives (the runtime's model's fields, camelCase), every
    one set explicitly, so the stack writes each to the functions (an operator reads them off
    the function) except ``fieldPaths``, which holds overrides: empty, it says nothing."""
    defaults = MappingConfig().model_dump(exclude={"field_paths"})
    mapping = mapping_from_context(context, base=defaults)
    if not mapping.field_paths:
        return MappingConfig.model_validate(mapping.model_dump(exclude={"field_paths"}))
    return mapping


class StackConfig(BaseModel):
    """Validated stack settings; field names are the snake_case form of the context keys, and
    ``mapping`` holds the runtime's mapping settings under their own keys
    (:func:`stack_mapping`)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    stage: str = Field("prod", pattern=STAGE_PATTERN)
    secret_name: str | None = Field(None, pattern=_SECRET_NAME.pattern)
    secret_arn: str | None = Field(None, pattern=_SECRET_ARN.pattern)
    raindrop_api_url: str = Field(DEFAULT_RAINDROP_API_URL, pattern=r"^https://[^\s]+$")
    raindrop_project_id: str | None = Field(None, pattern=PROJECT_SLUG.pattern)
    # The slugs POST /segment/{project} accepts; unset: any well-formed slug.
    raindrop_projects: list[str] | None = Field(None, max_length=1000)
    # API Gateway's throttle, per route (method) of each API: the webhook API's (Segment's
    # Webhooks destination) and the SDK API's (Raindrop's SDKs and Segment's libraries). A
    # request over it is answered 429 before any function runs. The ceilings are API Gateway's
    # per-account, per-region defaults; what the account's Lambda concurrency sustains is
    # usually lower (docs/deploy.md, "Throttling and Lambda concurrency").
    throttle_rate_limit: float = Field(100.0, gt=0, le=MAX_THROTTLE_RATE)
    throttle_burst_limit: int = Field(200, gt=0, le=MAX_THROTTLE_BURST)
    sdk_throttle_rate_limit: float = Field(500.0, gt=0, le=MAX_THROTTLE_RATE)
    sdk_throttle_burst_limit: int = Field(1000, gt=0, le=MAX_THROTTLE_BURST)
    alarm_email: str | None = Field(None, pattern=_EMAIL.pattern)
    # An existing SNS topic the alarms publish to instead (chat, paging); with alarmEmail too,
    # the stack's own topic e-mails and this one is notified as well.
    alarm_topic_arn: str | None = Field(None, pattern=_SNS_TOPIC_ARN.pattern)
    # Whether alarms also notify when they return to OK (one more message per alarm and
    # incident); off: only ALARM transitions notify.
    alarm_on_recovery: bool = False
    # The p99 size of one Segment event as the Webhooks destination sends it (compact JSON):
    # the stack prints the Segment batch size that fits Lambda's payload with it. Segment caps
    # an event at 32 KB.
    segment_p99_event_bytes: int = Field(4_000, ge=100, le=SEGMENT_MAX_EVENT_BYTES)
    # SQS accepts 1-1000 receives before the redrive; the retry worker reads the same number.
    retry_max_receives: int = Field(DEFAULT_RETRY_MAX_RECEIVES, ge=1, le=1000)
    webhook_memory_mb: int = Field(1024, ge=128, le=10240)
    log_retention_days: int = 30
    delivery_budget_seconds: float = Field(WEBHOOK_DELIVERY_BUDGET_SECONDS, gt=0)
    # Retry-worker invocations at once (an SQS event source's minimum is 2). Times the delivery
    # concurrency, it bounds what a backlog sends Raindrop as it recovers; it also bounds what
    # the worker takes of the account's concurrency, which the webhook shares.
    retry_max_concurrency: int = Field(2, ge=2, le=1000)
    # Keep the created secret and the dead-letter queue when the stack is deleted or they are
    # replaced: the hand-set Raindrop key and events not yet replayed (docs/deploy.md).
    retain_data: bool = True
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    # X-Ray active tracing for the functions. On by default, as the stack always had it and as
    # the API stage has it; off drops the X-Ray SDK from each cold start (~15 ms measured in a
    # Lambda environment), the IAM statement on '*' and the X-Ray charges.
    tracing: bool = True
    # Lambda SnapStart for the two API functions (webhook, mirror): each published version is
    # initialised once and new environments resume from its snapshot. Off by default: with the
    # bundle's bytecode the import it saves is a few hundred ms, for a monthly cache charge per
    # function (docs/deploy.md, "SnapStart"). The API then invokes a `live` alias.
    snap_start: bool = False
    # Raindrop -> Segment: the route /raindrop/v1/ always forwards to Raindrop; this says
    # whether it also mirrors into Segment (which needs segment_write_key in the secret).
    mirror_to_segment: bool = True
    # Whether Raindrop's SDK route also takes the webhook token (it always takes the Raindrop
    # key). Off by default: the token sits in Segment's destination settings.
    mirror_accepts_webhook_token: bool = False
    segment_api_url: str = Field(DEFAULT_SEGMENT_API_URL, pattern=r"^https://[^\s/]+(/[^\s]*)?$")
    # The EventBridge intake (Segment's Amazon EventBridge destination): the partner event
    # source(s), comma-separated, each optionally "=<Raindrop project>"; unset: no intake.
    segment_event_source: str | None = None
    # Records per consumer invocation (SQS event source; above 10 needs a batching window) and
    # how long SQS's poller may wait to fill a batch.
    segment_event_batch_size: int = Field(EVENTBRIDGE_BATCH_SIZE, ge=1, le=10_000)
    segment_event_batch_window_seconds: int = Field(EVENTBRIDGE_BATCH_WINDOW_SECONDS, ge=0, le=300)
    # Consumer invocations at once (an SQS event source's minimum is 2): times the delivery
    # concurrency, what the intake sends Raindrop at most.
    segment_event_max_concurrency: int = Field(5, ge=2, le=1000)
    # The public Segment webhook API (POST /segment); false: none, for teams that take Segment's
    # events only through EventBridge (needs segmentEventSource).
    webhook: bool = True
    skip_bundling: bool = False
    mapping: MappingConfig = Field(default_factory=lambda: stack_mapping({}), exclude=True)

    @field_validator("raindrop_projects", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        # `-c key=value` always arrives as a string; lists and objects are given as JSON there.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg})") from exc
        return value

    @field_validator("raindrop_projects")
    @classmethod
    def _project_slugs(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            check_slugs(value)
        return value

    @field_validator("segment_api_url")
    @classmethod
    def _segment_base_url(cls, value: str) -> str:
        # The mirror appends the endpoint itself; a pasted ".../v1/batch" would post to
        # ".../v1/batch/batch" and every mirrored event would fail.
        value = value.rstrip("/")
        if value.rsplit("/", 1)[-1] in ("batch", "track", "identify"):
            raise ValueError(
                "give the API's base URL (e.g. https://api.segment.io/v1), not an endpoint"
            )
        return value

    @field_validator("segment_event_source")
    @classmethod
    def _event_sources(cls, value: str | None) -> str | None:
        if value is not None:
            check_event_sources(event_sources(value))
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(days) for days in LOG_RETENTION_DAYS)
            raise ValueError(f"CloudWatch Logs accepts only {allowed}")
        return value

    @field_validator("delivery_budget_seconds")
    @classmethod
    def _budget_within_timeout(cls, value: float) -> float:
        # The webhook must still answer Segment (and queue what is left) before 10 s.
        if value >= WEBHOOK_TIMEOUT_SECONDS:
            raise ValueError(
                f"must be less than the webhook timeout of {WEBHOOK_TIMEOUT_SECONDS} s "
                "(Segment gives up after 10 s, cold start included)"
            )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        if self.secret_name and self.secret_arn:
            raise ValueError("secretName and secretArn: give at most one of them")
        # Lambda allows 4 KB of environment variables per function in all; the fixed ones and
        # the queue URLs and secret ARN take about 1 KB (the mirror's, with its table name and
        # Segment URL, about 1.1 KB: still inside with the lists at this budget).
        written = to_environment(self.mapping)
        lists = {
            to_camel(name): written[str(field.validation_alias)]
            for name, field in MappingConfig.model_fields.items()
            if is_structured(field.annotation) and field.validation_alias in written
        }
        if self.raindrop_projects is not None:
            lists["raindropProjects"] = json.dumps(self.raindrop_projects, ensure_ascii=False)
        size = sum(len(value.encode()) for value in lists.values())
        if size > ENVIRONMENT_BUDGET_BYTES:
            raise ValueError(
                f"{', '.join(lists)}: {size} bytes of JSON together, more than the "
                f"{ENVIRONMENT_BUDGET_BYTES} that fit in Lambda's 4 KB of environment variables"
            )
        return self

    @model_validator(mode="after")
    def _intake_checks(self) -> StackConfig:
        if not self.webhook and not self.segment_event_source:
            raise ValueError(
                "webhook=false needs segmentEventSource: without either, nothing receives "
                "Segment's events"
            )
        if self.segment_event_batch_size > 10 and self.segment_event_batch_window_seconds < 1:
            raise ValueError(
                "segmentEventBatchSize above 10 needs segmentEventBatchWindowSeconds of at "
                "least 1 (an SQS event source rule)"
            )
        if self.segment_event_source:
            try:
                event_pattern(self.mapping, list(self.event_sources))
            except ValueError as exc:
                raise ValueError(f"segmentEventSource: {exc}") from None
            self._intake_projects_allowed()
        return self

    def _intake_projects_allowed(self) -> None:
        """With raindropProjects set, the intake's projects are among them, as the webhook's
        /segment/{project} routes must be: the allow-list holds for every entry point."""
        if self.raindrop_projects is None:
            return
        allowed = set(self.raindrop_projects)
        for source, project in self.event_sources.items():
            if project and project not in allowed:
                raise ValueError(
                    f"segmentEventSource: {source}'s project {project!r} is not in raindropProjects"
                )

    @property
    def webhook_throttle(self) -> Throttle:
        return Throttle(self.throttle_rate_limit, self.throttle_burst_limit)

    @property
    def sdk_throttle(self) -> Throttle:
        return Throttle(self.sdk_throttle_rate_limit, self.sdk_throttle_burst_limit)

    @property
    def alarm_recipients(self) -> str | None:
        """Who the alarms notify, as the AlarmNotifications output says; None: no one."""
        recipients = [value for value in (self.alarm_email, self.alarm_topic_arn) if value]
        return ", ".join(recipients) or None

    @property
    def imports_secret(self) -> bool:
        return bool(self.secret_name or self.secret_arn)

    @property
    def event_sources(self) -> dict[str, str | None]:
        """segmentEventSource's partner sources and the project of each (None: the default)."""
        return event_sources(self.segment_event_source or "")


def event_sources(value: str) -> dict[str, str | None]:
    """``source[=project],...`` as ``{source: project or None}``; raises ``ValueError`` for an
    empty entry or a source given twice."""
    sources: dict[str, str | None] = {}
    for entry in value.split(","):
        source, _, project = entry.strip().partition("=")
        source = source.strip()
        if not source:
            raise ValueError("an empty entry (expected aws.partner/segment.com/<id>[=project])")
        if source in sources:
            raise ValueError(f"{source!r} is given twice")
        sources[source] = project.strip() or None
    return sources


# The stack's own keys, then the mapping's (the runtime's model names them).
_STACK_KEYS: Final = tuple(
    field.alias or name for name, field in StackConfig.model_fields.items() if name != "mapping"
)
CONTEXT_KEYS: Final = _STACK_KEYS + tuple(MAPPING_KEYS)


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:  # a rule across keys: its message names them
        return message
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "string_pattern_mismatch":
        message = f"has an invalid format (expected to match {error['ctx']['pattern']})"
    return f"{key}: {message} (got {error.get('input')!r})"


def config_from_context(context: Mapping[str, Any]) -> StackConfig:
    """Validate the app's context; raises ConfigError naming every bad or unknown key."""
    _refuse_unknown_keys(context)
    # null in cdk.json and an empty `-c key=` both mean "use the default".
    given = {key: context[key] for key in CONTEXT_KEYS if context.get(key) not in (None, "")}
    problems: list[str] = []
    values: dict[str, Any] = {key: given[key] for key in _STACK_KEYS if key in given}
    try:
        values["mapping"] = stack_mapping(given)
    except ConfigError as exc:
        problems.append(str(exc))
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    if problems:
        raise ConfigError(f"invalid CDK context: {'; '.join(problems)}")
    return config


def _refuse_unknown_keys(context: Mapping[str, Any]) -> None:
    unknown = sorted(
        key for key in context if _OWN_KEY_SHAPE.match(key) and key not in CONTEXT_KEYS
    )
    if unknown:
        raise ConfigError(
            f"unknown context key(s): {', '.join(unknown)}; known keys: {', '.join(CONTEXT_KEYS)}"
        )
