"""Whether a request's credentials match the secret's, on both routes (docs/wire.md §1.4).

Raindrop's SDK route (:func:`authenticate_sdk`) takes its bearer key. Segment's route
(:func:`authenticate`) passes a request with any one of:
- ``Authorization: Bearer <webhook_token>`` (a custom header in the Webhooks (Actions) mapping);
- ``Authorization: Basic`` with the webhook token as user name, the convention Segment's
  server libraries use with a write key, so they can post ``{"batch": [...]}`` to us directly;
- ``X-Signature``: hex HMAC-SHA1 of the raw body with Segment's shared secret or, for a
  batched request, of the raw text of the array's first element (all Segment signs today).

A first-element signature covers element 0 only: anyone holding one signed event could append
events of their own. So it authenticates a one-element array (element 0 is the whole body) and
never a batch of several events on its own:
- with a webhook token configured, such a batch must also carry the token (else refused);
- with only a shared secret configured, the forwarder has no way to verify the batch. That is a
  set-up fault, not a stranger: the decision is ``unverifiable`` so the webhook answers 5xx with
  the fix (Segment keeps the events and retries for hours) instead of a 401 Segment would drop.

During a token rotation the secret also holds ``webhook_token_previous``: a request carrying
either token passes, so nothing Segment sends between the secret's update and its own header
update is refused (docs/deploy.md, "Rotate the webhook token"). The method then names the
previous token, and the webhook logs it, so the operator sees when Segment stops using it.

With neither a token nor a shared secret configured every request is refused: the endpoint
is never open by default. All comparisons are constant-time, and every configured token is
compared, so the time taken does not tell which one matched.

Signatures are over the JSON Segment serialised, so ``body`` must be the decoded body (after
any ``Content-Encoding``, see content_encoding.py), never the compressed bytes. It may be given
as a function: the body is then decoded only when a signature has to be checked, so a request
whose token already decides costs no decoding before it is authenticated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from segment_raindrop.core.segment_body import first_array_element_text, is_single_element_array

# Safe to show Segment and to log: it names the fix, never a credential.
UNVERIFIABLE_BATCH_REASON: Final = (
    "cannot verify a batch signed over its first element only: add webhook_token to the "
    "secret and an Authorization: Bearer header to the Segment mapping"
)


# A request that carried no credentials at all: re-reading the secret cannot help it.
MISSING_CREDENTIALS: Final = "missing credentials"


class AuthMethod(StrEnum):
    BEARER = "bearer"
    BASIC = "basic"
    # The same, with the token being rotated out (webhook_token_previous).
    BEARER_PREVIOUS = "bearer-previous-token"
    BASIC_PREVIOUS = "basic-previous-token"
    SIGNATURE = "signature"
    SIGNATURE_FIRST_ELEMENT = "signature-first-element"
    # Raindrop's SDK route: the request carries the Raindrop key itself.
    RAINDROP_KEY = "raindrop-key"


@dataclass(frozen=True, slots=True)
class AuthDecision:
    method: AuthMethod | None
    # Why a request was refused; fixed phrases, safe to log and to answer with.
    reason: str = ""
    # Refused because the configuration cannot verify it (a multi-event batch signed over its
    # first element, and no webhook token to demand): answer 503 and alert, not 401.
    unverifiable: bool = False

    @property
    def ok(self) -> bool:
        return self.method is not None


def authenticate(
    headers: Mapping[str, str],
    body: bytes | Callable[[], bytes],
    *,
    webhook_token: str | None,
    shared_secret: str | None,
    previous_webhook_token: str | None = None,
) -> AuthDecision:
    """Decide whether the request is Segment's. ``headers`` must have lower-case names.

    ``body`` is the decoded body (``content_encoding.decode_body``), or what decodes it.
    ``previous_webhook_token`` is accepted like ``webhook_token`` (a rotation in progress). A
    refused decision with ``unverifiable`` set is a configuration fault to answer with 503 and
    ``UNVERIFIABLE_BATCH_REASON``; any other refusal is a 401.
    """
    tokens = _Tokens(webhook_token or None, previous_webhook_token or None)
    if not tokens.any and not shared_secret:
        return AuthDecision(None, "no webhook_token or segment_shared_secret is configured")
    authorization = headers.get("authorization", "")
    signature = headers.get("x-signature", "")
    if tokens.any and authorization:
        method = _check_authorization(authorization, tokens)
        if method is not None:
            return AuthDecision(method)
    if shared_secret and signature:
        decision = _signature_decision(
            signature, body() if callable(body) else body, shared_secret, tokens
        )
        if decision is not None:
            return decision
    if not authorization and not signature:
        return AuthDecision(None, MISSING_CREDENTIALS)
    return AuthDecision(None, "invalid credentials")


def _signature_decision(
    signature: str, body: bytes, shared_secret: str, tokens: _Tokens
) -> AuthDecision | None:
    method = _check_signature(signature, body, shared_secret)
    if method is AuthMethod.SIGNATURE_FIRST_ELEMENT and not _single(body):
        if tokens.any:
            return AuthDecision(None, "a batch signed over its first element only needs the token")
        return AuthDecision(None, UNVERIFIABLE_BATCH_REASON, unverifiable=True)
    return None if method is None else AuthDecision(method)


def authenticate_sdk(
    authorization: str, *, raindrop_key: str | None, webhook_token: str | None
) -> AuthDecision:
    """Decide whether a request on Raindrop's SDK route (``/raindrop/v1/``) may pass: its
    bearer key is the stored Raindrop key (as Raindrop itself would require) or, when given
    (the mirror's ``MIRROR_ACCEPTS_WEBHOOK_TOKEN``), the webhook token. ``raindrop_key`` None:
    no usable key is stored."""
    scheme, _, given = authorization.strip().partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    if not given:
        return AuthDecision(None, MISSING_CREDENTIALS)
    # Both compared every time, in constant time each, so timing tells nothing of which.
    is_key = _equal(given, raindrop_key) if raindrop_key else False
    is_token = _equal(given, webhook_token) if webhook_token else False
    if is_key:
        return AuthDecision(AuthMethod.RAINDROP_KEY)
    if is_token:
        return AuthDecision(AuthMethod.BEARER)
    return AuthDecision(None, "bearer key not accepted")


@dataclass(frozen=True, slots=True)
class _Tokens:
    """The webhook token and, during a rotation, the one it replaces."""

    current: str | None
    previous: str | None

    @property
    def any(self) -> bool:
        return bool(self.current or self.previous)

    def match(self, given: str) -> tuple[bool, bool]:
        """(matches the current token, matches the previous one), both always compared."""
        return (
            _equal(given, self.current) if self.current else False,
            _equal(given, self.previous) if self.previous else False,
        )


def _check_authorization(header: str, tokens: _Tokens) -> AuthMethod | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "bearer":
        return _token_method(tokens.match(value), AuthMethod.BEARER)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII characters
            return None
        user, _, _password = decoded.partition(":")
        return _token_method(tokens.match(user), AuthMethod.BASIC)
    return None


_PREVIOUS: Final = {
    AuthMethod.BEARER: AuthMethod.BEARER_PREVIOUS,
    AuthMethod.BASIC: AuthMethod.BASIC_PREVIOUS,
}


def _token_method(matches: tuple[bool, bool], method: AuthMethod) -> AuthMethod | None:
    current, previous = matches
    if current:
        return method
    return _PREVIOUS[method] if previous else None


def _check_signature(signature: str, body: bytes, secret: str) -> AuthMethod | None:
    key = secret.encode("utf-8")
    given = signature.strip().lower()
    if _equal(given, _hmac_sha1(key, body)):
        return AuthMethod.SIGNATURE
    if body.lstrip()[:1] != b"[":
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first = first_array_element_text(text)
    if first is not None and _equal(given, _hmac_sha1(key, first.encode("utf-8"))):
        return AuthMethod.SIGNATURE_FIRST_ELEMENT
    return None


def _single(body: bytes) -> bool:
    return is_single_element_array(body.decode("utf-8"))


def sign(body: bytes, secret: str) -> str:
    """Segment's ``X-Signature`` for ``body``; used by local mode's sample sender and tests."""
    return _hmac_sha1(secret.encode("utf-8"), body)


def _hmac_sha1(key: bytes, message: bytes) -> str:
    # SHA-1 is what Segment signs with; as an HMAC it is still sound.
    return hmac.new(key, message, hashlib.sha1).hexdigest()


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
