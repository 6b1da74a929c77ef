"""What mapping produces: serialised Raindrop items, and the account of every event.

Each Segment event ends as exactly one of: *mapped* (it produced one or more Raindrop items),
*filtered* (not an event we forward; counted, never an error) or *invalid* (it should have been
forwarded but cannot be; it goes to the dead-letter queue with the reason). Reasons are short,
fixed phrases: they end up in logs and metrics, so they never quote event content.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from segment_raindrop.core.raindrop_api import Endpoint

_M = TypeVar("_M", bound=BaseModel)


class InvalidEvent(Exception):
    """Raised inside the mapper to mark the current event invalid with a reason."""


class UnencodableText(Exception):
    """A string that UTF-8 cannot hold (a lone UTF-16 surrogate) reached a serialiser."""


@dataclass(frozen=True, slots=True)
class MappedItem:
    """One serialised Raindrop item and the index of the Segment event it came from (a
    :class:`~segment_raindrop.core.chunking.Piece`)."""

    endpoint: Endpoint
    payload: bytes
    event_index: int
    # Enrichment (a user's traits taken from a track's context): if Raindrop does not take
    # it, the event it came from is still delivered; it is never retried on its own account.
    optional: bool = False


@dataclass(slots=True)
class MapResult:
    items: list[MappedItem] = field(default_factory=list)
    filtered: dict[int, str] = field(default_factory=dict)
    invalid: dict[int, str] = field(default_factory=dict)
    # Keyed hashes of the user ids of Segment "delete" (user deletion) requests, so operators
    # notice them (see Mapper's user_hash_key).
    deletions: list[str] = field(default_factory=list)
    # Strings whose lone UTF-16 surrogates became U+FFFD (or whose split pairs were joined) so
    # that their event could be delivered.
    repaired_texts: int = 0
    # Mapped events whose timestamp field was present but unusable, so another field's time
    # was sent, by the name of each unusable field.
    timestamp_fallbacks: Counter[str] = field(default_factory=Counter)
    # Redactions made in what is sent (REDACT_PII), by kind; never the text itself.
    redactions: Counter[str] = field(default_factory=Counter)
    # The same, by the index of the mapped event they were made in (events with any only).
    event_redactions: dict[int, Counter[str]] = field(default_factory=dict)
    # Entries of mapped events' attachments that were not in Raindrop's attachment shape and
    # were left out (their event still went), by the index of the event.
    dropped_attachments: Counter[int] = field(default_factory=Counter)

    @property
    def mapped(self) -> set[int]:
        return {item.event_index for item in self.items}


def serialise(
    endpoint: Endpoint, model: BaseModel, event_index: int, *, optional: bool = False
) -> MappedItem:
    """The one place every item is serialised, after its values were validated (and redacted)."""
    try:
        payload = model.__pydantic_serializer__.to_json(model, exclude_none=True)
    except ValueError:
        # Lone UTF-16 surrogates parse from JSON escapes but cannot be encoded as UTF-8.
        raise UnencodableText from None
    return MappedItem(endpoint, payload, event_index, optional)


def validated(model_class: type[_M], /, **values: Any) -> _M:
    """``model_class`` built from ``values``; :class:`InvalidEvent` naming the first problem."""
    try:
        return model_class(**values)
    except ValidationError as exc:
        if any(error["type"] == "string_unicode" for error in exc.errors()):
            # pydantic refuses a lone surrogate in a constrained string (an id) itself.
            raise UnencodableText from None
        raise InvalidEvent(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
