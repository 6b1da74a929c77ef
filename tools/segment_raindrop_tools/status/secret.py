"""Whether the forwarder's secret is ready: read once, reported as booleans only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from segment_raindrop.adapters.secrets import SecretValues
from segment_raindrop_tools.status.report import SecretState

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["read_secret", "secret_state"]


def read_secret(
    client: SecretsManagerClient, secret_id: str | None
) -> tuple[SecretValues | None, str | None]:
    """The secret, or None and a reason that is safe to print (never a value)."""
    if not secret_id:
        return None, "no secret to read (the stack has no SecretArn output)"
    try:
        text = client.get_secret_value(SecretId=secret_id).get("SecretString")
    except ClientError as exc:
        return None, f"{exc.response.get('Error', {}).get('Code', 'error')} from Secrets Manager"
    except BotoCoreError as exc:
        return None, type(exc).__name__
    try:
        value = json.loads(text or "")
    except ValueError:
        return None, "the secret is not a JSON object"
    if not isinstance(value, dict):
        return None, "the secret is not a JSON object"
    try:
        return SecretValues.model_validate(value), None
    except ValidationError:
        return None, "the secret's values must be strings"


def secret_state(
    secret: SecretValues | None, error: str | None, *, mirror_to_segment: bool = False
) -> SecretState:
    """``mirror_to_segment``: the stack mirrors Raindrop's SDK traffic into Segment, so the
    secret's segment_write_key is part of being ready."""
    if secret is None:
        return SecretState(readable=False, error=error or "unreadable")
    return SecretState(
        readable=True,
        # The forwarder's own test of "ready to send", so status and the functions agree.
        raindrop_key_configured=secret.raindrop_key_configured,
        webhook_token=bool(secret.webhook_token),
        webhook_token_previous=bool(secret.webhook_token_previous),
        segment_shared_secret=bool(secret.segment_shared_secret),
        segment_write_key_needed=mirror_to_segment,
        segment_write_key_configured=secret.segment_write_key_configured,
    )
