"""Personal data and credentials out of what is sent to Raindrop (REDACT_PII, REDACT_KEYS).

Raindrop's SDKs redact on the client; its HTTP API does not (docs/wire.md §2.5), so the forwarder
does it before anything leaves the account. Matches are replaced by typed placeholders
(``<REDACTED_EMAIL>``); configured keys are dropped from properties and traits at any depth.

Only what is sent is redacted: the queues keep the original events (they stay in the account),
and a retry or replay redacts again with the configuration in force then.

Cost: three families of patterns (secrets, e-mail, numbers), compiled once, each run only on
text that passes its cheap trigger; most strings reach none of them.
Redacted text is never logged: only counts by kind leave this module.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from typing import Any, Final

# Kinds, as they appear in placeholders and in the metric's ``kind`` dimension.
EMAIL: Final = "email"
PHONE: Final = "phone"
CARD: Final = "card"
SSN: Final = "ssn"
IP: Final = "ip"
CREDENTIAL: Final = "credential"
PASSWORD: Final = "password"  # noqa: S105 - a kind's name, not a password
KINDS: Final = (EMAIL, PHONE, CARD, SSN, IP, CREDENTIAL, PASSWORD)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_HEX = r"[0-9A-Fa-f]{1,4}"
# Order matters: earlier alternatives win where two could match at the same place (an
# Anthropic key is also an OpenAI-shaped one; a card's digit groups could read as a phone).
_PATTERNS: Final = (
    (
        CREDENTIAL,
        r"\bsk-ant-[A-Za-z0-9_-]{16,}"
        r"|\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
        r"|\bgithub_pat_[A-Za-z0-9_]{22,}"
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
        r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|\bAIza[0-9A-Za-z_-]{35}"
        r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
        r"|\b[Bb]earer\s+[A-Za-z0-9._~+/=-]{8,}",
    ),
    # The key stays (it tells the reader what was there); the value goes.
    (
        PASSWORD,
        r"(?i:\b(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?token|token)"
        r"\s*[=:]\s*)(?P<password_value>[^\s,;&\"'<>\\]+)",
    ),
    (EMAIL, r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    # Dashed or spaced only: nine bare digits are as often an order number as an SSN.
    (SSN, r"\b(?!000|666|9\d\d)\d{3}(?P<ssn_gap>[- ])(?!00)\d{2}(?P=ssn_gap)(?!0000)\d{4}\b"),
    # Issuer prefixes (3x Amex/Diners/JCB, 4 Visa, 5 Mastercard, 6 Discover, 2 Mastercard's
    # newer range), 13-19 digits, optionally grouped; the Luhn check is made on each match.
    (CARD, r"(?<![\w.-])[2-6]\d(?:[ -]?\d){11,17}(?![\w-]|\.\d)"),
    # Whole addresses only: not a version string such as v1.2.3.4 or 1.2.3.4.5.
    (IP, rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)"),
    (
        IP,
        # Compressed ("::") forms need three groups: "a::b" is as likely C++ or Rust as an address.
        rf"(?<![\w:])(?:(?:{_HEX}:){{7}}{_HEX}|(?:{_HEX}:){{2,6}}(?::{_HEX}){{1,5}}"
        rf"|(?:{_HEX}:){{1,5}}(?::{_HEX}){{2,6}})(?![\w:])",
    ),
    # Separated groups (or a leading +): a bare run of ten digits is an id more often than not.
    (
        PHONE,
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\w|[.-]\d)"
        r"|(?<![\w+])\+\d{1,3}(?:[ .-]?\d){7,12}(?!\w)",
    ),
)


def _compiled(kinds: Collection[str]) -> re.Pattern[str]:
    return re.compile(
        "|".join(
            f"(?P<{kind}{number}>{pattern})"
            for number, (kind, pattern) in enumerate(_PATTERNS)
            if kind in kinds
        )
    )


# Each family runs only on text that passes its cheap trigger (substring tests in C, or a
# pattern that starts with a digit class and so fails fast on letters): a full scan of every
# string with every pattern cost more than the mapping itself.
_EMAILS: Final = _compiled({EMAIL})
_SECRETS: Final = _compiled({CREDENTIAL, PASSWORD})
_NUMBERS: Final = _compiled({SSN, CARD, IP, PHONE})
_SECRET_MARKERS: Final = re.compile(
    r"sk-|[sr]k_live_|[sr]k_test_|gh[pousr]_|github_pat_|xox|AIza|AKIA|ASIA|[Bb]earer"
)
_PASSWORD_WORDS: Final = ("pass", "pwd", "secret", "key", "token")
# Seven or more digits, dots, spaces, dashes or parentheses from a digit to a digit: the least
# any phone, card, SSN or IPv4 address holds. An id like tr_c68d976e has no such run.
_NUMBER_RUN: Final = re.compile(r"(?<![A-Za-z0-9_])\d[\d .()-]{5,}\d")
_GROUP_KIND: Final = {f"{kind}{number}": kind for number, (kind, _) in enumerate(_PATTERNS)}
_SHORTEST_MATCH: Final = 6  # a@b.io


def placeholder(kind: str) -> str:
    return f"<REDACTED_{kind.upper()}>"


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _has_secret_marker(text: str) -> bool:
    if _SECRET_MARKERS.search(text) is not None:
        return True
    if "=" not in text and ":" not in text:
        return False
    lowered = text.lower()
    return any(word in lowered for word in _PASSWORD_WORDS)


class Redactor:
    """Redacts one request's values; ``counts`` holds the redactions made, by kind.

    ``pii``: replace personal data and credentials in strings; ``drop_keys``: remove those keys
    from objects at any depth. Both are applied to whatever ``value`` is given.
    """

    def __init__(self, *, pii: bool, drop_keys: Collection[str] = ()) -> None:
        self._pii = pii
        self._drop = frozenset(drop_keys)
        self.counts: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        return self._pii or bool(self._drop)

    def text(self, text: str) -> str:
        if not self._pii or len(text) < _SHORTEST_MATCH:
            return text
        if _has_secret_marker(text):
            text = _SECRETS.sub(self._replace, text)
        if "@" in text:
            text = _EMAILS.sub(self._replace, text)
        if _NUMBER_RUN.search(text) is not None or "::" in text or text.count(":") >= 7:
            text = _NUMBERS.sub(self._replace, text)
        return text

    def _replace(self, match: re.Match[str]) -> str:
        group = match.lastgroup
        kind = _GROUP_KIND.get(group or "")
        if kind is None:  # the password pattern's own value group
            kind = PASSWORD
        found = match.group(0)
        if kind == CARD:
            digits = found.replace(" ", "").replace("-", "")
            if not luhn_valid(digits):
                return found  # a long number that is not a card: an id, a timestamp
        self.counts[kind] += 1
        if kind == PASSWORD:
            start = match.start("password_value") - match.start()
            return found[:start] + placeholder(kind)
        return placeholder(kind)

    def value(self, value: Any) -> Any:
        """``value`` with every string redacted and the configured keys dropped; a copy where
        anything changed (the caller's object is never modified)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items() if key not in self._drop}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def event(self, event: Any) -> Any:
        """A Segment event with its properties, traits and ``context.traits`` redacted: every
        place Raindrop items take content from (ai_data sits inside properties). Ids, names
        and timestamps are left as they are."""
        if not self.active or not isinstance(event, dict):
            return event
        redacted = dict(event)
        for key in ("properties", "traits"):
            if key in redacted:
                redacted[key] = self.value(redacted[key])
        context = redacted.get("context")
        if isinstance(context, dict) and "traits" in context:
            redacted["context"] = {**context, "traits": self.value(context["traits"])}
        return redacted
