"""The forwarder's secret: the Raindrop key and the credentials Segment authenticates with.

Read from Secrets Manager and cached, so a warm function does not call Secrets Manager per
request, yet a rotated key is picked up within ``max_age`` (and at once after Raindrop answers
401, through ``refresh``). One ``GetSecretValue`` and a dictionary are all it takes: Powertools'
parameters utility, which did this before, imports boto3 and its AppConfig, SSM and DynamoDB
providers, ~15 ms of every cold start the functions do not otherwise spend (botocore is enough).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from segment_raindrop.core.contract import SECRETS_MANAGER
from segment_raindrop.core.mapping.mapper import PROCESS_USER_HASH_KEY

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# What the stack writes before the user sets the real key, and other obvious stand-ins.
PLACEHOLDER_KEYS = frozenset({"", "REPLACE_ME", "REPLACE-ME", "CHANGE_ME", "CHANGEME", "TODO"})


def _is_real_key(value: str) -> bool:
    """False for a missing key and for the stand-ins people leave in a secret, and for a key
    no HTTP header can carry (a smart quote or a non-breaking space pasted with it): such a
    key counts as not set, a 503 naming the fix, rather than a crash on every request."""
    key = value.strip()
    return (
        key.upper() not in PLACEHOLDER_KEYS
        and not key.startswith("<")
        and key.isascii()
        and key.isprintable()
        and " " not in key
    )


class SecretUnavailable(Exception):
    """The secret could not be read or is malformed. The message is safe to log."""


class RaindropKeyNotSet(SecretUnavailable):
    """The secret is readable but its Raindrop key is missing or still a placeholder."""

    def __init__(self) -> None:
        super().__init__(
            "the Raindrop API key in the secret is missing, a placeholder or not a valid key"
        )


class SecretValues(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    raindrop_api_key: str = ""
    webhook_token: str | None = None
    # The token being rotated out, still accepted until it is removed (docs/deploy.md).
    webhook_token_previous: str | None = None
    segment_shared_secret: str | None = None
    # Keys the hash of deleted users' ids in the logs; derived from the token when absent.
    user_hash_key: str | None = None
    # The Segment source's write key the mirror sends with; missing or a placeholder: the
    # mirror is off (Raindrop still gets everything).
    segment_write_key: str | None = None

    @property
    def segment_write_key_configured(self) -> bool:
        return _is_real_key(self.segment_write_key or "")

    @field_validator(
        "raindrop_api_key",
        "webhook_token",
        "webhook_token_previous",
        "segment_write_key",
        mode="after",
    )
    @classmethod
    def _pasted(cls, value: str | None) -> str | None:
        # Values are pasted into the console: a trailing newline or space is not part of them.
        return value.strip() if isinstance(value, str) else value

    @property
    def raindrop_key_configured(self) -> bool:
        return _is_real_key(self.raindrop_api_key)

    @property
    def deletion_hash_key(self) -> bytes:
        """A per-deployment key for hashing user ids in the deletion log, so a logged hash
        cannot be reversed by hashing candidate ids. Without ``user_hash_key`` in the secret,
        it is derived from the webhook token (or shared secret), never logged either."""
        for value in (self.user_hash_key, self.webhook_token, self.segment_shared_secret):
            if value:
                return hmac.new(value.encode(), b"segment-raindrop user hash", "sha256").digest()
        return PROCESS_USER_HASH_KEY

    def require_raindrop_key(self) -> str:
        """The Raindrop key, or :class:`RaindropKeyNotSet`: the one test of "ready to send"."""
        if not self.raindrop_key_configured:
            raise RaindropKeyNotSet
        return self.raindrop_api_key

    def __repr__(self) -> str:  # never let a stray log line print the values
        return (
            f"SecretValues(raindrop_api_key={'set' if self.raindrop_api_key else 'unset'}, "
            f"webhook_token={'set' if self.webhook_token else 'unset'}, "
            f"webhook_token_previous={'set' if self.webhook_token_previous else 'unset'}, "
            f"segment_shared_secret={'set' if self.segment_shared_secret else 'unset'}, "
            f"segment_write_key={'set' if self.segment_write_key else 'unset'})"
        )

    __str__ = __repr__


class SecretStore:
    """Cached access to one secret; safe to share between threads.

    ``client`` is the Secrets Manager client to read with (the composition root bounds its
    timeouts); without one, a client with botocore's defaults is built on first use.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        max_age_seconds: int = 300,
        client: SecretsManagerClient | None = None,
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age_seconds
        self._client = client
        # The secret's JSON as last read, and when (time.monotonic()).
        self._cached: tuple[float, Any] | None = None
        self._lock = threading.Lock()
        self._last_forced: float | None = None

    def ready_key(self) -> str:
        """The Raindrop key to send with; raises :class:`SecretUnavailable` (or its subclass
        :class:`RaindropKeyNotSet`) when there is none to use yet."""
        return self.get().require_raindrop_key()

    def refresh_if_due(self, min_interval_seconds: float) -> SecretValues | None:
        """A freshly read secret, unless one was forced less than ``min_interval`` ago.

        For callers that suspect the cached copy is stale (credentials that no longer match)
        without letting every bad request reach Secrets Manager.
        """
        with self._lock:
            now = time.monotonic()
            if self._last_forced is not None and now - self._last_forced < min_interval_seconds:
                return None
            self._last_forced = now
        return self.get(refresh=True)

    def fresh_raindrop_key(self) -> str | None:
        """The Raindrop key re-read from Secrets Manager (after Raindrop refused the cached
        one); None when the secret cannot be read."""
        try:
            return self.get(refresh=True).raindrop_api_key
        except SecretUnavailable:
            return None

    def get(self, *, refresh: bool = False) -> SecretValues:
        value = self._value(refresh=refresh)
        if not isinstance(value, dict):
            raise SecretUnavailable("the secret is not a JSON object")
        try:
            return SecretValues.model_validate(value)
        except ValidationError:
            raise SecretUnavailable("the secret's values must be strings") from None

    def _value(self, *, refresh: bool) -> Any:
        """The secret's JSON: the cached copy while it is younger than ``max_age`` (unless
        ``refresh``), otherwise read again."""
        with self._lock:
            if self._client is None:
                self._client = _default_client()
            client, cached = self._client, self._cached
        if not refresh and cached is not None and time.monotonic() - cached[0] < self._max_age:
            return cached[1]
        try:
            response = client.get_secret_value(SecretId=self._secret_id)
            # A string, or bytes when the secret was stored as binary (JSON in bytes reads too).
            text: str | bytes = (
                response["SecretString"] if "SecretString" in response else response["SecretBinary"]
            )
        except Exception as exc:  # whatever it is, the secret could not be read: answer 503
            raise SecretUnavailable(f"the secret could not be read ({_error_code(exc)})") from None
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            raise SecretUnavailable("the secret is not a JSON object") from None
        if value is not None:  # a literal null is read again next time, like a failed read
            with self._lock:
                self._cached = (time.monotonic(), value)
        return value


def _default_client() -> SecretsManagerClient:
    client = botocore.session.get_session().create_client(SECRETS_MANAGER)
    return cast("SecretsManagerClient", client)


def _error_code(exc: Exception) -> str:
    """Secrets Manager's error code (``ResourceNotFoundException``...), or the exception's
    class when there is none (a timeout, no credentials): never its message."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__
