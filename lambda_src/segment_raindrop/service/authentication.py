"""Authenticating a request against the secret in force, on both routes.

The decisions are :mod:`segment_raindrop.core.request_auth`'s; this adds what both routes need
around them: a refused request that carried credentials re-reads the secret (at most every
``AUTH_REFRESH_SECONDS``), since a token or key may just have been changed in Secrets Manager
and Segment drops what is refused; every refusal is counted and logged (its reason, never a
credential) and ends the request with a :class:`~segment_raindrop.service.requests.Refusal`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from segment_raindrop.adapters.observability import count, logger
from segment_raindrop.adapters.secrets import SecretStore, SecretUnavailable, SecretValues
from segment_raindrop.core.contract import Metric
from segment_raindrop.core.request_auth import (
    MISSING_CREDENTIALS,
    AuthDecision,
    AuthMethod,
    authenticate,
    authenticate_sdk,
)
from segment_raindrop.service.requests import AUTH_REFRESH_SECONDS, Refusal


def segment_request(
    secrets: SecretStore, headers: Mapping[str, str], body: Callable[[], bytes]
) -> tuple[SecretValues, AuthMethod]:
    """The secret in force (it may have been re-read) and how Segment's request passed.

    ``body`` decodes the body (Segment signs the uncompressed JSON); it is called only when a
    signature must be checked: a token decides before anything is decoded.
    """

    def decide(secret: SecretValues) -> AuthDecision:
        return authenticate(
            headers,
            body,
            webhook_token=secret.webhook_token,
            shared_secret=secret.segment_shared_secret,
            previous_webhook_token=secret.webhook_token_previous,
        )

    secret, decision = _decided(secrets, decide)
    if decision.unverifiable:
        # Genuine as far as it can be checked, but events 2..n are not covered: refusing with
        # a 4xx would make Segment drop them, so ask it to resend until the set-up is fixed.
        count(Metric.UNVERIFIABLE_BATCHES)
        logger.error("batch cannot be verified", extra={"reason": decision.reason})
        raise Refusal(503, decision.reason)
    return secret, _passed(decision, "unauthorized")


def sdk_request(
    secrets: SecretStore, headers: Mapping[str, str], *, accepts_webhook_token: bool
) -> SecretValues:
    """The secret in force when the bearer key of Raindrop's SDK is one it accepts: the stored
    Raindrop key, and the webhook token only when ``accepts_webhook_token``."""
    authorization = headers.get("authorization") or ""

    def decide(secret: SecretValues) -> AuthDecision:
        key = secret.raindrop_api_key if secret.raindrop_key_configured else None
        token = secret.webhook_token if accepts_webhook_token else None
        return authenticate_sdk(authorization, raindrop_key=key, webhook_token=token)

    secret, decision = _decided(secrets, decide)
    _passed(decision, "invalid or missing API key")
    return secret


def _decided(
    secrets: SecretStore, decide: Callable[[SecretValues], AuthDecision]
) -> tuple[SecretValues, AuthDecision]:
    secret = secrets.get()
    decision = decide(secret)
    if decision.ok or decision.reason == MISSING_CREDENTIALS:
        return secret, decision
    try:
        fresh = secrets.refresh_if_due(AUTH_REFRESH_SECONDS)
    except SecretUnavailable:
        fresh = None
    if fresh is None:
        return secret, decision
    return fresh, decide(fresh)


def _passed(decision: AuthDecision, refusal: str) -> AuthMethod:
    if decision.method is None:
        count(Metric.UNAUTHORIZED_REQUESTS)
        logger.warning("request refused", extra={"reason": decision.reason})
        raise Refusal(401, refusal)
    return decision.method
