"""What Raindrop accepts (docs/wire.md §2.2), as pydantic models.

Every item the mapper produces is validated here before it is sent, so nothing Raindrop would
refuse leaves the forwarder: an item that breaks these rules marks its Segment event invalid,
with the reason, instead of poisoning a whole request of good items.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)


class Endpoint(StrEnum):
    """Raindrop's endpoints, relative to the API base URL."""

    TRACK = "events/track"
    SIGNAL = "signals/track"
    IDENTIFY = "users/identify"
    # Only the mirror sends to these two, passing on what Raindrop's SDK sent.
    TRACK_PARTIAL = "events/track_partial"
    TRACES = "traces"


# Endpoints whose body is one JSON object rather than an array of items.
SINGLE_OBJECT_ENDPOINTS: frozenset[Endpoint] = frozenset({Endpoint.TRACK_PARTIAL, Endpoint.TRACES})

# What Raindrop takes a second time without keeping a second copy: ``events/track`` is
# idempotent on event_id and partial events merge by event_id. A signal sent twice counts twice,
# and nothing says identify does not: requests to those are never asked to be resent.
IDEMPOTENT_ENDPOINTS: frozenset[Endpoint] = frozenset({Endpoint.TRACK, Endpoint.TRACK_PARTIAL})


def _iso_8601(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp") from None
    return value


# Whitespace in Python's sense and JavaScript's (which adds U+FEFF): Raindrop refuses ids and
# AI content made of nothing else.
_BLANK = re.compile(r"[\s\ufeff]*")


def is_blank(value: str) -> bool:
    """True when ``value`` is empty or only whitespace."""
    if not value:
        return True
    # Nearly every value starts with something visible: answered without the regex.
    first = value[0]
    return (first.isspace() or first == "\ufeff") and _BLANK.fullmatch(value) is not None


def _not_blank(value: str) -> str:
    if is_blank(value):
        raise ValueError("must not be empty or only whitespace")
    return value


def _not_only_whitespace(value: str | None) -> str | None:
    # "" stays allowed here (AiData needs one of input and output, not both).
    if value and is_blank(value):
        raise ValueError("must not be only whitespace")
    return value


NonEmptyStr = Annotated[StrictStr, Field(min_length=1), AfterValidator(_not_blank)]
AiText = Annotated[StrictStr | None, AfterValidator(_not_only_whitespace)]
Timestamp = Annotated[StrictStr, AfterValidator(_iso_8601)]
# Finite: pydantic would serialise an infinite float as null, which Raindrop does not take.
TraitValue = StrictStr | StrictBool | StrictInt | Annotated[StrictFloat, AllowInfNan(False)]

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)

SignalType = Literal["default", "standard", "feedback", "edit", "agent", "agent_internal"]
SIGNAL_TYPES: frozenset[str] = frozenset(get_args(SignalType))


class AiData(BaseModel):
    model_config = _MODEL_CONFIG

    model: StrictStr | None = None
    input: AiText = None
    output: AiText = None
    convo_id: StrictStr | None = None

    @model_validator(mode="after")
    def _has_content(self) -> AiData:
        if not self.input and not self.output:
            raise ValueError("ai_data needs a non-empty input or output")
        return self


class Attachment(BaseModel):
    model_config = _MODEL_CONFIG

    type: Literal["code", "text", "image", "iframe"]
    value: StrictStr
    name: StrictStr | None = None
    role: Literal["input", "output", "context"] | None = None
    language: StrictStr | None = None
    # Pre-assigned, so that a signal's ``attachment_id`` can point at this attachment.
    attachment_id: NonEmptyStr | None = None


class TrackEvent(BaseModel):
    """An item of ``POST events/track``."""

    model_config = _MODEL_CONFIG

    event_id: NonEmptyStr
    user_id: NonEmptyStr
    event: NonEmptyStr
    timestamp: Timestamp
    properties: dict[str, Any] = Field(default_factory=dict)
    ai_data: AiData | None = None
    attachments: list[Attachment] | None = None


class Signal(BaseModel):
    """An item of ``POST signals/track``: feedback about the AI event ``event_id``."""

    model_config = _MODEL_CONFIG

    event_id: NonEmptyStr
    signal_name: NonEmptyStr
    signal_type: SignalType = "default"
    timestamp: Timestamp
    properties: dict[str, Any] = Field(default_factory=dict)
    sentiment: Literal["POSITIVE", "NEGATIVE"] | None = None
    attachment_id: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _required_properties(self) -> Signal:
        required = {"feedback": "comment", "edit": "after"}.get(self.signal_type)
        if required is not None:
            value = self.properties.get(required)
            if not isinstance(value, str) or is_blank(value):
                raise ValueError(
                    f"a {self.signal_type} signal needs a non-empty properties.{required}"
                )
        return self


class Identify(BaseModel):
    """An item of ``POST users/identify``."""

    model_config = _MODEL_CONFIG

    user_id: NonEmptyStr
    traits: dict[str, TraitValue] = Field(default_factory=dict)
