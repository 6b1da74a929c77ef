"""Redaction (REDACT_PII) against Raindrop's own SDK redactor (``raindrop-ai``'s ``redact_pii``),
side by side: what each catches and spoils on the labelled corpora (bench/redaction_quality.py:
the tuning corpus, and the held-out one written blind), and what each costs on the 4,000-event
batch.

The forwarder's cost is what redaction adds to mapping the batch (the same parsed events mapped
with redaction off and on: ``ai_data``, properties and traits); the SDK's is its redactor run
over the ``ai_data`` texts alone (every string of each chat's input and output), which is all it
redacts. Target: the forwarder at most a quarter of the SDK's cost.

To be fair the batch must give redaction work to do, and no help: the benchmarks' usual
traffic, every chat's prompt and answer made unique (the sample generator composes them from a
dozen phrases, so they repeat, and redaction remembers long strings it found clean within a
request: real prompts do not repeat, though the system prompt does), with personal data
written into one chat in ten (an e-mail address and a phone number, and in one
chat in fifty a card number too), as users paste them into prompts. Every event's
``context.traits`` and every identify's traits also hold the user's e-mail address, and
``REDACT_KEYS`` names none of the keys that hold personal data, so nothing is dropped
unexamined.

Times are CPU seconds of this process (the machine is shared: wall time would measure the
neighbours), the two configurations alternating, medians of the runs.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raindrop.redact import PIIRedactor

from bench import redaction_quality as quality
from bench import workload
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.redaction import Redactor
from segment_raindrop.core.segment_body import parse_body
from segment_raindrop_tools import events as segment_events
from segment_raindrop_tools import samples

# Targets (issue 21): cost at most a quarter of the SDK's; on the corpus, recall at least 95%
# on every kind the README claims and at most 2% of the look-alikes changed.
TARGET_COST_RATIO = 0.25
TARGET_RECALL = 0.95
TARGET_FALSE_POSITIVES = 0.02
# Keys a team might drop that this traffic does not carry (or carries without personal data,
# like identify's address.city): the e-mail addresses in traits must be found by their pattern.
REDACT_KEYS = frozenset({"ssn", "phone_number", "address"})
WITH_CONTACT_EVERY = 10  # chats
WITH_CARD_EVERY = 50  # chats
REPEAT = 15


@dataclass(frozen=True)
class RedactionResult:
    events: int
    plain_seconds: float
    redacted_seconds: float
    sdk_seconds: float
    redactions: dict[str, int]
    ours: quality.Score
    sdk: quality.Score
    ordinary: dict[str, float]  # share of ordinary chat texts changed, by redactor and rule
    heldout_ours: quality.Score
    heldout_sdk: quality.Score

    @property
    def seconds(self) -> float:
        """What redaction adds to mapping the batch."""
        return self.redacted_seconds - self.plain_seconds

    @property
    def cost_ratio(self) -> float:
        return self.seconds / self.sdk_seconds

    @property
    def ok(self) -> bool:
        return (
            self.cost_ratio <= TARGET_COST_RATIO
            and all(self.ours.recall(kind) >= TARGET_RECALL for kind in quality.CLAIMED)
            and self.ours.false_positive_rate <= TARGET_FALSE_POSITIVES
        )

    def section(self) -> str:
        """The report's section (docs/benchmarks.md)."""
        return "\n".join(_section(self))


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _recall_row(kind: str, result: RedactionResult) -> str:
    ours, sdk = result.ours, result.sdk
    claimed = kind in quality.CLAIMED
    verdict = _verdict(ours.recall(kind) >= TARGET_RECALL) if claimed else "not claimed"
    return (
        f"| {kind} | {ours.total.get(kind, 0)} | {ours.recall(kind):.0%} | {sdk.recall(kind):.0%}"
        f" | {verdict} |"
    )


# The held-out corpus's first measurement (commit c842337, before any pattern was changed for
# it), kept because every later figure is measured on a corpus the patterns were then
# generalised from.
HELDOUT_FIRST = {
    "forwarder": "89.0% of the claimed kinds caught (phone 86%, SSN 88%, credentials 90%,"
    " passwords 71%), 5.5% of the look-alikes changed",
    "SDK": "33.7% caught, 24.8% changed",
}


def _heldout_rows(result: RedactionResult) -> list[str]:
    ours, sdk = result.heldout_ours, result.heldout_sdk
    return [
        "| kind | secrets | forwarder recall | SDK recall |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {kind} | {ours.total.get(kind, 0)} | {ours.recall(kind):.1%}"
            f" | {sdk.recall(kind):.1%} |"
            for kind in quality.CLAIMED
        ),
        f"| **claimed kinds together** | {sum(ours.total.get(k, 0) for k in quality.CLAIMED)}"
        f" | {ours.claimed_recall:.1%} | {sdk.claimed_recall:.1%} |",
        f"| look-alikes changed | {ours.negatives} | {ours.false_positive_rate:.1%}"
        f" ({len(ours.changed_negatives)}) | {sdk.false_positive_rate:.1%}"
        f" ({len(sdk.changed_negatives)}) |",
        f"| non-personal characters destroyed | | {ours.destroyed:.2%} | {sdk.destroyed:.2%} |",
    ]


def _heldout(result: RedactionResult) -> list[str]:
    cases = quality.load(quality.HELDOUT)
    positives = sum(case.kind != quality.NEGATIVE for case in cases)
    return [
        "",
        "#### The held-out corpus",
        "",
        "The corpus above was written while the patterns were tuned, so it flatters them."
        f" `tests/fixtures/redaction_corpus/heldout.jsonl` ({len(cases)} cases: {positives}"
        f" holding personal data or secrets, {len(cases) - positives} look-alikes of other"
        " styles: hashes, UUIDs, IP-shaped version strings, product codes, Luhn-invalid"
        " numbers, placeholders and masked values such as `<YOUR_API_KEY>`, `sk-...`,"
        " `ghp_xxxx…`, `password: ********`) was written blind, from the README's claims and"
        " the corpus format alone, with tokens in each vendor's documented shape. Its first"
        f" measurement, before any change: forwarder {HELDOUT_FIRST['forwarder']}; SDK"
        f" {HELDOUT_FIRST['SDK']}. The patterns were then generalised from what leaked, so"
        " the figures below are no longer held out:",
        "",
        *_heldout_rows(result),
    ]


def _section(result: RedactionResult) -> list[str]:
    ours, sdk = result.ours, result.sdk
    kinds = ", ".join(f"{count:,} {kind}" for kind, count in sorted(result.redactions.items()))
    positives = len(_positive_cases())
    fp_ok = _verdict(ours.false_positive_rate <= TARGET_FALSE_POSITIVES)
    return [
        MARK_START,
        "### Redaction against Raindrop's SDK (`raindrop-ai` `redact_pii`)",
        "",
        f"The labelled corpus (`tests/fixtures/redaction_corpus`, {ours.negatives + positives}"
        f" cases: {positives} holding personal data or secrets, {ours.negatives}"
        " look-alikes) is text as AI apps carry it: chat prompts and answers, JSON message arrays"
        " inside strings, pasted `.env`/YAML/logs/shell, e-mails and tickets, in several"
        " languages. A secret counts as caught when none of its characters survives.",
        "",
        "| kind | secrets | forwarder recall | SDK recall | target ≥ 95% |",
        "| --- | ---: | ---: | ---: | --- |",
        *(_recall_row(kind, result) for kind in (*quality.CLAIMED, *quality.SDK_ONLY)),
        f"| **claimed kinds together** | {sum(ours.total.get(k, 0) for k in quality.CLAIMED)}"
        f" | {ours.claimed_recall:.1%} | {sdk.claimed_recall:.1%} | |",
        "",
        "| | forwarder | SDK | target |",
        "| --- | ---: | ---: | --- |",
        f"| look-alikes changed (false positives) | {ours.false_positive_rate:.1%}"
        f" ({len(ours.changed_negatives)} of {ours.negatives}) | {sdk.false_positive_rate:.1%}"
        f" ({len(sdk.changed_negatives)}) | ≤ 2%: {fp_ok} |",
        f"| non-personal characters destroyed | {ours.destroyed:.2%} | {sdk.destroyed:.2%} | |",
        f"| ordinary chats of the batch changed | {result.ordinary['ours']:.1%}"
        f" | {result.ordinary['sdk']:.1%} | |",
        f"| … by the SDK's name rules alone | | {result.ordinary['sdk names']:.1%} | |",
        f"| … by the SDK's street-address rule alone | | {result.ordinary['sdk address']:.1%} | |",
        f"| CPU on the {result.events:,}-event batch | {result.seconds * 1000:.0f} ms"
        f" | {result.sdk_seconds * 1000:.0f} ms | ≤ ¼ of the SDK's:"
        f" {result.cost_ratio:.2f}× {_verdict(result.cost_ratio <= TARGET_COST_RATIO)} |",
        "",
        "The forwarder's CPU is what redaction adds to mapping the batch"
        f" ({result.redacted_seconds * 1000:.0f} ms against"
        f" {result.plain_seconds * 1000:.0f} ms without; `ai_data`, properties and traits,"
        f" `REDACT_KEYS` of {len(REDACT_KEYS)} keys; {sum(result.redactions.values()):,}"
        f" redactions: {kinds}); the SDK's is its `PIIRedactor.redact` over the `ai_data` texts"
        " alone. Ordinary chats are the batch's chats before personal data is written into"
        " some; one counts as changed when any text of its `ai_data` (the system prompt, the"
        " history, the prompt, the answer) does.",
        "",
        "**Names and street addresses are not added.** The SDK finds names after greetings and"
        " before closings, capitalised words ending a sentence or standing alone on a line, and"
        " a list of common first names; on the corpus it catches"
        f" {sdk.recall('name'):.0%} of the names, but the same rules change"
        f" {result.ordinary['sdk names']:.0%} of the batch's ordinary chats: its closings"
        ' include every word ending in "-ly", so the capitalised word before one is taken for'
        " a name, and the system"
        ' prompt\'s "Answer briefly" becomes "<REDACTED_NAME> briefly".'
        " Its street-address rule catches"
        f" {sdk.recall('address'):.0%} of the corpus's addresses (English street words only) and"
        f" changes {result.ordinary['sdk address']:.0%} of the ordinary chats, but it also takes"
        " any number followed by words and a street"
        ' word ("we shipped 3 new features along the way", "I walked 5 miles down the'
        ' road") and misses every format outside'
        " the US and UK. Neither meets the 2% precision the other kinds are held to, so the"
        " forwarder leaves both to `REDACT_KEYS` (drop `name`, `address` and the like from"
        " properties and traits) and to the SDK's own `redact_pii` on the client.",
        *_heldout(result),
        MARK_END,
    ]


def _personal(number: int) -> str:
    """A sentence with an e-mail address and a phone number (and sometimes a card number)."""
    sentence = f" Reach me at pat.lee{number}@example.org or 555-{number % 1000:03d}-0199."
    if number % WITH_CARD_EVERY == 0:
        sentence += " My card is 4111 1111 1111 1111."
    return sentence


def _unique(number: int) -> str:
    """A word no other chat has (letters only: it gives the gates nothing to find)."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[digit]
        if not number:
            return f" ({letters})"


def _edit_chat(ai_data: dict[str, Any], number: int) -> None:
    messages = ai_data["input"]
    extra = _unique(number) + (_personal(number) if number % WITH_CONTACT_EVERY == 0 else "")
    if isinstance(messages, list):
        messages[-1]["content"] += extra
    else:
        ai_data["input"] = f"{messages}{extra}"
    if isinstance(ai_data.get("output"), str):
        ai_data["output"] += _unique(number)


def with_personal_data(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` (changed in place): every chat's prompt and answer unique, and personal data
    in one chat prompt in ten."""
    chats = [event for event in events if event.get("event") == segment_events.AI_CHAT]
    for number, chat in enumerate(chats):
        properties = chat["properties"]
        ai_data = properties["ai_data"]
        if isinstance(ai_data, str):  # the Classic destination's JSON text
            decoded = json.loads(ai_data)
            _edit_chat(decoded, number)
            properties["ai_data"] = json.dumps(decoded, ensure_ascii=False)
        else:
            _edit_chat(ai_data, number)
    return events


def body(events: int) -> bytes:
    traffic = samples.batch(events, seed=events, prompt_chars=workload.PROMPT_CHARS)
    return samples.body(with_personal_data(traffic))


def _cpu_seconds(action: Callable[[], object]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


def _positive_cases() -> list[quality.Case]:
    return [case for case in quality.load() if case.kind != quality.NEGATIVE]


def _ai_texts(events: list[dict[str, Any]]) -> list[str]:
    """Every string in the chats' ``ai_data`` input and output (what the SDK redacts)."""
    texts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for event in events:
        ai_data = (event.get("properties") or {}).get("ai_data")
        if isinstance(ai_data, str):
            ai_data = json.loads(ai_data)
        if isinstance(ai_data, dict):
            walk(ai_data.get("input"))
            walk(ai_data.get("output"))
    return texts


def _changed(redact: Callable[[str], str], chats: list[list[str]]) -> float:
    """The share of ``chats`` in which ``redact`` changes some text."""
    changed = sum(any(redact(text) != text for text in texts) for texts in chats)
    return changed / len(chats) if chats else 0.0


def _ordinary(events: int) -> dict[str, float]:
    """The share of the batch's chats, before personal data is written into some, whose
    ``ai_data`` each redactor (and each of the SDK's name and address rules) changes."""
    traffic = samples.batch(events, seed=events, prompt_chars=workload.PROMPT_CHARS)
    chats = [texts for event in traffic if (texts := _ai_texts([event]))]
    sdk = PIIRedactor()
    return {
        "ours": _changed(lambda text: Redactor(pii=True).text(text), chats),
        "sdk": _changed(sdk.redact, chats),
        "sdk names": _changed(sdk.redact_names, chats),
        "sdk address": _changed(lambda text: sdk.address_pattern.sub("<ADDRESS>", text), chats),
    }


def run(events: int = 4_000) -> RedactionResult:
    parsed = parse_body(body(events)).events
    plain = MappingConfig()
    redacting = MappingConfig(redact_pii=True, redact_keys=REDACT_KEYS)
    redactions = dict(map_events(parsed, redacting).redactions)
    sdk = PIIRedactor()
    texts = _ai_texts(parsed)

    def plain_run() -> object:
        return map_events(parsed, plain)

    def redacting_run() -> object:
        return map_events(parsed, redacting)

    def sdk_run() -> object:
        return [sdk.redact(text) for text in texts]

    for _ in range(2):  # warm-up
        plain_run()
        redacting_run()
        sdk_run()
    # Alternating, so a busy spell on the shared machine falls on all alike.
    plain_times, redacting_times, sdk_times = [], [], []
    for _ in range(REPEAT):
        plain_times.append(_cpu_seconds(plain_run))
        redacting_times.append(_cpu_seconds(redacting_run))
        sdk_times.append(_cpu_seconds(sdk_run))
    cases = quality.load()
    heldout = quality.load(quality.HELDOUT)
    return RedactionResult(
        events=events,
        plain_seconds=statistics.median(plain_times),
        redacted_seconds=statistics.median(redacting_times),
        sdk_seconds=statistics.median(sdk_times),
        redactions=redactions,
        ours=quality.score(lambda text: Redactor(pii=True).text(text), cases),
        sdk=quality.score(sdk.redact, cases),
        ordinary=_ordinary(events),
        heldout_ours=quality.score(lambda text: Redactor(pii=True).text(text), heldout),
        heldout_sdk=quality.score(sdk.redact, heldout),
    )


MARK_START = "<!-- redaction: written by bench/redaction.py -->"
MARK_END = "<!-- /redaction -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_into(doc: Path, section: str) -> None:
    """Puts ``section`` in place of the one ``doc`` holds (``python -m bench.redaction``, to
    refresh this section alone; ``make bench`` writes the whole report)."""
    text = doc.read_text(encoding="utf-8")
    if MARK_START in text:
        before, rest = text.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
        text = before + section + after
    else:  # the report before this section existed: one sentence in its place
        lines = text.splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if line.startswith("Redaction (`REDACT_PII"))
        lines[at] = section + "\n"
        text = "".join(lines)
    doc.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    result = run()
    print(result.section())
    write_into(DOC, result.section())
