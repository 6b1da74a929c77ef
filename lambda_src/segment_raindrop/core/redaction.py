"""Personal data and credentials out of what is sent to Raindrop (REDACT_PII, REDACT_KEYS).

Raindrop's SDKs redact on the client; its HTTP API does not (docs/wire.md §2.5), so the forwarder
does it before anything leaves the account. Matches are replaced by typed placeholders
(``<REDACTED_EMAIL>``); configured keys are dropped from properties and traits at any depth.

Only what is sent is redacted: the queues keep the original events (they stay in the account),
and a retry or replay redacts again with the configuration in force then.

Cost: three families of patterns (secrets, e-mail, numbers), compiled once, each run only on
text that passes its gate (segment_raindrop.core.redaction_gates); most values reach none of them,
and a value's strings are gated together, once.
Redacted text is never logged: only counts by kind leave this module.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterator
from typing import Any, Final, NamedTuple

from segment_raindrop.core.redaction_gates import may_hold_ipv6, may_hold_number, may_hold_secret

# Kinds, as they appear in placeholders and in the metric's ``kind`` dimension.
EMAIL: Final = "email"
PHONE: Final = "phone"
CARD: Final = "card"
SSN: Final = "ssn"
IP: Final = "ip"
CREDENTIAL: Final = "credential"
PASSWORD: Final = "password"  # noqa: S105 - a kind's name, not a password

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
    # Bounded as RFC 5321 bounds them (64-character local part, 63-character labels): unbounded,
    # a failed match costs the square of the text's length, and anyone typing into the
    # customer's app controls that text (30 KB took 0.9 s, enough to time the webhook out).
    (
        EMAIL,
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
        r"\.[A-Za-z]{2,24}\b",
    ),
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


# Each family runs only on text that passes its gate (segment_raindrop.core.redaction_gates): a
# full scan of every string with every pattern cost more than the mapping itself.
_EMAILS: Final = _compiled({EMAIL})
_SECRETS: Final = _compiled({CREDENTIAL, PASSWORD})
_NUMBERS: Final = _compiled({SSN, CARD, IP, PHONE})
# The same without IPv6, which is tried at every hex digit and so costs the most: the form used
# when the IPv6 gate has ruled it out, on the runs of digits only. Every match of these lies in
# a run of seven or more digits, spaces, dots, dashes and parentheses from a digit, but for the
# "+" or "(" just before it, and their look-aheads read two characters past a match.
_DIGIT_NUMBERS: Final = re.compile(
    "|".join(
        f"(?P<{kind}{number}>{pattern})"
        for number, (kind, pattern) in enumerate(_PATTERNS)
        if kind in {SSN, CARD, IP, PHONE} and not pattern.startswith("(?<![\\w:])")
    )
)
_DIGIT_RUN: Final = re.compile(r"\d[\d .()-]{6,}")
_BEFORE_RUN, _AFTER_RUN = 1, 2
_GROUP_KIND: Final = {f"{kind}{number}": kind for number, (kind, _) in enumerate(_PATTERNS)}
_SHORTEST_MATCH: Final = 6  # a@b.io
# How far an address reaches from its "@" (the e-mail pattern's bounds: 64 characters of local
# part before it; after it, nine labels of 63 and their dots, a 24-letter top-level domain and
# the character its closing \b reads), and the mean distance between "@"s below which a text is
# searched whole.
_LOCAL_PART: Final = 64
_AFTER_AT: Final = 9 * 64 + 24 + 2
_AT_SPACING: Final = 256
# Joins a value's strings for the gates: not a word character, a space, a digit or any character a
# pattern consumes, so joining neither makes nor breaks a gate's match.
_SEPARATOR: Final = "\x00"
# Strings this long, once found clean, are remembered for the rest of the request: chat apps
# send the system prompt and the conversation so far with every turn.
_REMEMBERED: Final = 64


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


def _collect(
    value: dict[str, Any] | list[Any],
    strings: list[str],
    long: list[str],
    drop: frozenset[str],
    clean: set[str],
) -> bool:
    """Appends the strings inside ``value`` to ``strings``, and the long ones also to ``long``,
    but for long ones already found clean; True (and stops) when an object in it holds a key
    to drop."""
    if type(value) is dict:
        if drop and not drop.isdisjoint(value):
            return True
        items: Any = value.values()
    else:
        items = value
    for item in items:
        kind = type(item)
        if kind is str:
            if len(item) < _REMEMBERED:
                strings.append(item)
            elif item not in clean:
                strings.append(item)
                long.append(item)
        elif (kind is dict or kind is list) and _collect(item, strings, long, drop, clean):
            return True
    return False


def _addresses(text: str) -> Iterator[re.Match[str]]:
    """What ``_EMAILS.finditer`` would find, searching only around each "@": the pattern starts
    with a character class, so a search tries it at every position of the text (on a long
    prompt with one address, 30 times the work)."""
    done = 0
    at = text.find("@")
    while at != -1:
        if at >= done:
            # No address holds an earlier "@", so the leftmost one from ``done`` holding this
            # "@" starts in its local part's reach, and ends in its domain's.
            match = _EMAILS.search(text, max(done, at - _LOCAL_PART), at + _AFTER_AT)
            if match is not None and match.start() <= at:
                yield match
                done = match.end()
        at = text.find("@", at + 1)


def _numbers_in_digit_runs(text: str) -> Iterator[re.Match[str]]:
    """What ``_DIGIT_NUMBERS.finditer`` would find, searching only around the runs of digits."""
    done = 0
    for run in _DIGIT_RUN.finditer(text):
        start = max(done, run.start() - _BEFORE_RUN)
        for match in _DIGIT_NUMBERS.finditer(text, start, run.end() + _AFTER_RUN):
            yield match
            done = match.end()


class _Families(NamedTuple):
    """Which families of patterns may match somewhere in a value (a tuple: built per value, so
    it must be cheap to build)."""

    secrets: bool
    emails: bool
    numbers: bool

    @classmethod
    def of(cls, text: str) -> _Families:
        return cls(may_hold_secret(text), "@" in text, may_hold_number(text))

    @property
    def any(self) -> bool:
        return self.secrets or self.emails or self.numbers


_ALL_FAMILIES: Final = _Families(secrets=True, emails=True, numbers=True)
_NO_FAMILIES: Final = _Families(secrets=False, emails=False, numbers=False)


class Redactor:
    """Redacts one request's values; ``counts`` holds the redactions made, by kind.

    ``pii``: replace personal data and credentials in strings; ``drop_keys``: remove those keys
    from objects at any depth. Both are applied to whatever ``value`` is given.
    """

    def __init__(self, *, pii: bool, drop_keys: Collection[str] = ()) -> None:
        self._pii = pii
        self._drop = frozenset(drop_keys)
        self.counts: Counter[str] = Counter()
        self._clean: set[str] = set()

    @property
    def active(self) -> bool:
        return self._pii or bool(self._drop)

    def text(self, text: str, families: _Families = _ALL_FAMILIES) -> str:
        """``text`` with the matches of ``families`` (all by default) replaced."""
        if not self._pii or len(text) < _SHORTEST_MATCH:
            return text
        if families.secrets and may_hold_secret(text):
            text = _SECRETS.sub(self._replace, text)
        if families.emails and "@" in text:
            text = self._emails(text)
        if families.numbers and may_hold_number(text):
            text = self._numbers(text)
        return text

    def _emails(self, text: str) -> str:
        if text.count("@") * _AT_SPACING > len(text):
            # Dense "@"s: the windows would overlap, and the whole text is cheaper.
            return _EMAILS.sub(self._replace, text)
        return self._spliced(text, _addresses(text))

    def _numbers(self, text: str) -> str:
        if may_hold_ipv6(text):
            return _NUMBERS.sub(self._replace, text)
        return self._spliced(text, _numbers_in_digit_runs(text))

    def _spliced(self, text: str, matches: Iterator[re.Match[str]]) -> str:
        """``text`` with ``matches`` (in order, not overlapping) replaced, as ``sub`` would."""
        pieces: list[str] = []
        done = 0
        for match in matches:
            pieces += (text[done : match.start()], self._replace(match))
            done = match.end()
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

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
        """``value`` with every string redacted and the configured keys dropped: ``value``
        itself when nothing is to change, else a copy (the caller's object is never modified).

        Most values hold nothing to redact, so their strings are first joined and gated once,
        instead of each string paying for a call and its own gates.
        """
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, dict | list) or not self.active:
            return value
        strings: list[str] = []
        long: list[str] = []
        if _collect(value, strings, long, self._drop, self._clean):
            # A key to drop stopped the collection short: every string is still to be checked.
            return self._copy(value, _ALL_FAMILIES if self._pii else _NO_FAMILIES)
        if not self._pii:
            return value
        families = _Families.of(_SEPARATOR.join(strings))
        if not families.any:
            self._clean.update(long)
            return value
        return self._copy(value, families)

    def _copy(self, value: Any, families: _Families) -> Any:
        if isinstance(value, str):
            return self.text(value, families)
        if isinstance(value, dict):
            drop = self._drop
            return {
                key: self._copy(item, families) for key, item in value.items() if key not in drop
            }
        if isinstance(value, list):
            return [self._copy(item, families) for item in value]
        return value

    def event(self, event: Any) -> Any:
        """A Segment event with its properties, traits and ``context.traits`` redacted (ids,
        names and timestamps are left as they are). The mapper redacts only what it sends, as
        it sends it; this is the whole-event form, for callers that want every such place."""
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
