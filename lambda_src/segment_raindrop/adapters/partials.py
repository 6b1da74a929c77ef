"""Raindrop's partial events (``events/track_partial``), merged by event_id for Segment.

Raindrop merges the patches of an interaction itself; Segment cannot, so the mirror keeps the
merged state in DynamoDB (table ``PARTIALS_TABLE``: partition key ``event_id`` (string), TTL
attribute ``expires_at``) and emits one ``track`` when a patch says ``is_pending: false``.

Merging follows Raindrop's: a later patch's fields win; ``properties`` and ``ai_data`` merge
key by key; ``attachments`` accumulate.

Patches of one interaction may arrive at once in two Lambdas (Raindrop's Go SDK flushes pending
patches from a ticker while ``Finish()`` posts from the caller), so every write is conditional
on the row's ``version`` attribute, the finishing one included: a patch that lost the race
reads the row again and merges once more (up to :data:`WRITE_ATTEMPTS` times, then
:class:`PartialsUnavailable`, and the mirror queues the patch). Nothing is deleted: finishing
turns the row into a *finished marker* (``revision`` ≥ 1, the merged state kept) that lives as
long as an open row (``ttl_seconds``), and at least the retry queue's retention
(:data:`FINISHED_MARKER_SECONDS`), so a finishing patch retried from the queue still finds it.
A pending patch that arrives after the finish is older content (the finish is the last word
in Raindrop's SDKs): it is merged *under* the marker's state (it only fills what the state
lacks, and adds attachments it does not hold); when that changes something, the whole
interaction is emitted again as revision 2, 3... (a new ``messageId``, so Segment keeps the
follow-up). A patch that changes nothing re-emits the marker's revision (the same
``messageId``, which Segment drops as a resend, so a retried patch never goes missing). So a
late patch never writes a row that would wait for a finish that already happened.

Applying a patch is idempotent: the row keeps the digests of the last :data:`APPLIED_KEPT`
patches it took (attribute ``applied``), and a patch already among them changes nothing: the
interaction as it stands is returned with its current revision (a retried ``partial_patches``
message, a resend by the SDK). Two patches with the same content are one patch.

Each state is cut to :data:`STATE_MAX_BYTES` before it is stored (its longest texts first,
:func:`~segment_raindrop.core.segment_copy.fit_state`): Segment keeps at most 32 KB of the
event made from it, and DynamoDB refuses an item over 400 KB.

An interaction never finished is never mirrored: its row expires ``ttl_seconds`` after its last
patch (DynamoDB's TTL deletes it within a day or two after that; reads ignore expired rows). A
patch that finds such an expired open row counts it (``MirrorPartialsExpired``) and logs its
event_id; rows TTL deletes unread are not counted.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.adapters.observability import count, logger
from segment_raindrop.core import codec
from segment_raindrop.core.contract import RETRY_RETENTION_DAYS, Metric
from segment_raindrop.core.segment_copy import fit_state

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_MERGED_OBJECTS = ("properties", "ai_data")
# Conditional writes tried per patch before it is handed back (and queued) as unavailable.
WRITE_ATTEMPTS: Final = 8
# How long a finished interaction's marker stays at least, to take late and retried patches:
# the retry queue's retention (a patch can wait that long there); longer when the TTL is.
FINISHED_MARKER_SECONDS: Final = RETRY_RETENTION_DAYS * 86_400
# Digests of the most recent patches a row remembers, to apply each patch once.
APPLIED_KEPT: Final = 100
# The merged state's JSON is cut to this (DynamoDB's item limit is 400 KB, names included).
STATE_MAX_BYTES: Final = 128 * 1024


# DynamoDB's errors that retrying the same request cannot fix (the item or key is malformed,
# too large...): the patch is refused for good. Every other error (throttling, a missing table,
# denied access) may pass, or be fixed by an operator, so the patch is queued.
_REFUSALS: Final = frozenset({"ValidationException", "SerializationException"})


class PartialsUnavailable(Exception):
    """DynamoDB could not be read or written now; the message is safe to log."""


class PatchRefused(Exception):
    """DynamoDB refuses the patch for good (``code``, a ValidationException...); the message is
    safe to log."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Finished:
    """An interaction to mirror now: its merged item (``is_pending`` dropped) and its revision
    (1: finished; 2...: sent again with patches that came after the finish)."""

    item: dict[str, Any]
    revision: int
    # Whether the stored state had texts cut to fit the table (Segment would cut them anyway).
    cut: bool = False


@dataclass(frozen=True, slots=True)
class _Row:
    state: dict[str, Any]
    version: int  # 0: no row
    revision: int  # 0: open; n: finished, mirrored as revision n
    applied: tuple[str, ...] = ()  # digests of the patches merged in, oldest first


def patch_digest(patch: dict[str, Any]) -> str:
    """What identifies a patch: 16 hex digits of SHA-256 over its canonical JSON."""
    canonical = json.dumps(
        patch, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` applied to ``current`` (neither is changed)."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            continue
        if key in _MERGED_OBJECTS and isinstance(value, dict):
            before = merged.get(key)
            merged[key] = {**(before if isinstance(before, dict) else {}), **value}
        elif key == "attachments" and isinstance(value, list):
            before = merged.get(key)
            merged[key] = [*(before if isinstance(before, list) else []), *value]
        else:
            merged[key] = value
    return merged


def merge_under(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` applied *under* ``current`` (a finished state; neither is changed): it only
    fills what ``current`` lacks (``properties`` and ``ai_data`` key by key), and adds the
    attachments ``current`` does not hold."""
    merged = dict(current)
    for key, value in patch.items():
        if value is not None:
            merged[key] = _under(key, merged.get(key), value)
    return merged


def _under(key: str, before: Any, value: Any) -> Any:
    """What ``key`` holds once ``value`` is merged under ``before``."""
    if before is None:
        return value
    if key in _MERGED_OBJECTS and isinstance(value, dict) and isinstance(before, dict):
        return {**value, **before}
    if key == "attachments" and isinstance(value, list) and isinstance(before, list):
        return [*before, *(item for item in value if item not in before)]
    return before


def _next_state(
    row: _Row, patch: dict[str, Any], digest: str
) -> tuple[dict[str, Any], bool] | None:
    """The interaction's state with ``patch`` merged, and whether it was cut to fit; None when
    the patch changes nothing (applied already, or late and adding nothing to a finished one)."""
    if digest in row.applied:
        return None
    finishing = patch.get("is_pending") is False
    # After the finish, a pending patch is older content: it only fills gaps.
    merge = merge_under if row.revision and not finishing else merge_patch
    state = merge(row.state, patch)
    state.pop("is_pending", None)
    cut = fit_state(state, max_bytes=STATE_MAX_BYTES)
    if row.revision and state == row.state:
        return None
    return state, cut


class PartialStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        ttl_seconds: int,
        clock: Any = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._ttl = ttl_seconds
        self._marker_ttl = max(ttl_seconds, FINISHED_MARKER_SECONDS)
        self._clock = clock

    def add(self, patch: dict[str, Any]) -> Finished | None:
        """Merge ``patch`` into its interaction: what to mirror now, or None while the
        interaction is open. Raises :class:`PartialsUnavailable` (try again later) and
        :class:`PatchRefused` (never)."""
        event_id = patch["event_id"]
        finishing = patch.get("is_pending") is False
        digest = patch_digest(patch)
        for _ in range(WRITE_ATTEMPTS):
            row = self._read(event_id)
            merged = _next_state(row, patch, digest)
            if merged is None:
                # Mirrored as it stands already (a retried or resent patch, a late one that
                # adds nothing): that revision again, which Segment drops as a resend.
                return Finished(row.state, row.revision) if row.revision else None
            state, cut = merged
            revision = row.revision + 1 if row.revision or finishing else 0
            applied = (*row.applied, digest)[-APPLIED_KEPT:]
            if self._write(event_id, state, row.version, revision=revision, applied=applied):
                return Finished(state, revision, cut) if revision else None
        raise PartialsUnavailable("the interaction kept changing under concurrent patches")

    def _read(self, event_id: str) -> _Row:
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={"event_id": {"S": event_id}},
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as exc:
            raise _failure("reading", exc) from None
        row = answer.get("Item")
        if not row:
            return _Row({}, 0, 0)
        version = int(row["version"]["N"])
        revision = int(row.get("revision", {}).get("N", "0"))
        if int(row.get("expires_at", {}).get("N", "0")) < self._clock():
            # Expired but not yet deleted by TTL: a stale interaction starts afresh.
            if not revision:
                count(Metric.MIRROR_PARTIALS_EXPIRED)
                logger.warning(
                    "an unfinished interaction expired; its patches never reached Segment",
                    extra={"event_id": event_id},
                )
            return _Row({}, version, 0)
        applied = tuple(filter(None, row.get("applied", {}).get("S", "").split(",")))
        return _Row(codec.loads(row["doc"]["S"]), version, revision, applied)

    def _write(
        self,
        event_id: str,
        state: dict[str, Any],
        version: int,
        *,
        revision: int,
        applied: tuple[str, ...],
    ) -> bool:
        """Store ``state`` (and the digests of the patches it holds) if the row is still at
        ``version``; False when it is not."""
        lifetime = self._marker_ttl if revision else self._ttl
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "event_id": {"S": event_id},
                    "doc": {"S": codec.dumps(state)},
                    "version": {"N": str(version + 1)},
                    "revision": {"N": str(revision)},
                    "applied": {"S": ",".join(applied)},
                    "expires_at": {"N": str(int(self._clock()) + lifetime)},
                },
                **_expecting(version),
            )
        except ClientError as exc:
            if _lost_race(exc):
                return False
            raise _failure("writing", exc) from None
        except BotoCoreError as exc:
            raise _failure("writing", exc) from None
        return True


def _failure(doing: str, exc: Exception) -> PartialsUnavailable | PatchRefused:
    code = _code(exc)
    if code in _REFUSALS:
        return PatchRefused(f"the partials table refused the patch ({code})", code)
    return PartialsUnavailable(f"{doing} a partial failed ({code})")


def _expecting(version: int) -> dict[str, Any]:
    if version == 0:
        return {"ConditionExpression": "attribute_not_exists(event_id)"}
    return {
        "ConditionExpression": "version = :version",
        "ExpressionAttributeValues": {":version": {"N": str(version)}},
    }


def _lost_race(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _code(exc: Exception) -> str:
    """DynamoDB's error code (``ProvisionedThroughputExceededException``...) or the class."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__
