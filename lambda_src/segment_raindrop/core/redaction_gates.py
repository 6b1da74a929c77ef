"""Cheap tests that text may hold what redaction's patterns match (segment_raindrop.core.redaction).

Every string sent passes through these, so they are built from what CPython does fast: substring
tests, and regular expressions that start with a literal (the engine then jumps from one
occurrence of it to the next instead of trying the pattern at every position). A gate may pass
text that no pattern matches (that only costs the patterns' run); it must never fail text that
a pattern matches. Each gate below says which patterns it stands for and why it covers them.
"""

from __future__ import annotations

import re
from typing import Final

# -- credentials and passwords -------------------------------------------------------------

# CREDENTIAL's prefixes, by the rarer character each holds: "-" (sk-, xox?-), "_" (gh?_,
# github_pat_, sk_live_ ...); then the AWS and Google prefixes, and "Bearer"/"bearer".
_UNDERSCORE_MARKER: Final = re.compile(r"_(?:(?<=gh[pousr]_)|(?<=github_pat_)|(?<=[sr]k_))")
_CAPITAL_A_MARKER: Final = re.compile(r"A(?:Iza|KIA|SIA)")
# PASSWORD's words as they end ("api_key" ends in "key", "access-token" in "token"), compared
# lower-cased; the pattern's case-insensitive match also takes the long s (U+017F) for "s".
_PASSWORD_WORD_ENDS: Final = ("password", "passwd", "pwd", "passphrase", "secret", "key", "token")
# Their last letters, either case: no other character matches one case-insensitively.
_WORD_LAST_LETTERS: Final = "dDeEtTyYnN"
_LONGEST_WORD: Final = 12  # "passphrase" and then some, for lower-casing that changes length


def may_hold_secret(text: str) -> bool:
    if ("-" in text and ("sk-" in text or "xox" in text)) or "earer" in text:
        return True
    if "_" in text and _UNDERSCORE_MARKER.search(text) is not None:
        return True
    if "A" in text and _CAPITAL_A_MARKER.search(text) is not None:
        return True
    return _password_key(text, "=") or _password_key(text, ":")


def _password_key(text: str, separator: str) -> bool:
    """Whether a password word, then whitespace, comes before some ``separator``."""
    at = text.find(separator)
    while at != -1:
        end = at
        while end and text[end - 1].isspace():  # the pattern's \s* (str.isspace is re's \s)
            end -= 1
        if end and text[end - 1] in _WORD_LAST_LETTERS:
            word = text[max(0, end - _LONGEST_WORD) : end].lower().replace("\u017f", "s")
            if word.endswith(_PASSWORD_WORD_ENDS):
                return True
        at = text.find(separator, at + 1)
    return False


# -- phone, card, SSN and IP numbers --------------------------------------------------------

# Each of these numbers starts at a digit not preceded by a word character (or at "(" or "+"
# just before one) and runs over digits, spaces, dots, dashes and parentheses to a digit: nine
# digits or more (SSN 9, phone 10, card 13), or a dotted quad (IPv4); or it is "+" and eight
# digits or more. The gate works on the UTF-8 bytes mapped to their part in such a run:
#   "0" an ASCII digit, "x" an ASCII word character, "+" itself, "u" a byte that may start a
#   non-ASCII digit, "." anything else (letting any of it continue a run only lets more
#   through; a non-ASCII letter is a word character to the patterns, so the same holds)
# so that a run's start is a literal ".0" or "+0" the engine can jump to. Dates (2024-08-06),
# versions (1.2.3) and ids (tr_c68d976e) pass none of it.
_SHAPES: Final = bytes(
    ord("0")
    if chr(byte).isdigit() and byte < 0x80
    else ord("x")
    if byte < 0x80 and (chr(byte).isalnum() or chr(byte) == "_")
    else ord("+")
    if chr(byte) == "+"
    else ord("u")
    if byte in b"\xd9\xdb\xdf\xe0\xe1\xea\xf1\xf2\xf3\xf4"
    else ord(".")
    for byte in range(256)
)
_NUMBER_SHAPE: Final = re.compile(rb"\.0(?:(?:\.*0){8}|[0.]*?\.0{1,3}\.0{1,3}\.0)")
_PLUS_NUMBER_SHAPE: Final = re.compile(rb"\+0(?:\.*0){7}")
# The patterns' \d is Unicode's: text holding a digit of another script takes the slower gate
# on the text itself. These are the UTF-8 forms of every non-ASCII decimal digit (Unicode
# category Nd) in the Basic Multilingual Plane, and, not to depend on one Unicode version's
# list, every character of the supplementary planes that hold digits (0x10000-0x1EFFF, the
# legacy computing digits F0 9F AF, and above 0x20000), emoji (F0 9F other) excepted.
# tests/unit/test_redaction.py checks the list against the running Python's Unicode data.
# By lead byte: each pattern starts with its byte, so that the engine jumps to it. The lead bytes
# of fullwidth forms (EF) and of emoji (F0) are common in ordinary text, so those two are not
# marked "u" above but searched for always, by their two-byte beginnings.
_NON_ASCII_DIGITS: Final = tuple(
    (bytes([int(pattern[2:4], 16)]), re.compile(pattern))  # the lead byte: rb"\\xNN..."
    for pattern in (
        rb"\xd9[\xa0-\xa9]",
        rb"\xdb[\xb0-\xb9]",
        rb"\xdf[\x80-\x89]",
        rb"\xe0(?:[\xa5\xa7\xa9\xab\xad\xaf\xb1\xb3\xb5\xb7][\xa6-\xaf]|[\xb9\xbb][\x90-\x99]"
        rb"|\xbc[\xa0-\xa9])",
        rb"\xe1(?:\x81[\x80-\x89]|\x82[\x90-\x99]|\x9f[\xa0-\xa9]|\xa0[\x90-\x99]"
        rb"|\xa5[\x86-\x8f]|\xa7[\x90-\x99]|\xaa[\x80-\x89\x90-\x99]|\xad[\x90-\x99]"
        rb"|\xae[\xb0-\xb9]|\xb1[\x80-\x89\x90-\x99])",
        rb"\xea(?:\x98[\xa0-\xa9]|\xa3[\x90-\x99]|\xa4[\x80-\x89]|\xa7[\x90-\x99\xb0-\xb9]"
        rb"|\xa9[\x90-\x99]|\xaf[\xb0-\xb9])",
        rb"\xf1",
        rb"\xf2",
        rb"\xf3",
        rb"\xf4",
    )
)
_FULLWIDTH_DIGIT: Final = re.compile(rb"\xef\xbc[\x90-\x99]")
_SUPPLEMENTARY_DIGIT: Final = re.compile(rb"\xf0(?:[\x90-\x9e]|\x9f\xaf)")


def _has_non_ascii_digit(data: bytes, shapes: bytes) -> bool:
    if _FULLWIDTH_DIGIT.search(data) is not None or _SUPPLEMENTARY_DIGIT.search(data) is not None:
        return True
    return b"u" in shapes and any(
        lead in data and pattern.search(data) is not None for lead, pattern in _NON_ASCII_DIGITS
    )


_UNICODE_NUMBER_SHAPE: Final = re.compile(
    r"[\d+](?:(?<=\+)\d(?:[ .-]?\d){7}"
    r"|(?<![\w]\d)(?<=\d)(?:(?:[ .()-]*\d){8}|[\d .()-]*?\.\d{1,3}\.\d{1,3}\.\d))"
)
# IPv6: the compressed forms hold "::"; the full form, eight groups, holds six of them between
# colons. A time of day ("08:15:00") holds neither, so a text holding one is not sent through
# the IPv6 pattern, the slowest of the number patterns (it is tried at every hex digit).
_IPV6_INNER_GROUPS: Final = re.compile(r":(?:[0-9A-Fa-f]{1,4}:){6}")


def may_hold_ipv6(text: str) -> bool:
    return ":" in text and ("::" in text or _IPV6_INNER_GROUPS.search(text) is not None)


def may_hold_number(text: str) -> bool:
    if may_hold_ipv6(text):
        return True
    data = text.encode("utf-8", "surrogatepass")
    # The leading "." stands for the start of the text, where a number may start too.
    shapes = b"." + data.translate(_SHAPES)
    if not text.isascii() and _has_non_ascii_digit(data, shapes):
        return _UNICODE_NUMBER_SHAPE.search(text) is not None
    return _NUMBER_SHAPE.search(shapes) is not None or (
        b"+0" in shapes and _PLUS_NUMBER_SHAPE.search(shapes) is not None
    )
