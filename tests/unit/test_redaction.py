"""Redaction (pure code): what must never survive, and ordinary text that must be left alone."""

from __future__ import annotations

import random
import string
import sys
import time
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from segment_raindrop.core import redaction, redaction_gates
from segment_raindrop.core.redaction import Redactor, luhn_valid, placeholder

# Text around the secrets: letters, spaces and punctuation that cannot extend a match.
_FILLER = st.text(alphabet=string.ascii_letters + " ,;!?()", max_size=40)
_LOCAL = st.text(alphabet=string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=20)
_LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
_TLD = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6)


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(_LOCAL).strip("._+-") or "a"
    labels = draw(st.lists(_LABEL, min_size=1, max_size=3))
    return f"{local}@{'.'.join(labels)}.{draw(_TLD)}"


def _luhn_complete(partial: str) -> str:
    for check in "0123456789":
        if luhn_valid(partial + check):
            return partial + check
    raise AssertionError("unreachable")


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, length = draw(
        st.sampled_from(
            [
                ("4", 16),
                ("4", 13),
                ("51", 16),
                ("55", 16),
                ("34", 15),
                ("37", 15),
                ("6011", 16),
                ("2221", 16),
                ("4", 19),
            ]
        )
    )
    body = draw(
        st.text(
            alphabet=string.digits,
            min_size=length - len(prefix) - 1,
            max_size=length - len(prefix) - 1,
        )
    )
    digits = _luhn_complete(prefix + body)
    separator = draw(st.sampled_from(["", " ", "-"]))
    if separator:
        return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    return digits


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda n: n != 666))
    group = draw(st.integers(1, 99))
    serial = draw(st.integers(1, 9999))
    separator = draw(st.sampled_from(["-", " "]))
    return f"{area:03d}{separator}{group:02d}{separator}{serial:04d}"


def _redact(text: str) -> tuple[str, Redactor]:
    redactor = Redactor(pii=True)
    return redactor.text(text), redactor


@settings(max_examples=300)
@given(before=_FILLER, secret=st.one_of(emails(), cards(), ssns()), after=_FILLER)
def test_emails_cards_and_ssns_in_random_text_never_survive(
    before: str, secret: str, after: str
) -> None:
    redacted, redactor = _redact(f"{before} {secret} {after}")
    assert secret not in redacted
    assert sum(redactor.counts.values()) >= 1


@settings(max_examples=200)
@given(secret=cards())
def test_a_card_is_typed_as_a_card(secret: str) -> None:
    redacted, redactor = _redact(f"paid with {secret}.")
    assert redacted == f"paid with {placeholder('card')}."
    assert redactor.counts == {"card": 1}


# The false-positive cases tried: none of these may change.
ORDINARY = [
    "order #1234567890 shipped",
    "order 4111-2222-3333",
    "invoice INV-2025-000123",
    "2025-03-14T09:26:53.589Z",
    "2025-03-14 09:26:53",
    "14/03/2025 and 03-14-2025",
    "version 1.2.3, v1.2.3.4 and 10.0.19041.1234",
    "release 2.31.0-rc.1",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "price $1,234.56 or 1.234,56 EUR",
    "epoch 1700000000 and 1700000000000 ms",
    "latency_ms=532 tokens=1024",
    "gpt-4o-mini-2024-07-18 and claude-3-5-sonnet-20241022",
    "call me at noon; room 101",
    "user@ without domain, @mention, a@b",
    "the password is in the vault",
    "task-123456789 sku 987654321",
    "std::vector<int> and a::b",
    "Rust's fe80::1-like paths a::b::c",
    "12:30:45 and 1:2:3",
    "ISBN 978-3-16-148410-0",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    redacted, redactor = _redact(text)
    assert redacted == text
    assert not redactor.counts


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("sk-" + "a1B2" * 12, "credential"),
        ("sk-proj-" + "x9" * 20, "credential"),
        ("sk-ant-api03-" + "Zz_9" * 10, "credential"),
        ("ghp_" + "a" * 36, "credential"),
        ("gho_" + "b" * 36, "credential"),
        ("github_pat_" + "11ABC" * 6, "credential"),
        ("xoxb-1234567890-abcdefghij", "credential"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "credential"),
        ("rk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "credential"),
        ("AIza" + "SyA-" * 8 + "abc", "credential"),
        ("AKIAIOSFODNN7EXAMPLE", "credential"),
        ("ASIAIOSFODNN7EXAMPLE", "credential"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "credential"),
        ("192.168.1.20", "ip"),
        ("2001:db8::8a2e:370:7334", "ip"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ip"),
        ("(555) 123-4567", "phone"),
        ("555-123-4567", "phone"),
        ("+44 20 7946 0958", "phone"),
    ],
)
def test_credentials_ips_and_phones_are_replaced(text: str, kind: str) -> None:
    redacted, redactor = _redact(f"see {text} here")
    assert redacted == f"see {placeholder(kind)} here"
    assert redactor.counts == {kind: 1}


def test_passwords_keep_their_key_and_lose_their_value() -> None:
    redacted, redactor = _redact("login password=hunter2&user=bob api_key: s3cr3t")
    assert redacted == "login password=<REDACTED_PASSWORD>&user=bob api_key: <REDACTED_PASSWORD>"
    assert redactor.counts == {"password": 2}


def test_a_number_that_fails_the_luhn_check_is_not_a_card() -> None:
    assert _redact("4111111111111112")[0] == "4111111111111112"


def test_redacting_json_text_keeps_it_json() -> None:
    redacted, _ = _redact('{"input":"password=abc\\"x","to":"a@b.io"}')
    assert redacted == '{"input":"password=<REDACTED_PASSWORD>\\"x","to":"<REDACTED_EMAIL>"}'


def test_keys_are_dropped_at_any_depth_and_the_original_is_untouched() -> None:
    redactor = Redactor(pii=False, drop_keys={"email", "ssn"})
    event = {
        "type": "track",
        "userId": "u1",
        "properties": {"email": "a@b.io", "nested": {"ssn": "1", "keep": [{"email": "x"}]}},
        "context": {"traits": {"email": "a@b.io", "plan": "pro"}, "ip": "1.2.3.4"},
    }
    redacted = redactor.event(event)
    assert redacted["properties"] == {"nested": {"keep": [{}]}}
    assert redacted["context"] == {"traits": {"plan": "pro"}, "ip": "1.2.3.4"}
    assert event["properties"]["email"] == "a@b.io"  # a copy was redacted
    assert not redactor.counts  # pii off: strings are left as they are


def test_off_by_default_changes_nothing() -> None:
    event = {"properties": {"to": "a@b.io"}}
    assert Redactor(pii=False).event(event) is event


def test_random_prose_is_left_alone() -> None:
    rng = random.Random(7)
    words = ["the", "model", "answered", "quickly", "about", "weather", "and", "tea", "2025"]
    text = " ".join(rng.choice(words) for _ in range(500))
    redacted, redactor = _redact(text)
    assert redacted == text
    assert not redactor.counts


# -- the gates: they save time, never a match ------------------------------------------------


def _reference(text: str) -> tuple[str, Counter[str]]:
    """Every family's patterns run over the whole text, gates or no gates."""
    redactor = Redactor(pii=True)
    compiled = redaction.patterns()
    families = (compiled.providers, compiled.keyed, compiled.prose)
    for family in (*families, compiled.emails, compiled.numbers):
        text = family.sub(redactor._replace, text)
    return text, redactor.counts


# Characters the patterns and gates care about, letters that start markers, and some that are
# word characters or digits to \w and \d but not ASCII.
_PIECES = [
    *"0123456789 .-()+:@=_,;\t\nabcdefxyzAKISBkgphrtoeswyn",
    "sk-",
    "ghp_",
    "AKIA",
    "Bearer ",
    "password",
    "token",
    "::",
    "\u017f",
    "é",
    "٣",
    "\uff15",  # fullwidth 5
    "555-",
    "4111 ",
    "2001:db8:0:0:8:800:200c:417a",  # IPv6's full form, which holds no "::"
    "08:15:00",  # a time of day: colons and hex digits, no address
    # The secrets' key words, prose words and markers, and what may come between a key and
    # its value; numbers' other separators and national forms.
    "Passwort ",
    "password is ",
    "API key ",
    "token ",
    "DB_PASSWORD",
    "secret",
    '"',
    "'",
    "\\",
    ">",
    "\uff1a",
    "\u00a0",
    "\u202f",
    "<password>",
    "</",
    "://u:",
    "-u ",
    "mysql -p",
    "eyJ",
    "hf_",
    "12345678:AA",
    "Authorization",
    "x9",
    "(0)",
    "07700 ",
    "ñ",
    "ь",
    "は",
    # Words between a password's word and its value, CJK labels, flags, more vendors' prefixes,
    # labels that make a bare run of digits a phone number or an SSN, slashes and en dashes.
    "Senha do ",
    "パスワード",
    "密码是",
    "sshpass -p ",
    "--password ",
    "dop_v1_",
    "key-",
    "AccountKey=",
    "phone ",
    "SSN ",
    "/",
    "\u2013",
    "xxxxxx",
]
_TRICKY = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@settings(max_examples=400)
@given(
    text=st.one_of(
        _TRICKY,
        st.builds(
            lambda a, s, b: f"{a}{s}{b}", _TRICKY, st.one_of(emails(), cards(), ssns()), _TRICKY
        ),
    )
)
def test_text_redacts_exactly_what_the_patterns_match(text: str) -> None:
    redactor = Redactor(pii=True)
    assert (redactor.text(text), redactor.counts) == _reference(text)


@settings(max_examples=200)
@given(values=st.lists(_TRICKY, max_size=6))
def test_a_values_strings_are_gated_together_without_missing_any(values: list[str]) -> None:
    redactor = Redactor(pii=True)
    redacted = redactor.value({"list": values, "nested": {"last": "".join(values)}})
    expected = {
        "list": [_reference(v)[0] for v in values],
        "nested": {"last": _reference("".join(values))[0]},
    }
    assert redacted == expected


# Addresses up to the e-mail pattern's bounds (64 before the "@", nine labels of 63 and a
# 24-letter domain after it), among runs, dots and "@"s close together and far apart: the
# windowed search must find what a whole-text search finds.
_LONG_LOCAL = st.text("abcXYZ09._%+-", min_size=1, max_size=66)
_LONG_LABEL = st.text("abz09-", min_size=1, max_size=64)
_ADDRESS = st.builds(
    lambda local, labels, top: f"{local}@{'.'.join(labels)}.{top}",
    _LONG_LOCAL,
    st.lists(_LONG_LABEL, min_size=1, max_size=10),
    st.text("abcxyz", min_size=2, max_size=25),
)
_AROUND_ADDRESSES = st.sampled_from(
    ["@", ".", " ", "a", "é", "-", "_", "io", "a" * 63, "c." * 40, "d" * 300]
)


_LONGEST_ADDRESS = "x" * 64 + "@" + ".".join(["a" * 63] * 9) + "." + "b" * 24


@settings(max_examples=400)
@given(pieces=st.lists(st.one_of(_ADDRESS, _AROUND_ADDRESSES), max_size=12))
@example(pieces=[_LONGEST_ADDRESS])
@example(pieces=[_LONGEST_ADDRESS, "c"])  # no address: the last label runs on past 24 letters
def test_emails_are_searched_around_each_at_as_the_whole_text_would_be(pieces: list[str]) -> None:
    text = "".join(pieces)
    windowed, whole = Redactor(pii=True), Redactor(pii=True)
    assert windowed._emails(text) == redaction.patterns().emails.sub(whole._replace, text)
    assert windowed.counts == whole.counts


def test_every_non_ascii_digit_takes_the_unicode_gate() -> None:
    """The gate's byte table against this Python's Unicode data (category Nd)."""
    digits = [chr(code) for code in range(0x80, sys.maxunicode + 1) if chr(code).isdecimal()]
    assert digits
    for digit in digits:
        data = digit.encode()
        shapes = data.translate(redaction_gates._SHAPES)
        assert redaction_gates._has_non_ascii_digit(data, shapes), hex(ord(digit))


def test_clean_long_strings_are_remembered_and_still_clean() -> None:
    redactor = Redactor(pii=True)
    system = "You are a helpful assistant. " * 4
    first = {"input": [{"role": "system", "content": system}]}
    assert redactor.value(first) is first  # nothing to change: the same object
    second = {"input": [{"role": "system", "content": system}, {"content": "mail a@b.io"}]}
    assert redactor.value(second)["input"][1] == {"content": "mail <REDACTED_EMAIL>"}


@pytest.mark.parametrize(
    "hostile",
    [
        "x@" + "a-" * 32_000,
        "a." * 32_000 + "@b",
        "-." * 32_000 + "@x.io",
        "@" + "a" * 64_000,
        "@" * 64_000,
        ("a" * 60 + "@") * 1_000,
        # The secrets' patterns: PEM blocks with no end, keys and values, URLs, commands.
        "-----BEGIN PRIVATE KEY-----" * 2_400,
        "-----BEGIN PRIVATE KEY-----\n" + "a" * 64_000,
        ("password=" + "x" * 5_000 + " ") * 12,
        "://a:" * 13_000,
        "http://" + "a" * 60 + ":" + "b" * 64_000,
        "mysql " * 10_000,
        "a:" * 32_000,
        '"password": "' * 4_000,
        "0" + "1 " * 32_000,
        # Words between "password" and its value, CJK labels, command-line flags, labelled runs.
        "password " + "ab " * 21_000,
        "パスワードは" * 10_000,
        "sshpass -p " * 6_000,
        "--password " * 6_000,
        "phone 1234567890 " * 4_000,
        "030/" * 16_000,
    ],
)
def test_text_an_end_user_controls_cannot_make_redaction_quadratic(hostile: str) -> None:
    # Unbounded, the e-mail pattern took 4-6 s on 64 KB of such text: enough for a handful of
    # events to time the webhook out on every resend. Bounded, it is linear (milliseconds).
    started = time.process_time()
    Redactor(pii=True).text(hostile)
    assert time.process_time() - started < 1.0


def test_times_of_day_do_not_send_a_text_through_the_ipv6_pattern() -> None:
    # One time stamp in a value used to send the whole value's text through the IPv6
    # alternative, which is tried at every hex digit.
    assert not redaction_gates.may_hold_ipv6("at 08:15:00 and 2024-11-02T12:30:45.000Z")
    assert redaction_gates.may_hold_ipv6("2001:db8:0:0:8:800:200c:417a")
    assert redaction_gates.may_hold_ipv6("fe80::1")
