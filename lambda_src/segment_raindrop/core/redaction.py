"""Personal data and credentials out of what is sent to Raindrop (REDACT_PII, REDACT_KEYS).

Raindrop's SDKs redact on the client; its HTTP API does not (docs/wire.md §2.5), so the forwarder
does it before anything leaves the account. Matches are replaced by typed placeholders
(``<REDACTED_EMAIL>``); configured keys are dropped from properties and traits at any depth.

Only what is sent is redacted: the queues keep the original events (they stay in the account),
and a retry or replay redacts again with the configuration in force then.

Cost: families of patterns (segment_raindrop.core.redaction_patterns: providers' tokens, keyed
and prose secrets, e-mail, numbers), compiled once, each run only on text that passes its gate
(segment_raindrop.core.redaction_gates); most values reach none of them, and a value's strings
are gated together, once.
Redacted text is never logged: only counts by kind leave this module.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from functools import cache
from typing import Any, Final, NamedTuple

from segment_raindrop.core.redaction_gates import (
    may_hold_ipv6,
    may_hold_keyed_secret,
    may_hold_number,
    may_hold_prose_secret,
    may_hold_provider_token,
    may_hold_secret,
)
from segment_raindrop.core.redaction_patterns import (
    CARD,
    CREDENTIAL,
    EMAIL,
    GROUPS,
    IP,
    PASSWORD,
    PHONE,
    SSN,
    accepted,
    compiled,
    luhn_valid,
)

__all__ = ["CARD", "CREDENTIAL", "EMAIL", "IP", "PASSWORD", "PHONE", "SSN", "Redactor"]
__all__ += ["luhn_valid", "placeholder"]


# Each family runs only on text that passes its gate (segment_raindrop.core.redaction_gates): a
# full scan of every string with every pattern cost more than the mapping itself.
class _Patterns(NamedTuple):
    providers: re.Pattern[str]
    keyed: re.Pattern[str]
    prose: re.Pattern[str]
    emails: re.Pattern[str]
    numbers: re.Pattern[str]
    # The same without IPv6, which is tried at every hex digit and so costs the most: the form
    # used when the IPv6 gate has ruled it out, on the runs of digits only. Every match of these
    # lies in a run of seven or more digits, spaces, dots, dashes (en dashes too), slashes and
    # parentheses from a digit, but for the "+" or "(" just before it, and their look-aheads
    # read two characters past a match.
    digit_numbers: re.Pattern[str]

    @property
    def secret_families(self) -> tuple[tuple[re.Pattern[str], Callable[[str], bool]], ...]:
        return (
            (self.providers, may_hold_provider_token),
            (self.keyed, may_hold_keyed_secret),
            (self.prose, may_hold_prose_secret),
        )


@cache
def patterns() -> _Patterns:
    """The families, compiled on first use: about 10 ms that every cold start would pay in its
    import, while redaction is off by default."""
    return _Patterns(
        providers=compiled("providers"),
        keyed=compiled("keyed"),
        prose=compiled("prose"),
        emails=compiled("emails"),
        numbers=compiled("numbers"),
        digit_numbers=compiled("numbers", ipv6=False),
    )


_DIGIT_RUN: Final = re.compile(r"\d[\d .()/\u00a0\u202f\u2013-]{6,}")
_BEFORE_RUN, _AFTER_RUN = 1, 2
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
    """What ``patterns().emails.finditer`` would find, searching only around each "@": the
    pattern starts with a character class, so a search tries it at every position of the text
    (on a long prompt with one address, 30 times the work)."""
    done = 0
    emails = patterns().emails
    at = text.find("@")
    while at != -1:
        if at >= done:
            # No address holds an earlier "@", so the leftmost one from ``done`` holding this
            # "@" starts in its local part's reach, and ends in its domain's.
            match = emails.search(text, max(done, at - _LOCAL_PART), at + _AFTER_AT)
            if match is not None and match.start() <= at:
                yield match
                done = match.end()
        at = text.find("@", at + 1)


def _numbers_in_digit_runs(text: str) -> Iterator[re.Match[str]]:
    """What ``patterns().digit_numbers.finditer`` would find, searching only around the runs of
    digits."""
    done = 0
    numbers = patterns().digit_numbers
    for run in _DIGIT_RUN.finditer(text):
        start = max(done, run.start() - _BEFORE_RUN)
        for match in numbers.finditer(text, start, run.end() + _AFTER_RUN):
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
            text = self._secrets(text)
        if families.emails and "@" in text:
            text = self._emails(text)
        if families.numbers and may_hold_number(text):
            text = self._numbers(text)
        return text

    def _secrets(self, text: str) -> str:
        for family, may_hold in patterns().secret_families:
            if may_hold(text):
                text = family.sub(self._replace, text)
        return text

    def _emails(self, text: str) -> str:
        if text.count("@") * _AT_SPACING > len(text):
            # Dense "@"s: the windows would overlap, and the whole text is cheaper.
            return patterns().emails.sub(self._replace, text)
        return self._spliced(text, _addresses(text))

    def _numbers(self, text: str) -> str:
        if may_hold_ipv6(text):
            return patterns().numbers.sub(self._replace, text)
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
        name = match.lastgroup or ""
        group = GROUPS[name]
        if not accepted(group, name, match):
            return match.group(0)  # the shape without the substance: a date, password: str
        self.counts[group.kind] += 1
        if group.value is None:
            return placeholder(group.kind)
        found, start = match.group(0), match.start()
        value_start, value_end = match.span(group.value)
        return found[: value_start - start] + placeholder(group.kind) + found[value_end - start :]

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
