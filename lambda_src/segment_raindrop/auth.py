"""Authenticating Segment's requests (WIRE.md §1).

A request passes with any one of:
- ``Authorization: Bearer <webhook_token>`` (a custom header in the Webhooks (Actions) mapping);
- ``Authorization: Basic`` with the webhook token as user name, the convention Segment's
  server libraries use with a write key, so they can post ``{"batch": [...]}`` to us directly;
- ``X-Signature``: hex HMAC-SHA1 of the raw body with Segment's shared secret or, for a
  batched request, of the raw text of the array's first element (all Segment signs today).
  That covers element 0 only, so when a webhook token is configured (the stack always
  generates one) a batch of several events signed that way must also carry the token
  (WIRE.md §1); without a token, the first-element signature is all there is to check.

With neither a token nor a shared secret configured every request is refused: the endpoint
is never open by default. All comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from segment_raindrop.segment import first_array_element_text, is_single_element_array


class AuthMethod(StrEnum):
    BEARER = "bearer"
    BASIC = "basic"
    SIGNATURE = "signature"
    SIGNATURE_FIRST_ELEMENT = "signature-first-element"


@dataclass(frozen=True, slots=True)
class AuthDecision:
    method: AuthMethod | None
    # Why a request was refused; fixed phrases, safe to log and to answer with.
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.method is not None


def authenticate(
    headers: Mapping[str, str],
    body: bytes,
    *,
    webhook_token: str | None,
    shared_secret: str | None,
) -> AuthDecision:
    """Decide whether the request is Segment's. ``headers`` must have lower-case names."""
    if not webhook_token and not shared_secret:
        return AuthDecision(None, "no webhook_token or segment_shared_secret is configured")
    authorization = headers.get("authorization", "")
    signature = headers.get("x-signature", "")
    if webhook_token and authorization:
        method = _check_authorization(authorization, webhook_token)
        if method is not None:
            return AuthDecision(method)
    if shared_secret and signature:
        method = _check_signature(signature, body, shared_secret)
        if method is AuthMethod.SIGNATURE_FIRST_ELEMENT and webhook_token and not _single(body):
            # The signature covers element 0 only: anyone holding one signed event could
            # append events of their own. With a token configured, such a batch must carry it.
            return AuthDecision(None, "a batch signed over its first element only needs the token")
        if method is not None:
            return AuthDecision(method)
    if not authorization and not signature:
        return AuthDecision(None, "missing credentials")
    return AuthDecision(None, "invalid credentials")


def _check_authorization(header: str, token: str) -> AuthMethod | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "bearer":
        return AuthMethod.BEARER if _equal(value, token) else None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII characters
            return None
        user, _, _password = decoded.partition(":")
        return AuthMethod.BASIC if _equal(user, token) else None
    return None


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
