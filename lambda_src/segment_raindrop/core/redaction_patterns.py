"""What redaction looks for (segment_raindrop.core.redaction): the patterns, by kind, and the
second look each match gets before it is replaced.

A pattern finds the shape (sixteen digits, ``password:`` and a value); :func:`accepted` then
rules out what has the shape but is not personal data: a number that fails the Luhn check, a
date read as a phone number, ``0.0.0.0``, code that names a secret without holding one
(``password: str``, ``token = get_token()``, ``${{ secrets.GITHUB_TOKEN }}``). The corpus in
tests/fixtures/redaction_corpus measures both halves (bench/redaction_quality.py).

Text written around a value in Chinese, Japanese or Korean has no space before it, and those
scripts are word characters to ``\\b`` and ``\\w``: every boundary here is written with ASCII
classes, so ``電話番号は090-1234-5678です`` still holds a number.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

# Kinds, as they appear in placeholders and in the metric's ``kind`` dimension.
EMAIL: Final = "email"
PHONE: Final = "phone"
CARD: Final = "card"
SSN: Final = "ssn"
IP: Final = "ip"
CREDENTIAL: Final = "credential"
PASSWORD: Final = "password"  # noqa: S105 - a kind's name, not a password

# Where a pattern's secret part is only a value ("password: <value>"), the value's group is
# named VALUE and an opening quote's Q; each pattern gets its own names when compiled.
# A value runs to its closing quote (over escapes such as \n, not over an escaped quote), or,
# unquoted, to a space, a comma, a semicolon or a quote; an "&" ends it only before the next
# query parameter (password=x&user=bob). Bounded, as every repetition here.
_QUOTED_VALUE = (
    r"(?P<Q>\\{0,3}[\"'`])?(?P<VALUE>(?(Q)(?:[^\"'`\\\n]|\\[^\"'`\\]){1,4096}"
    r"|(?:[^\s,;&\"'<>\\`]|&(?![A-Za-z_][A-Za-z0-9_.-]*=)){1,4096}))"
)
_PROSE_VALUE = r"(?P<Q>[\"'“«„`]\s?)?(?P<VALUE>(?(Q)[^\"'”»“`\n]{4,128}|[^\s,;\"'<>\\`]{4,4096}))"
_SEPARATOR = r"(?:\\{0,3}[\"'])?[ \t\u00a0\u202f]*(?:=>|:=|[=:\uff1a])[ \t\u00a0\u202f]*"

# Key names whose value is a password or a secret, as they end (DB_PASSWORD, client_secret,
# refreshToken, x-api-key), in English (ASCII-case-insensitive) and other languages.
_LOGIN_WORDS = (
    r"password|passwd|passphrase|passcode|(?<![a-z])pass|(?<![a-z])pwd|(?<![a-z])pw"
    r"|passwort|kennwort|mot de passe|(?<![a-z])mdp|contraseña|senha|wachtwoord|hasło|lösenord"
    r"|salasana|[Пп]ароль|ПАРОЛЬ|パスワード|密码|密碼|비밀번호|暗証番号|كلمة المرور|كلمة السر"
)
_API_WORDS = (
    r"secret|token|api[_-]?key|app[_-]?key|application[_-]?key|access[_-]?key|private[_-]?key"
    r"|secret[_-]?key|signing[_-]?key|client[_-]?key|license[_-]?key|master[_-]?key"
    r"|encryption[_-]?key|auth[_-]?key|account[_-]?key|shared[_-]?access[_-]?key|schlüssel"
    r"|(?<=[?&])sig|credentials?|トークン|APIキー|令牌|密钥|토큰"
)
_KEY_NAME = rf"(?ai:{_LOGIN_WORDS}|{_API_WORDS})"

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_HEX = r"[0-9A-Fa-f]{1,4}"
_LOCAL = r"A-Za-z0-9_%+\-\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
_LABEL = r"A-Za-z0-9\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"

# (kind, pattern), by family. Order matters within a family: earlier alternatives win where
# two could match at the same place (an Anthropic key is also an OpenAI-shaped one).
# Provider tokens and keys, each starting with its own literal (the gate looks for those).
PROVIDER_PATTERNS: Final = (
    (
        CREDENTIAL,
        r"(?<![A-Za-z0-9])(?:sk-ant-[A-Za-z0-9_-]{16,}"
        r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"
        r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}"
        r"|xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}"
        r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9+/=]{16,}"
        r"|AIza[0-9A-Za-z_-]{35}|(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"
        r"|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
        r"|ya29\.[A-Za-z0-9_-]{20,}|GOCSPX-[A-Za-z0-9_-]{20,}"
        r"|(?:SK|AC)[0-9a-f]{32}(?![A-Za-z0-9])"
        # DigitalOcean, Heroku, Notion, age, Groq, Replicate, Linear, Pinecone, Sentry, Grafana,
        # New Relic, Postman, Databricks, Vault, Figma, Fly, Shopify, Mailgun, Atlassian, PyPI...
        r"|do[opr]_v1_[a-f0-9]{64}|HRKU-[A-Za-z0-9_-]{20,}|ntn_[A-Za-z0-9]{40,}"
        r"|secret_[A-Za-z0-9]{43}(?![A-Za-z0-9])|AGE-SECRET-KEY-1[0-9A-Z]{58}"
        r"|gsk_[A-Za-z0-9]{40,}|r8_[A-Za-z0-9]{30,}|lin_api_[A-Za-z0-9]{30,}|pcsk_[A-Za-z0-9_]{40,}"
        r"|sntry[su]_[A-Za-z0-9_=+/]{40,}|gl(?:sa|c)_[A-Za-z0-9_+/=]{30,}|NRAK-[A-Z0-9]{27}"
        r"|PMAK-[a-f0-9]{24}-[a-f0-9]{34}|dapi[a-f0-9]{32}|hv[sb]\.[A-Za-z0-9_-]{24,}"
        r"|figd_[A-Za-z0-9_-]{30,}|fo1_[A-Za-z0-9_-]{30,}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"
        r"|key-[a-f0-9]{32}(?![A-Za-z0-9])|ATATT3[A-Za-z0-9_=-]{30,}|pypi-AgE[A-Za-z0-9_-]{50,}"
        r"|dp\.(?:st|ct|sa|scim|audit)\.[A-Za-z0-9_.-]{30,}|EAAA[A-Za-z0-9_-]{40,}"
        r"|sq0(?:atp|csp)-[A-Za-z0-9_-]{22,}"
        r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?"
        r"|[Bb]earer[ \t]+(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"
        r"|[Bb]asic\s+(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2})"
        # A Telegram bot's token: its id, a colon, then "AA" and the secret.
        r"|(?<!\d)\d{8,10}:AA[A-Za-z0-9_-]{30,40}"
        r"|-----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY-----(?:[\s\S]{0,10000}?-----END [A-Z0-9 ]{0,30}"
        r"PRIVATE KEY-----|[A-Za-z0-9+/=\s\\:-]{0,10000})"
        r"|https?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{10,}"
        r"|(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]+)",
    ),
)
# A secret's key name, then its value: the key stays (it tells the reader what was there); the
# value goes.
KEYED_PATTERNS: Final = (
    (
        CREDENTIAL,
        rf"(?ai:authorization){_SEPARATOR}(?:[A-Za-z]+[ \t]+)?(?P<VALUE>[A-Za-z0-9._~+/=-]{{8,}})",
    ),
    (PASSWORD, rf"{_KEY_NAME}{_SEPARATOR}{_QUOTED_VALUE}"),
    (
        PASSWORD,
        rf"<[A-Za-z0-9_:.-]{{0,40}}{_KEY_NAME}>(?P<VALUE>[^<\s]{{1,256}})</",
    ),
    # user:password@ in a URL, curl -u user:password, mysql -ppassword.
    (PASSWORD, r"://[^\s:/@'\"<>]{0,64}:(?P<VALUE>[^\s/@'\"<>]{1,128})@"),
    (
        PASSWORD,
        r"(?<![A-Za-z0-9_-])(?:-u|--user)[ \t]+[\"']?[^\s:\"']{1,64}:(?P<VALUE>[^\s\"']{1,128})",
    ),
    (
        PASSWORD,
        r"(?<![A-Za-z0-9_-])(?:sshpass[ \t]+-p|--password)[ \t]+[\"']?(?P<VALUE>[^\s\"']{1,128})",
    ),
    (
        PASSWORD,
        r"(?<![A-Za-z0-9])mysql(?:dump|admin)?(?![A-Za-z0-9])[^\n]{0,100}?[ \t]-p"
        r"(?P<VALUE>[^\s\"']{1,128})",
    ),
)
# In prose: "my password is hunter2", "Passwort ist ...", "the access token abc123...": the
# value must hold a digit or a symbol ("the password is incorrect" stays).
PROSE_PATTERNS: Final = (
    # A few words between the word and its value: "Senha do Wi-Fi: ...", "Password for the
    # admin account: ...", "password over chat ("...")". Tried first: the next pattern would
    # take the first of those words for the value (and, refused, consume it).
    (
        PASSWORD,
        r"(?<![A-Za-z])(?:[Pp]ass(?:word|wort)|PASS(?:WORD|WORT)|[Kk]ennwort|mot de passe"
        r"|[Cc]ontraseña|[Ww]achtwoord|[Пп]ароль|[Ss]enha)"
        r"(?:[ \t]+[^\s:=\uff1a\"'“«(]{1,20}){1,4}(?:[ \t]*[:\uff1a][ \t]*|[ \t]+\(?(?=[\"“«]))"
        + _PROSE_VALUE,
    ),
    (
        PASSWORD,
        r"(?<![A-Za-z])(?:[Pp]ass(?:word|wort)|PASS(?:WORD|WORT)|[Pp]wd?|PW|[Kk]ennwort"
        r"|mot de passe|[Cc]ontraseña|[Ww]achtwoord|[Пп]ароль|[Ss]enha)"
        r"(?: (?:is|was|ist|lautet|est|es|é|è|is now|to|=))?[ \t]+" + _PROSE_VALUE,
    ),
    # Chinese, Japanese, Korean: the value straight after the word and its particle.
    (
        PASSWORD,
        r"(?:パスワード|密码|密碼|비밀번호|暗証番号)(?:は|が|是|为|為|는|은)?[ \t]*"
        r"(?P<VALUE>[A-Za-z0-9!#$%&()*+\-./:;=?@\[\]^_{|}~]{4,128})",
    ),
    (
        CREDENTIAL,
        r"(?<![A-Za-z])(?:(?:[Aa][Pp][Ii]|[Aa]ccess|ACCESS|[Ss]ecret(?: [Aa]ccess)?|SECRET|[Aa]uth"
        r"|AUTH)[ _-]?(?:[Kk]ey|KEY|[Tt]oken|TOKEN)|[Tt]oken|TOKEN)"
        r"(?: (?:is|was|ist|est|es))?[ \t]+" + _PROSE_VALUE,
    ),
)
# Bounded as RFC 5321 bounds them (64-character local part, 63-character labels): unbounded,
# a failed match costs the square of the text's length, and anyone typing into the customer's
# app controls that text (30 KB took 0.9 s, enough to time the webhook out). Accented, Greek
# and Cyrillic letters are allowed; the local part starts after none of its characters.
EMAIL_PATTERN: Final = (
    rf"(?<![{_LOCAL}.])(?<![{_LOCAL}.]')[{_LOCAL}][{_LOCAL}.']{{0,63}}@[{_LABEL}-]{{1,63}}"
    rf"(?:\.[{_LABEL}-]{{1,63}}){{0,8}}\.[A-Za-z\u00c0-\u024f\u0400-\u04ff]{{2,24}}"
    rf"(?![{_LABEL}-])"
)
# The separators a grouped number may use: spaces (no-break and narrow too), dots, dashes.
_GAP = r"[ .\u00a0\u202f-]"
NUMBER_PATTERNS: Final = (
    # Dashed, spaced or dotted only: nine bare digits are as often an order number as an SSN.
    (
        SSN,
        r"(?<![A-Za-z0-9_])(?!000|666|9\d\d)\d{3}(?P<G>[- .\u2013])(?!00)\d{2}(?P=G)(?!0000)\d{4}"
        r"(?![A-Za-z0-9_])"
        r"|(?<![A-Za-z0-9_+.-])(?!000|666|9\d\d)\d{9}(?![A-Za-z0-9_]|[ .-]\d)",
    ),
    # Issuer prefixes (3x Amex/Diners/JCB, 4 Visa, 5 Mastercard, 6 Discover, 2 Mastercard's
    # newer range), 13-19 digits, optionally grouped; the Luhn check is made on each match.
    (CARD, rf"(?<![A-Za-z0-9_.-])[2-6]\d(?:{_GAP}{{0,2}}\d){{11,17}}(?![A-Za-z0-9_-]|\.\d)"),
    # Whole addresses only: not a version string such as v1.2.3.4 or 1.2.3.4.5.
    (IP, rf"(?<![A-Za-z0-9_.]){_OCTET}(?:\.{_OCTET}){{3}}(?![A-Za-z0-9_]|\.\d)"),
    (
        IP,
        # Compressed ("::") forms need three groups: "a::b" is as likely C++ or Rust as an address.
        rf"(?<![A-Za-z0-9_:])(?:(?:{_HEX}:){{7}}{_HEX}|(?:{_HEX}:){{2,6}}(?::{_HEX}){{1,5}}"
        rf"|(?:{_HEX}:){{1,5}}(?::{_HEX}){{2,6}})(?![A-Za-z0-9_:])",
    ),
    # Separated groups, a leading +, or a national trunk prefix 0 (020 7946 0958, 090-1234-5678,
    # (02) 9374 4000): a bare run of ten digits is an id more often than not.
    (
        PHONE,
        r"(?<![A-Za-z0-9_+])(?:(?:\+\d{1,3}|1)[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
        r"(?![A-Za-z0-9_]|[.-]\d)"
        r"|(?<![A-Za-z0-9_+])\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d)){7,14}(?![A-Za-z0-9_]|[.-]\d)"
        r"|(?<![A-Za-z0-9_+.-])(?:\(0[1-9]\d{0,3}\)[ .-]?|0[1-9]\d{0,3}(?:[ .-]| ?/ ?))\d{2,8}"
        r"(?:[ .-]\d{2,8}){0,4}"
        r"(?![A-Za-z0-9_:]|[.-]\d)"
        r"|(?<![A-Za-z0-9_+])\(\d{2}\) ?\d{4,5}-\d{4}(?![A-Za-z0-9_]|[.-]\d)"
        r"|(?<![A-Za-z0-9_+.-])(?:\d{10,11}|[1-9]\d{2} \d{3} \d{3})(?![A-Za-z0-9_]|[ .-]\d)",
    ),
)


class Group(NamedTuple):
    """What a named alternative of the compiled patterns is."""

    kind: str
    value: str | None  # the group holding the secret, when only a value is (password: <value>)
    prose: bool


# The families, each compiled into one pattern and run only on text its gate passes
# (redaction_gates), in this order.
FAMILIES: Final = {
    "providers": PROVIDER_PATTERNS,
    "keyed": KEYED_PATTERNS,
    "prose": PROSE_PATTERNS,
    "emails": ((EMAIL, EMAIL_PATTERN),),
    "numbers": NUMBER_PATTERNS,
}
# Every pattern, numbered: its alternative is named <kind><number>, its own groups <name><number>.
_NUMBERED: Final = {
    family: tuple(zip(range(first, first + len(patterns)), patterns, strict=True))
    for family, patterns, first in zip(
        FAMILIES,
        FAMILIES.values(),
        [sum(len(p) for p in list(FAMILIES.values())[:i]) for i in range(len(FAMILIES))],
        strict=True,
    )
}
GROUPS: Final = {
    f"{kind}{number}": Group(
        kind,
        f"VALUE{number}" if "(?P<VALUE>" in pattern else None,
        prose=family == "prose",
    )
    for family, numbered in _NUMBERED.items()
    for number, (kind, pattern) in numbered
}


def compiled(family: str, *, ipv6: bool = True) -> re.Pattern[str]:
    """A family's patterns as one (without IPv6's when ``ipv6`` is false)."""
    return re.compile(
        "|".join(
            f"(?P<{kind}{number}>"
            + re.sub(r"\(\?P([<=])(VALUE|Q|G)\b", rf"(?P\g<1>\g<2>{number}", pattern).replace(
                "(?(Q)", f"(?(Q{number})"
            )
            + ")"
            for number, (kind, pattern) in _NUMBERED[family]
            if ipv6 or not pattern.startswith("(?<![A-Za-z0-9_:])")
        )
    )


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


_NATIONAL_DIGITS: Final = range(9, 13)
# An IPv4 address that is nobody's: any, loopback, netmasks and broadcast.
_NOBODYS_IP: Final = re.compile(r"0\.0\.0\.0$|127\.|255\.")
# Words before a dotted quad that make it a section or version number ("section 2.1.3.4").
_NUMBERED_THING: Final = re.compile(
    r"(?i:section|sect\.|§|chapter|clause|paragraph|article|version|release|build|step|rule"
    r"|table|figure|item|part|v|firmware|fw|kernel|driver|bios|patch|tag|ver\.)\s*$"
)
# Values of a secret's key that are not secrets: types, empties, placeholders.
_NOT_SECRETS: Final = frozenset(
    {"str", "string", "int", "bool", "bytes", "none", "null", "nil", "true", "false"}
    | {"undefined", "optional", "required", "any", "secretstr", "unknown", "empty", "n/a"}
    | {"hidden", "redacted", "masked", "omitted", "removed"}
)
_REFERENCE: Final = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]{0,23}(?:\.[A-Za-z_][A-Za-z0-9_]{0,23})+(?:[(\[].*)?"
    r"|[A-Za-z_][A-Za-z0-9_]*[(\[].*"  # os.environ[...], get_token(), Optional[str]
    r"|![A-Z][A-Za-z]+",  # a YAML tag: !Ref, !Sub, !GetAtt
    re.DOTALL,
)
_NAMING_WORD: Final = re.compile(r"(?i:pass|pwd|token|secret|key|credential)")
# A key or token written after its name in prose: long, with letters and digits.
_LIKE_A_KEY: Final = re.compile(r"(?=.*\d)(?=.*[A-Za-z]).{12,}")
_TEMPLATE_STARTS: Final = tuple("$%{<#")
_SYMBOL_OR_DIGIT: Final = re.compile(r"[^A-Za-z\s]")


def _names_something(bare: str) -> bool:
    """Whether a value is a reference to a secret rather than one: a type, a template, a
    variable, a call (password: str, ${DB_PASSWORD}, os.environ[...], api_key=api_key)."""
    if bare.lower() in _NOT_SECRETS or bare.startswith(_TEMPLATE_STARTS):
        return True
    if _REFERENCE.fullmatch(bare) is not None:
        return True
    return (
        bare.isidentifier()
        and not any(char.isdigit() for char in bare)
        and _NAMING_WORD.search(bare) is not None
    )


def is_secret_value(value: str, *, prose: bool) -> bool:
    """Whether a key's value, or a word after "password" in prose, can be a secret."""
    bare = value.rstrip(")]},.;:")
    if not any(char.isalnum() for char in bare) or _names_something(bare):
        return False  # "********", "<redacted>", "}}", password: str
    if bare.strip("[]()").lower() in _NOT_SECRETS or _FILLER_RUN.search(bare) is not None:
        return False  # "[hidden]", ghp_xxxxxxxxxxxx
    # In prose, a plain word after "password" is more English than password ("Passwort
    # vergessen?").
    return not prose or _SYMBOL_OR_DIGIT.search(bare.rstrip("?!")) is not None


def _card(found: str, _match: re.Match[str]) -> bool:
    return luhn_valid(re.sub(r"\D", "", found))


# How far back, on its line, a label makes bare digits a phone number or SSN ("phone: 4155550123").
_LABEL_REACH: Final = 40
_PHONE_LABEL: Final = re.compile(
    r"(?i:phone|tel\b|tel\.|mobile|cell|móvil|movil|celular|telefone|telemóvel|telefon|handy"
    r"|mobil|whatsapp|sms|call me|text me|ring me|手机|手機|电话|電話|携帯|연락처|전화|휴대폰"
    r"|هاتف|جوال|رقمي)"
)
_SSN_LABEL: Final = re.compile(r"(?i:ssn|social security|seguro social|tax id|itin)")
_BARE_GROUPS: Final = re.compile(r"\d+|[1-9]\d{2} \d{3} \d{3}")
# Words before a number that make it a product's or a document's ("Part number 0451-203-118").
_CODE_BEFORE: Final = re.compile(
    r"(?i:part|sku|item|model|article|artikel|art|ref|reference|order|invoice|ticket|serial"
    r"|isbn|case|tracking)(?:[ \t.-]*(?:number|no|nr|num|#|id))?[ \t.]*[:#]?[ \t]*$"
)


def _labelled(match: re.Match[str], label: re.Pattern[str]) -> bool:
    before = match.string[max(0, match.start() - _LABEL_REACH) : match.start()]
    return label.search(before.rpartition("\n")[2]) is not None


def _phone(found: str, match: re.Match[str]) -> bool:
    if _BARE_GROUPS.fullmatch(found) is not None:
        return _labelled(match, _PHONE_LABEL)
    before = match.string[max(0, match.start() - 24) : match.start()]
    if _CODE_BEFORE.search(before) is not None:
        return False
    if not found.lstrip("(").startswith("0"):
        return True
    return sum(char.isdigit() for char in found) in _NATIONAL_DIGITS


def _ssn(found: str, match: re.Match[str]) -> bool:
    return not found.isdigit() or _labelled(match, _SSN_LABEL)


# A documentation placeholder in a token's shape: ghp_xxxxxxxx..., AKIAXXXXXXXXXXXXXXXX.
_FILLER_RUN: Final = re.compile(r"([xX*.•])\1{5}")


def _credential(found: str, _match: re.Match[str]) -> bool:
    return _FILLER_RUN.search(found) is None


def _ip(found: str, match: re.Match[str]) -> bool:
    if "." not in found:
        return True  # IPv6
    before = match.string[max(0, match.start() - 12) : match.start()]
    return _NOBODYS_IP.match(found) is None and _NUMBERED_THING.search(before) is None


def _email(found: str, match: re.Match[str]) -> bool:
    # git@github.com:org/repo.git is a remote, not a mailbox.
    return not (found.startswith("git@") and match.string[match.end() : match.end() + 1] == ":")


_CHECKS: Final = {CARD: _card, PHONE: _phone, SSN: _ssn, IP: _ip, EMAIL: _email}
_CHECKS[CREDENTIAL] = _credential


def accepted(group: Group, name: str, match: re.Match[str]) -> bool:
    """Whether ``match`` (of the alternative ``name``) is what its kind says it is."""
    if group.value is not None:
        value = match.group(group.value)
        if value is None:
            return True
        if group.prose and group.kind == CREDENTIAL and not _LIKE_A_KEY.fullmatch(value):
            return False  # "the access token expires in 3600 seconds"
        return is_secret_value(value, prose=group.prose)
    check = _CHECKS.get(group.kind)
    return check is None or check(match.group(name), match)
