"""Authenticating Segment's requests (docs/wire.md §1.4): bearer, Basic, X-Signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import pytest
from tests.support.auth import bearer

from segment_raindrop.core.request_auth import (
    UNVERIFIABLE_BATCH_REASON,
    AuthDecision,
    AuthMethod,
    authenticate,
    sign,
)
from segment_raindrop_tools import samples

TOKEN = "whk_3f9a8b7c6d5e4f3a2b1c"
SECRET = "segment-shared-secret-☃"
BODY = b'{"type":"track","event":"AI Chat Completed","userId":"u1"}'


def hmac_sha1(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha1).hexdigest()


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def auth(
    headers: dict[str, str],
    body: bytes = BODY,
    *,
    token: str | None = TOKEN,
    secret: str | None = SECRET,
) -> AuthDecision:
    return authenticate(headers, body, webhook_token=token, shared_secret=secret)


# -- bearer and basic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"  Bearer   {TOKEN}  ",
    ],
)
def test_bearer_ok(header: str) -> None:
    decision = auth({"authorization": header})
    assert decision.ok
    assert decision.method is AuthMethod.BEARER
    assert decision.reason == ""


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN.upper()}",
        "Bearer ",
        "Bearer",
        TOKEN,
        f"Token {TOKEN}",
        f"Bearer{TOKEN}",
    ],
)
def test_bearer_wrong(header: str) -> None:
    decision = auth({"authorization": header})
    assert not decision.ok
    assert decision.method is None
    assert decision.reason == "invalid credentials"


@pytest.mark.parametrize(
    "header",
    [
        basic(TOKEN),  # Segment's libraries: write key as user name, empty password
        basic(TOKEN, "anything"),
        "basic " + base64.b64encode(TOKEN.encode()).decode(),  # no colon at all
        "BASIC " + base64.b64encode(f"{TOKEN}:".encode()).decode(),
    ],
)
def test_basic_with_token_as_user_name(header: str) -> None:
    decision = auth({"authorization": header})
    assert decision.method is AuthMethod.BASIC


@pytest.mark.parametrize(
    "header",
    [
        basic("wrong"),
        basic("", TOKEN),  # the token as password is not Segment's convention
        basic(TOKEN + "x"),
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"\xff\xfe:").decode(),  # not UTF-8
        "Basic ünïcödé",  # not even ASCII
        "Basic ",
    ],
)
def test_basic_wrong(header: str) -> None:
    decision = auth({"authorization": header})
    assert not decision.ok
    assert decision.reason == "invalid credentials"


def test_segment_sdk_style_request(fixture_bytes: Callable[[str], bytes]) -> None:
    # What analytics-python posts to /v1/batch: Basic auth with the write key as user name.
    body = fixture_bytes("tracking_api_batch.json")
    assert auth({"authorization": basic(TOKEN)}, body, secret=None).method is AuthMethod.BASIC


# -- X-Signature -------------------------------------------------------------------------------


def test_signature_over_the_whole_body() -> None:
    decision = auth({"x-signature": hmac_sha1(SECRET, BODY)})
    assert decision.method is AuthMethod.SIGNATURE


def test_signature_is_case_and_space_tolerant() -> None:
    signature = " " + hmac_sha1(SECRET, BODY).upper() + " "
    assert auth({"x-signature": signature}).method is AuthMethod.SIGNATURE


def test_sign_matches_segment_hmac_sha1() -> None:
    assert sign(BODY, SECRET) == hmac_sha1(SECRET, BODY)
    assert len(sign(BODY, SECRET)) == 40


def test_signature_over_whole_batch_body_is_also_accepted() -> None:
    # Segment has open work to sign the full body; both forms pass.
    body = samples.body(samples.conversation(prompt_chars=50))
    assert auth({"x-signature": sign(body, SECRET)}, body).method is AuthMethod.SIGNATURE


def test_signature_over_the_first_element_of_a_one_event_batch() -> None:
    events = samples.conversation(prompt_chars=50)[:1]
    body = samples.body(events)
    first = json.dumps(events[0], ensure_ascii=False, separators=(",", ":")).encode()
    decision = auth({"x-signature": sign(first, SECRET)}, body, token=None)
    assert decision.method is AuthMethod.SIGNATURE_FIRST_ELEMENT


# Without a token, a valid first-element signature on several events is recognised but cannot
# be trusted: the decision is `unverifiable`; an invalid one is plain "invalid credentials".
# The next tests use that to show which bytes the signature was checked against.


def _recognised(decision: AuthDecision) -> bool:
    return decision.unverifiable and not decision.ok


def test_signature_over_raw_first_element_text(fixture_bytes: Callable[[str], bytes]) -> None:
    # Irregular whitespace and JavaScript-formatted numbers (1e-7, 1e+21, 1.0): the signed bytes
    # are the element's raw text; re-serialising it in Python gives different bytes.
    body = fixture_bytes("actions_batch_js_numbers.json")
    text = body.decode()
    start = text.index("{")
    end = text.index("} ,\n") + 1
    raw_first = body[len(text[:start].encode()) : len(text[:end].encode())]
    assert json.dumps(json.loads(raw_first), separators=(",", ":")).encode() != raw_first
    assert _recognised(auth({"x-signature": hmac_sha1(SECRET, raw_first)}, body, token=None))
    reserialised = json.dumps(json.loads(raw_first), separators=(",", ":"), ensure_ascii=False)
    decision = auth({"x-signature": hmac_sha1(SECRET, reserialised.encode())}, body, token=None)
    assert decision.reason == "invalid credentials"
    assert not decision.unverifiable


def test_first_element_signature_with_leading_whitespace() -> None:
    element = '{"type":"track","n":1e21,"t":"[x],{y}"}'
    body = f'\n\t [  {element}\r\n,  {{"type":"page"}} ]'.encode()
    signed = {"x-signature": hmac_sha1(SECRET, element.encode())}
    assert _recognised(auth(signed, body, token=None))
    single = f"\n\t [  {element}\r\n ]".encode()
    assert auth(signed, single, token=None).method is AuthMethod.SIGNATURE_FIRST_ELEMENT


def test_first_element_signature_with_unicode() -> None:
    element = '{"event":"AI Chat Completed","input":"日本語 🌍 \\u00e9"}'
    signed = {"x-signature": hmac_sha1(SECRET, element.encode())}
    assert _recognised(auth(signed, f"[{element},{{}}]".encode(), token=None))
    assert auth(signed, f"[{element}]".encode(), token=None).ok


def test_first_element_signature_of_a_batch_needs_the_token_when_one_is_configured() -> None:
    # The signature covers element 0 only: a signed event with forged ones appended must not
    # pass on the signature alone (docs/wire.md §1.4: a batch also needs the header secret).
    element = '{"type":"track","event":"AI Chat Completed"}'
    body = f'[{element},{{"type":"track","event":"AI Forged"}}]'.encode()
    signed = {"x-signature": hmac_sha1(SECRET, element.encode())}
    refused = auth(signed, body)
    assert not refused.ok
    assert "token" in refused.reason
    assert not auth({**signed, "authorization": "Bearer wrong"}, body).ok
    assert auth({**signed, "authorization": f"Bearer {TOKEN}"}, body).method is AuthMethod.BEARER


def test_single_element_array_signed_over_its_element_needs_nothing_else() -> None:
    element = '{"type":"track","event":"AI Chat Completed"}'
    body = f" [ {element} ] ".encode()
    signed = {"x-signature": hmac_sha1(SECRET, element.encode())}
    assert auth(signed, body).method is AuthMethod.SIGNATURE_FIRST_ELEMENT


def test_signature_of_the_second_element_is_refused() -> None:
    body = b'[{"a":1},{"b":2}]'
    assert not auth({"x-signature": hmac_sha1(SECRET, b'{"b":2}')}, body).ok


def test_first_element_rule_does_not_apply_to_objects() -> None:
    # {"batch": [...]} is not an array: only a whole-body signature can authenticate it.
    element = b'{"type":"track"}'
    body = b'{"batch":[' + element + b"]}"
    assert not auth({"x-signature": hmac_sha1(SECRET, element)}, body).ok


@pytest.mark.parametrize(
    "signature",
    [
        "0" * 40,
        "not-hex",
        "",
        "sha1=" + hmac_sha1(SECRET, BODY),
        hmac_sha1("other-secret", BODY),
        hmac_sha1(SECRET, BODY + b" "),
        hmac_sha1(SECRET, BODY)[:-1],
    ],
)
def test_wrong_signature(signature: str) -> None:
    decision = auth({"x-signature": signature}, token=None)
    assert not decision.ok
    assert decision.reason in {"invalid credentials", "missing credentials"}


def test_signature_on_malformed_or_non_utf8_batch_is_refused_not_raised() -> None:
    for body in (b"[", b"[\xff\xfe]", b"[]", b"[ ]", b'[{"a":'):
        decision = auth({"x-signature": hmac_sha1(SECRET, b"{}")}, body, token=None)
        assert not decision.ok


# -- configuration and missing credentials ---------------------------------------------------


@pytest.mark.parametrize(("token", "secret"), [(None, None), ("", ""), (None, ""), ("", None)])
def test_nothing_configured_refuses_everything(token: str | None, secret: str | None) -> None:
    headers = {"authorization": "Bearer ", "x-signature": hmac_sha1("", BODY)}
    decision = auth(headers, token=token, secret=secret)
    assert not decision.ok
    assert "no webhook_token or segment_shared_secret is configured" in decision.reason


def test_missing_credentials() -> None:
    decision = auth({"content-type": "application/json", "user-agent": "Segment (Actions)"})
    assert not decision.ok
    assert decision.reason == "missing credentials"


def test_signature_header_without_a_shared_secret_configured() -> None:
    decision = auth({"x-signature": hmac_sha1(SECRET, BODY)}, secret=None)
    assert not decision.ok
    assert decision.reason == "invalid credentials"


def test_authorization_header_without_a_token_configured() -> None:
    decision = auth({"authorization": f"Bearer {TOKEN}"}, token=None)
    assert not decision.ok
    assert decision.reason == "invalid credentials"


def test_either_credential_is_enough() -> None:
    good_signature = hmac_sha1(SECRET, BODY)
    assert auth({"authorization": "Bearer wrong", "x-signature": good_signature}).method is (
        AuthMethod.SIGNATURE
    )
    assert auth({"authorization": f"Bearer {TOKEN}", "x-signature": "bad"}).method is (
        AuthMethod.BEARER
    )
    assert not auth({"authorization": "Bearer wrong", "x-signature": "bad"}).ok


def test_token_only_and_secret_only_configurations() -> None:
    assert auth({"authorization": f"Bearer {TOKEN}"}, secret=None).ok
    assert auth({"x-signature": hmac_sha1(SECRET, BODY)}, token=None).ok


def test_header_names_must_be_lower_case() -> None:
    # The caller lower-cases header names (documented contract of authenticate).
    decision = auth(bearer(TOKEN))
    assert decision.reason == "missing credentials"


def test_reasons_never_contain_credentials() -> None:
    for headers in ({"authorization": "Bearer leaked-token"}, {"x-signature": "leaked-sig"}):
        decision = auth(headers)
        assert "leaked" not in decision.reason
        assert TOKEN not in decision.reason


# -- every configuration against every credential (finding 4: no forgeable batch) --------------

SIGNED_EVENT = '{"type":"track","event":"AI Chat Completed","userId":"u1","messageId":"m1"}'
FORGED = '{"type":"track","event":"AI Chat Completed","userId":"victim","messageId":"forged"}'
THREE = f'[{SIGNED_EVENT},{{"type":"page","userId":"u1"}},{{"type":"identify","userId":"u1"}}]'

# (headers, body) for each way a request can present itself.
CREDENTIALS: dict[str, tuple[dict[str, str], bytes]] = {
    "bearer": ({"authorization": f"Bearer {TOKEN}"}, THREE.encode()),
    "basic": ({"authorization": basic(TOKEN)}, THREE.encode()),
    "whole-body-signature": ({"x-signature": hmac_sha1(SECRET, THREE.encode())}, THREE.encode()),
    "first-element-signature-1": (
        {"x-signature": hmac_sha1(SECRET, SIGNED_EVENT.encode())},
        f"[{SIGNED_EVENT}]".encode(),
    ),
    "first-element-signature-3": (
        {"x-signature": hmac_sha1(SECRET, SIGNED_EVENT.encode())},
        THREE.encode(),
    ),
    # A genuine one-event request replayed with events of the attacker's own appended.
    "appended-forged-events": (
        {"x-signature": hmac_sha1(SECRET, SIGNED_EVENT.encode())},
        f"[{SIGNED_EVENT},{FORGED},{FORGED}]".encode(),
    ),
}
CONFIGURATIONS: dict[str, tuple[str | None, str | None]] = {
    "token-only": (TOKEN, None),
    "secret-only": (None, SECRET),
    "both": (TOKEN, SECRET),
    "neither": (None, None),
}
# What each configuration makes of each credential: an AuthMethod value when accepted,
# "401" when refused, "503" when the configuration cannot verify the request.
EXPECTED: dict[str, dict[str, str]] = {
    "token-only": {
        "bearer": "bearer",
        "basic": "basic",
        "whole-body-signature": "401",
        "first-element-signature-1": "401",
        "first-element-signature-3": "401",
        "appended-forged-events": "401",
    },
    "secret-only": {
        "bearer": "401",
        "basic": "401",
        "whole-body-signature": "signature",
        "first-element-signature-1": "signature-first-element",
        "first-element-signature-3": "503",
        "appended-forged-events": "503",
    },
    "both": {
        "bearer": "bearer",
        "basic": "basic",
        "whole-body-signature": "signature",
        "first-element-signature-1": "signature-first-element",
        "first-element-signature-3": "401",
        "appended-forged-events": "401",
    },
    "neither": dict.fromkeys(CREDENTIALS, "401"),
}


def _outcome(decision: AuthDecision) -> str:
    if decision.method is not None:
        assert not decision.unverifiable
        assert decision.reason == ""
        return decision.method.value
    assert decision.reason
    return "503" if decision.unverifiable else "401"


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_configuration_by_credential(configuration: str, credential: str) -> None:
    token, secret = CONFIGURATIONS[configuration]
    headers, body = CREDENTIALS[credential]
    decision = auth(headers, body, token=token, secret=secret)
    assert _outcome(decision) == EXPECTED[configuration][credential]


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", basic("wrong"), "Token x"])
def test_a_first_element_signature_never_carries_a_batch(
    configuration: str, authorization: str | None
) -> None:
    # Whatever else (short of the right token) the request carries, appended events never pass.
    token, secret = CONFIGURATIONS[configuration]
    headers, body = CREDENTIALS["appended-forged-events"]
    if authorization is not None:
        headers = {**headers, "authorization": authorization}
    assert not auth(headers, body, token=token, secret=secret).ok


def test_unverifiable_batch_names_the_fix() -> None:
    headers, body = CREDENTIALS["first-element-signature-3"]
    decision = auth(headers, body, token=None)
    assert decision.unverifiable
    assert decision.reason == UNVERIFIABLE_BATCH_REASON
    assert "webhook_token" in decision.reason
    assert "Authorization: Bearer" in decision.reason
    assert SECRET not in decision.reason


def test_unverifiable_only_when_the_first_element_signature_is_genuine() -> None:
    # A wrong signature on a batch is a stranger, not a set-up fault: 401, no alarm.
    _, body = CREDENTIALS["first-element-signature-3"]
    for signature in (hmac_sha1("other-secret", SIGNED_EVENT.encode()), "0" * 40):
        decision = auth({"x-signature": signature}, body, token=None)
        assert not decision.unverifiable
        assert decision.reason == "invalid credentials"


def test_token_with_a_first_element_signed_batch() -> None:
    # What Segment sends once the mapping adds the header: the token carries the batch.
    headers, body = CREDENTIALS["appended-forged-events"]
    decision = auth({**headers, "authorization": f"Bearer {TOKEN}"}, body)
    assert decision.method is AuthMethod.BEARER


# -- token rotation: webhook_token_previous ------------------------------------------------------

PREVIOUS = "whk_old_9e8d7c6b5a4f3e2d1c0b"


def rotating(headers: dict[str, str], body: bytes = BODY, **kwargs: str | None) -> AuthDecision:
    options: dict[str, str | None] = {"token": TOKEN, "secret": SECRET, **kwargs}
    return authenticate(
        headers,
        body,
        webhook_token=options["token"],
        shared_secret=options["secret"],
        previous_webhook_token=options.get("previous", PREVIOUS),
    )


@pytest.mark.parametrize(
    ("header", "method"),
    [
        (f"Bearer {TOKEN}", AuthMethod.BEARER),
        (f"Bearer {PREVIOUS}", AuthMethod.BEARER_PREVIOUS),
        (basic(TOKEN), AuthMethod.BASIC),
        (basic(PREVIOUS), AuthMethod.BASIC_PREVIOUS),
    ],
)
def test_during_a_rotation_either_token_passes_and_says_which(
    header: str, method: AuthMethod
) -> None:
    # Segment keeps sending the old token until its header is changed: nothing may be refused
    # in between, and the method tells the operator when the old one is no longer used.
    assert rotating({"authorization": header}).method is method


@pytest.mark.parametrize(
    "header",
    [f"Bearer {PREVIOUS}x", f"Bearer {PREVIOUS[:-1]}", basic(PREVIOUS + "x"), basic("", PREVIOUS)],
)
def test_near_misses_of_the_previous_token_are_refused(header: str) -> None:
    decision = rotating({"authorization": header})
    assert not decision.ok
    assert decision.reason == "invalid credentials"


def test_without_a_previous_token_only_the_current_one_passes() -> None:
    assert not rotating({"authorization": f"Bearer {PREVIOUS}"}, previous=None).ok
    assert not rotating({"authorization": f"Bearer {PREVIOUS}"}, previous="").ok
    assert rotating({"authorization": f"Bearer {TOKEN}"}, previous=None).ok


def test_a_previous_token_alone_still_authenticates() -> None:
    # Mid-edit the current token may be missing; the endpoint is still not open.
    assert rotating({"authorization": f"Bearer {PREVIOUS}"}, token=None, secret=None).ok
    assert not rotating({"authorization": "Bearer "}, token=None, secret=None).ok
    assert not rotating({}, token=None, secret=None).ok


def test_a_first_element_signed_batch_may_carry_the_previous_token() -> None:
    element = '{"type":"track","event":"AI Chat Completed"}'
    body = f'[{element},{{"type":"track","event":"AI Forged"}}]'.encode()
    signed = {"x-signature": hmac_sha1(SECRET, element.encode())}
    assert not rotating(signed, body).ok  # still needs a token, either one
    with_previous = {**signed, "authorization": f"Bearer {PREVIOUS}"}
    assert rotating(with_previous, body).method is AuthMethod.BEARER_PREVIOUS


def test_both_tokens_are_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Constant time across the two: the comparison count does not depend on which one matched.
    calls: list[int] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    counts = []
    for token in (TOKEN, PREVIOUS, "neither"):
        calls.clear()
        rotating({"authorization": f"Bearer {token}"}, secret=None)
        counts.append(len(calls))
    assert counts == [2, 2, 2]
