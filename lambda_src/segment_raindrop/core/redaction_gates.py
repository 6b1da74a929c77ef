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
# One gate for the three families of secrets (redaction_patterns.PROVIDER_PATTERNS,
# KEYED_PATTERNS and PROSE_PATTERNS): text that passes it goes through all three.
#
# First a regular expression that starts with a class of characters rare in prose, one of
# which every provider token, marker and prose word holds (the engine scans for the class, and
# only there tries the look-behinds): sk- and the like by their "-", gh?_ and the like by "_",
# eyJ by "J", "://" and a Telegram token's ":AA" by ":", AIza/AKIA/ASIA and a Twilio AC... by
# "A", SG. and ya29. by ".", a Twilio SK... by "S", Bearer and Basic by "B" or "b", curl's -u
# by "-", mysql by "q"; the prose words by "p" or "P" (password, passwort, pw, pwd, mot de
# passe), "w" or "W" (kennwort, wachtwoord), "k" or "K" (key, token), "ñ" (contraseña) and
# "ь" (пароль), each then followed by the space or tab the prose patterns require.
# Every alternative starts with a literal: the engine then scans for their first characters
# only, and at each tries only the alternatives starting with the character found there.
_PROVIDER_MARKS: Final = (
    r"-(?:(?<=sk-)|(?<=xapp-)|(?<=glpat-)|(?<=GOCSPX-)|(?<=xox[abposre]-)|----BEGIN"
    r"|(?<=HRKU-)|(?<=NRAK-)|(?<=PMAK-)|(?<=key-)|(?<=SECRET-KEY-)|(?<=pypi-)|(?<=sq0atp-)"
    r"|(?<=sq0csp-))"
    r"|_(?:(?<=gh[pousr]_)|(?<=github_pat_)|(?<=k_live_)|(?<=k_test_)|(?<=whsec_)|(?<=hf_)"
    r"|(?<=npm_)|(?<=do[opr]_)|(?<=ntn_)|(?<=secret_)|(?<=gsk_)|(?<=r8_)|(?<=lin_api_)"
    r"|(?<=pcsk_)|(?<=sntrys_)|(?<=sntryu_)|(?<=glsa_)|(?<=glc_)|(?<=figd_)|(?<=fo1_)"
    r"|(?<=shp[a-z]{2}_))"
    r"|J(?<=eyJ)|:(?://|AA)|A(?:Iza|KIA|SIA|C[0-9a-f]{32}|TATT3|AA(?<=EAAA))"
    r"|\.(?:(?<=SG\.)|(?<=ya29\.)|(?<=hv[sb]\.)|(?<=dp\.))"
    r"|SK[0-9a-f]{32}|Bearer|bearer|Basic|basic|p(?<=dap)i"
)
_KEYED_MARKS: Final = r"-(?:u[ \t]|-user|-password[ \t]|p(?<=[ \t]-p))|q(?<=mysq)l|://"
_PROSE_MARKS: Final = (
    r"p(?:ass(?:word|wort)|[Ww][Dd]?|(?<=mot de p)asse)[ \t]"
    r"|P(?:ass(?:word|wort)|ASS(?:WORD|WORT)|[Ww][Dd]?)[ \t]"
    r"|w(?:(?<=[Kk]ennw)ort|achtwoord)[ \t]|Wachtwoord[ \t]"
    r"|k(?:ey|EY|(?<=[Tt]ok)en)[ \t]|K(?:ey|EY|(?<=TOK)EN)[ \t]"
    r"|ñ(?<=ontraseñ)a[ \t]|ь(?<=[Пп]ароль)[ \t]|a(?<=[Ss]enha)[ \t]"
    r"|ド(?<=パスワード)|码(?<=密码)|碼(?<=密碼)|호(?<=비밀번호)|号(?<=暗証番号)"
)
_ANCHORED: Final = re.compile(f"{_PROVIDER_MARKS}|{_KEYED_MARKS}|{_PROSE_MARKS}")
_PROVIDER_MARK: Final = re.compile(_PROVIDER_MARKS)
_KEYED_MARK: Final = re.compile(_KEYED_MARKS)
_PROSE_MARK: Final = re.compile(_PROSE_MARKS)
# Then the key-value patterns' key words (redaction_patterns._KEY_NAME), as they end, lower-
# cased (the patterns' words are ASCII-case-insensitive or list their cases: lower-casing maps
# every ASCII letter they match onto these, and more, which only lets more through), looked for
# before each separator ("=", ":", the fullwidth colon, or ">" closing an XML tag), past the
# spaces and the quote (after backslashes) the patterns allow between them.
_KEY_WORD_ENDS: Final = (
    "password", "passwd", "passphrase", "passcode", "pass", "pwd", "pw", "passwort",
    "kennwort", "mot de passe", "mdp", "contraseña", "senha", "wachtwoord", "hasło", "lösenord",
    "salasana", "пароль", "パスワード", "密码", "密碼", "비밀번호", "暗証番号", "secret", "token",
    "key", "credential", "credentials", "トークン", "キー", "令牌", "密钥", "토큰", "authorization",
    "schlüssel", "sig", "كلمة المرور", "كلمة السر",
)  # fmt: skip
# Their last characters, either case: no other character matches one case-insensitively but
# these (and the Kelvin sign, which lower-cases to "k", not a last letter).
_LAST_CHARACTERS: Final = frozenset(
    "".join(word[-1] + word[-1].upper() for word in _KEY_WORD_ENDS) + "\u017f"
)
_LONGEST_WORD: Final = 16  # "authorization" and then some, for lower-casing that changes length
_KEY_GAP: Final = " \t\u00a0\u202f"


# A separator with a word's last character just before it (or a quote, or a space, after
# which the word is looked for further back): the places _key_before examines.
_SEPARATOR_AFTER_WORD: Final = re.compile(
    "[=:\uff1a>](?:(?<=[" + "".join(sorted(_LAST_CHARACTERS)) + "\"' \t\u00a0\u202f][=:\uff1a>]))"
)


def may_hold_secret(text: str) -> bool:
    """Whether any of the three families of secrets may match in ``text``."""
    return _ANCHORED.search(text) is not None or _has_key(text)


# Each family's own gate, asked of the few texts that pass may_hold_secret (each just before its
# family runs, as an earlier family's placeholders change the text), so that a text runs only
# the families it needs.
def may_hold_provider_token(text: str) -> bool:
    return _PROVIDER_MARK.search(text) is not None


def may_hold_keyed_secret(text: str) -> bool:
    return _KEYED_MARK.search(text) is not None or _has_key(text)


def may_hold_prose_secret(text: str) -> bool:
    return _PROSE_MARK.search(text) is not None


def _has_key(text: str) -> bool:
    separator = _SEPARATOR_AFTER_WORD.search(text)
    while separator is not None:
        if _key_before(text, separator.start()):
            return True
        separator = _SEPARATOR_AFTER_WORD.search(text, separator.end())
    return False


def _key_before(text: str, at: int) -> bool:
    """Whether a key word, then an optional quote and spaces, comes before ``at``."""
    end = at
    while end and text[end - 1] in _KEY_GAP:
        end -= 1
    if end and text[end - 1] in "\"'":
        end -= 1
        while end and text[end - 1] == "\\":
            end -= 1
    window = text[max(0, end - _LONGEST_WORD) : end].lower()
    return window.endswith(_KEY_WORD_ENDS)


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
    r"[\d+](?:(?<=\+)\d(?:\D{0,3}\d){7}"
    r"|(?<![A-Za-z0-9_]\d)(?<=\d)(?:(?:\D{0,4}\d){8}|\d{0,2}\.\d{1,3}\.\d{1,3}\.\d))"
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
