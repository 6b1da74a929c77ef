"""How well a redactor does on a labelled corpus (tests/fixtures/redaction_corpus: cases.jsonl,
the tuning corpus, and heldout.jsonl, written blind).

Each case is a text as AI apps carry them (chat prompts and answers, JSON message arrays inside
strings, pasted .env/YAML/logs, e-mails and tickets, several languages) with every secret
marked ``⟦kind|secret⟧``; a case of kind ``negative`` holds none, only look-alikes (order
numbers, UUIDs, versions, dates, code that names a secret without holding one).

A redactor is scored by what survives of each character: its output is the input with spans
replaced by placeholders (``<REDACTED_...>``), so the text between placeholders is aligned back
onto the input. A secret counts as caught when none of its characters survives; a negative
counts as a false positive when anything in it changed; the characters destroyed are those
outside every secret that did not survive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

_CORPORA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "redaction_corpus"
# The tuning corpus: written while the patterns were tuned, so what it measures is flattered.
CORPUS = _CORPORA / "cases.jsonl"
# The held-out corpus: written blind (from the README's claims and this format alone, before
# the patterns or the tuning corpus were read), then measured once before any change; what the
# patterns were generalised from afterwards, so a later figure on it is no longer held out.
HELDOUT = _CORPORA / "heldout.jsonl"
NEGATIVE = "negative"
# The kinds the forwarder claims (README, "Keeping personal data in your account"), and the
# kinds only Raindrop's SDK has, measured to decide whether to add them.
CLAIMED = ("email", "phone", "card", "ssn", "ip", "credential", "password")
SDK_ONLY = ("name", "address")
_MARK = re.compile(r"⟦(\w+)\|(.*?)⟧", re.DOTALL)
_PLACEHOLDER = re.compile(r"<REDACTED_[A-Z_]+>")


@dataclass(frozen=True)
class Secret:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Case:
    kind: str  # the main kind, or "negative"
    text: str
    secrets: tuple[Secret, ...]


def parse(kind: str, marked: str) -> Case:
    """A case from its marked text: the markers removed, their spans kept."""
    pieces: list[str] = []
    secrets: list[Secret] = []
    done = length = 0
    for match in _MARK.finditer(marked):
        before = marked[done : match.start()]
        pieces.append(before)
        length += len(before)
        secret = match.group(2)
        secrets.append(Secret(match.group(1), length, length + len(secret)))
        pieces.append(secret)
        length += len(secret)
        done = match.end()
    pieces.append(marked[done:])
    return Case(kind, "".join(pieces), tuple(secrets))


def load(path: Path = CORPUS) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            cases.append(parse(row["kind"], row["text"]))
    return cases


def kept(original: str, redacted: str) -> list[bool]:
    """For each character of ``original``, whether it survives in ``redacted`` (which must be
    ``original`` with spans replaced by placeholders; anything else counts as all destroyed)."""
    if redacted == original:
        return [True] * len(original)
    pieces = _PLACEHOLDER.split(redacted)
    alignment = re.fullmatch(
        "(.*?)".join(re.escape(piece) for piece in pieces), original, re.DOTALL
    )
    if alignment is None:
        return [False] * len(original)
    survives = [False] * len(original)
    position = 0
    for number, piece in enumerate(pieces):
        survives[position : position + len(piece)] = [True] * len(piece)
        if number < len(pieces) - 1:
            position = alignment.end(number + 1)  # past the text a placeholder replaced
    return survives


@dataclass
class Score:
    """Recall by kind, false positives and characters destroyed, for one redactor."""

    found: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    negatives: int = 0
    changed_negatives: list[str] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)  # (kind, secret text)
    plain_chars: int = 0
    destroyed_chars: int = 0

    def recall(self, kind: str) -> float:
        return self.found.get(kind, 0) / self.total[kind] if self.total.get(kind) else 0.0

    @property
    def false_positive_rate(self) -> float:
        return len(self.changed_negatives) / self.negatives if self.negatives else 0.0

    @property
    def destroyed(self) -> float:
        return self.destroyed_chars / self.plain_chars if self.plain_chars else 0.0

    @property
    def claimed_recall(self) -> float:
        found = sum(self.found.get(kind, 0) for kind in CLAIMED)
        total = sum(self.total.get(kind, 0) for kind in CLAIMED)
        return found / total if total else 0.0


def score(redact: Callable[[str], str], cases: Iterable[Case]) -> Score:
    result = Score()
    for case in cases:
        redacted = redact(case.text)
        survives = kept(case.text, redacted)
        inside = [False] * len(case.text)
        for secret in case.secrets:
            result.total[secret.kind] = result.total.get(secret.kind, 0) + 1
            if not any(survives[secret.start : secret.end]):
                result.found[secret.kind] = result.found.get(secret.kind, 0) + 1
            else:
                result.missed.append((secret.kind, case.text[secret.start : secret.end]))
            for index in range(secret.start, secret.end):
                inside[index] = True
        if case.kind == NEGATIVE:
            result.negatives += 1
            if redacted != case.text:
                result.changed_negatives.append(case.text)
        for index, survived in enumerate(survives):
            if not inside[index]:
                result.plain_chars += 1
                result.destroyed_chars += not survived
    return result
