"""Raindrop's partial events (``events/track_partial``), merged by event_id for Segment.

Raindrop merges the patches of an interaction itself; Segment cannot, so the mirror keeps the
merged state in DynamoDB (table ``PARTIALS_TABLE``: partition key ``event_id`` (string), TTL
attribute ``expires_at``) and emits one ``track`` when a patch says ``is_pending: false``.

Merging follows Raindrop's: a later patch's fields win; ``properties`` and ``ai_data`` merge
key by key; ``attachments`` accumulate. Writes are optimistic (a ``version`` attribute and a
conditional put), so two Lambdas handling patches of one interaction at once both count.

An interaction never finished is never mirrored: its row expires ``ttl_seconds`` after its last
patch (DynamoDB's TTL deletes it within a day or two after that; reads ignore expired rows).
A finished interaction's row is deleted once the merged event is built.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_MERGED_OBJECTS = ("properties", "ai_data")
_WRITE_ATTEMPTS = 4


class PartialsUnavailable(Exception):
    """DynamoDB could not be read or written; the message is safe to log."""


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
        self._clock = clock

    def add(self, patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge ``patch`` into its interaction; the whole interaction (``is_pending``
        dropped) once this patch finishes it, else None. Raises :class:`PartialsUnavailable`."""
        event_id = patch["event_id"]
        for _ in range(_WRITE_ATTEMPTS):
            current, version = self._read(event_id)
            merged = merge_patch(current, patch)
            if patch.get("is_pending") is False:
                self._delete(event_id)
                merged.pop("is_pending", None)
                return merged
            if self._write(event_id, merged, version):
                return None
        raise PartialsUnavailable("the interaction kept changing under concurrent patches")

    def _read(self, event_id: str) -> tuple[dict[str, Any], int]:
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={"event_id": {"S": event_id}},
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as exc:
            raise PartialsUnavailable(f"reading a partial failed ({type(exc).__name__})") from None
        row = answer.get("Item")
        if not row:
            return {}, 0
        version = int(row["version"]["N"])
        if int(row.get("expires_at", {}).get("N", "0")) < self._clock():
            # Expired but not yet deleted by TTL: a stale interaction starts afresh.
            return {}, version
        return json.loads(row["doc"]["S"]), version

    def _write(self, event_id: str, merged: dict[str, Any], version: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "event_id": {"S": event_id},
                    "doc": {"S": json.dumps(merged, separators=(",", ":"))},
                    "version": {"N": str(version + 1)},
                    "expires_at": {"N": str(int(self._clock()) + self._ttl)},
                },
                **_expecting(version),
            )
        except ClientError as exc:
            if _lost_race(exc):
                return False
            raise PartialsUnavailable(f"writing a partial failed ({type(exc).__name__})") from None
        except BotoCoreError as exc:
            raise PartialsUnavailable(f"writing a partial failed ({type(exc).__name__})") from None
        return True

    def _delete(self, event_id: str) -> None:
        try:
            self._client.delete_item(TableName=self._table, Key={"event_id": {"S": event_id}})
        except (BotoCoreError, ClientError):
            # The row expires by TTL anyway; the finished event is what matters.
            return


def _expecting(version: int) -> dict[str, Any]:
    if version == 0:
        return {"ConditionExpression": "attribute_not_exists(event_id)"}
    return {
        "ConditionExpression": "version = :version",
        "ExpressionAttributeValues": {":version": {"N": str(version)}},
    }


def _lost_race(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
