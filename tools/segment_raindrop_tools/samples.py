# ruff: noqa: RUF001  (typographic quotes and full-width punctuation are the point here)
"""Realistic Segment events, for the tests, the benchmark and ``segment-raindrop send-sample``.

The events look like what Segment's libraries really send (docs/wire.md §1.6): full ``context``
(library, ip, userAgent, locale, page, traits), ``integrations``, the four timestamps, unicode
text, ``ai_data`` both as an object and as a JSON string, message lists as ``input``, token
counts and latencies. Everything is deterministic: the same arguments always give the same
events (no clock, no global random state), so tests and benchmarks are repeatable.

The calls' shapes come from :mod:`~segment_raindrop_tools.events`; standard library only.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from segment_raindrop_tools import events

Event = events.Event

DEFAULT_START: Final = datetime(2025, 3, 14, 9, 26, 53, 589_000, tzinfo=UTC)
"""When the sample traffic starts unless told otherwise (a fixed instant, for determinism)."""

SYSTEM_PROMPT: Final = (
    "You are Atlas, the support assistant of Northwind Cloud. Answer briefly, cite the docs "
    "when you can and never invent prices."
)

_MODELS: Final = ("gpt-4o-2024-08-06", "gpt-4o-mini", "claude-3-5-sonnet-20241022", "o3-mini")

# User prompts and assistant phrases in several scripts, with emoji and typographic quotes,
# so the forwarder's unicode handling is exercised by ordinary traffic.
_PROMPT_PHRASES: Final = (
    "How do I rotate the API key for our staging project?",
    "Why did last night’s export fail with “quota exceeded”?",
    "Können Sie mir erklären, wie die Abrechnung pro Nutzer funktioniert?",
    "Pourquoi la synchronisation prend-elle autant de temps aujourd’hui ?",
    "請問如何把儀表板分享給外部的合作夥伴？",
    "データのエクスポートをCSVではなくParquetでできますか？",
    "¿Se puede programar el informe semanal para los lunes a las 8:00?",
    "Summarise the incident from 2025-03-12 in three bullet points 🙏",
    "Ποια είναι τα όρια του δωρεάν πακέτου;",
    "Write a SQL query that counts active users per day, last 30 days.",
    "Is there a way to batch 4,000 events at once? Asking for a friend 😅",
    "Что означает ошибка 429 и как её избежать?",
)
_ANSWER_PHRASES: Final = (
    "Sure — here is what I found in the docs.",
    "Go to Settings → API keys, choose “Rotate”, then update the secret in your CI.",
    "Die Abrechnung erfolgt monatlich pro aktivem Nutzer; inaktive Konten zählen nicht.",
    "La synchronisation est ralentie par un index en cours de reconstruction.",
    "可以，在「共享」設定中加入合作夥伴的電子郵件即可。",
    "はい、エクスポート設定で形式を Parquet に変更できます。",
    "Sí: en Informes → Programación, elige «Semanal» y el lunes a las 8:00.",
    "```sql\nSELECT date_trunc('day', ts) AS day, count(DISTINCT user_id)\n"
    "FROM events WHERE ts > now() - interval '30 days' GROUP BY 1;\n```",
    "Ошибка 429 означает, что превышен лимит запросов; повторите позже ⏳",
    "The export hit the daily quota at 02:13 UTC; it resets at midnight.",
    "I’m not certain about that — let me hand you over to a human. 🤝",
)
_COMMENTS: Final = (
    "Exactly what I needed, thanks!",
    "The SQL was wrong: it double-counts users across days.",
    "Antwort war hilfreich 👍",
    "Too long, and it ignored my question about Parquet.",
    "回答很清楚，謝謝！",
)
_TOOLS: Final = (
    ("search_docs", {"query": "rotate api key", "top_k": 5}),
    ("lookup_invoice", {"invoice_id": "in_1Ox2Yz", "include_lines": True}),
    ("run_sql", {"statement": "SELECT count(*) FROM exports WHERE status = 'failed'"}),
    ("create_ticket", {"priority": "high", "tags": ["billing", "export"]}),
)
_FIRST_NAMES: Final = ("Ada", "Björn", "Chloé", "Dmitri", "Eun-ji", "Fatima", "Grace", "Hiro")
_LAST_NAMES: Final = ("Lovelace", "Sørensen", "Dubois", "Ivanov", "Kim", "Haddad", "Hopper")
_COMPANIES: Final = ("Northwind Traders", "Initech GmbH", "Müller & Söhne", "Acme Corp")
_PLANS: Final = ("free", "team", "business", "enterprise")
_LOCALES: Final = ("en-US", "de-DE", "fr-FR", "ja-JP", "es-ES", "zh-TW", "el-GR", "ru-RU")
_USER_AGENTS: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
)
_LIBRARIES: Final = (
    {"name": "analytics.js", "version": "next-1.72.0"},
    {"name": "@segment/analytics-node", "version": "2.1.3"},
    {"name": "analytics-python", "version": "2.3.3"},
)
# (product_id, sku, name, unit price)
_PRODUCTS: Final = (
    ("seat-team", "NW-TEAM-1", "Team seat", 19.0),
    ("addon-export", "NW-EXP", "Parquet export", 49.99),
    ("credits-10k", "NW-CR-10K", "10k AI credits", 12.5),
)
_PAGES: Final = (
    ("/chat", "Assistant · Northwind"),
    ("/settings/api-keys", "API keys · Northwind"),
    ("/billing", "Billing · Northwind"),
    ("/dashboards/weekly", "Weekly report · Northwind"),
)

# Relative weights of the kinds of event in :func:`batch`, like an AI product's real traffic.
_TRAFFIC_MIX: Final = (
    ("chat", 70),
    ("tool", 6),
    ("feedback", 6),
    ("identify", 5),
    ("page", 8),
    ("order", 5),
)


def iso(instant: datetime) -> str:
    """``instant`` as JavaScript's ``Date.prototype.toISOString`` writes it (what Segment sends)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{instant.microsecond // 1000:03d}Z"
    )


@dataclass(slots=True)
class _User:
    user_id: str
    anonymous_id: str
    traits: dict[str, Any]
    context: dict[str, Any]
    convo_id: str
    history: list[dict[str, str]] = field(default_factory=list)
    last_trace_id: str | None = None


class _Traffic:
    """A deterministic generator of one app's Segment traffic."""

    def __init__(self, seed: int, start: datetime, prompt_chars: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 (sample data, not secrets)
        self._clock = start
        self._prompt_chars = max(1, prompt_chars)
        self._turns = 0

    # -- identities -------------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def user(self, user_id: str | None = None) -> _User:
        rng = self._rng
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        uid = user_id if user_id is not None else f"usr_{rng.getrandbits(48):012x}"
        traits: dict[str, Any] = {
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "name": f"{first} {last}",
            "plan": rng.choice(_PLANS),
            "company": {
                "id": f"org_{rng.getrandbits(32):08x}",
                "name": rng.choice(_COMPANIES),
                "employees": rng.choice((12, 85, 420, 5200)),
            },
        }
        library = rng.choice(_LIBRARIES)
        context: dict[str, Any] = {
            "library": dict(library),
            "ip": f"203.0.113.{rng.randrange(1, 255)}",
            "locale": rng.choice(_LOCALES),
            "timezone": rng.choice(("Europe/Berlin", "America/New_York", "Asia/Tokyo")),
            "traits": traits,
        }
        if library["name"] == "analytics.js":
            path, title = _PAGES[0]
            context["userAgent"] = rng.choice(_USER_AGENTS)
            context["page"] = {
                "path": path,
                "referrer": "https://www.google.com/",
                "search": "",
                "title": title,
                "url": f"https://app.northwind.example{path}",
            }
        return _User(
            user_id=uid,
            anonymous_id=self.uuid(),
            traits=traits,
            context=context,
            convo_id=f"convo_{rng.getrandbits(64):016x}",
        )

    # -- the common Segment fields ----------------------------------------------------------

    def _envelope(self, user: _User) -> dict[str, Any]:
        """The fields every call carries, for :mod:`~segment_raindrop_tools.events`' shapes."""
        self._clock += timedelta(milliseconds=self._rng.randrange(150, 45_000))
        original = self._clock
        sent = original + timedelta(milliseconds=self._rng.randrange(5, 900))
        received = sent + timedelta(milliseconds=self._rng.randrange(20, 300))
        library = user.context["library"]["name"]
        prefix = {"analytics.js": "ajs-next-", "@segment/analytics-node": "node-next-"}.get(
            library, ""
        )
        return {
            "messageId": f"{prefix}{self.uuid()}",
            "userId": user.user_id,
            "anonymousId": user.anonymous_id,
            "context": json.loads(json.dumps(user.context)),  # a copy, like a real payload
            "integrations": {"All": True, "Mixpanel": False, "Amplitude": {"session_id": 1}},
            "timestamp": iso(original),
            "originalTimestamp": iso(original),
            "sentAt": iso(sent),
            "receivedAt": iso(received),
            "channel": "browser" if library == "analytics.js" else "server",
            "version": 2,
        }

    def _text(self, phrases: tuple[str, ...], chars: int) -> str:
        parts: list[str] = []
        size = 0
        while size < chars:
            phrase = self._rng.choice(phrases)
            parts.append(phrase)
            size += len(phrase) + 1
        return " ".join(parts)[:chars].rstrip() or phrases[0][:chars]

    # -- the events -------------------------------------------------------------------------

    def chat_completed(
        self, user: _User, *, ai_data_as_string: bool | None = None, history: int = 0
    ) -> Event:
        """``history``: how many earlier messages of the conversation the input repeats."""
        rng = self._rng
        self._turns += 1
        prompt = self._text(_PROMPT_PHRASES, self._prompt_chars)
        answer = self._text(_ANSWER_PHRASES, self._prompt_chars)
        model = rng.choice(_MODELS)
        messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        if history > 0:
            messages += user.history[-history:]
        messages.append({"role": "user", "content": prompt})
        with_ids = rng.random() < 0.6
        ai_data = events.ai_data(
            messages,
            answer,
            model=model if with_ids else None,
            convo_id=user.convo_id if with_ids else None,
        )
        trace_id = f"tr_{self.uuid().replace('-', '')}"
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4 + 7
        completion_tokens = len(answer) // 4 + 1
        if ai_data_as_string is None:
            ai_data_as_string = self._turns % 3 == 0
        envelope = self._envelope(user)
        properties = {
            "trace_id": trace_id,
            "convo_id": user.convo_id,
            "model": model,
            "latency_ms": rng.randrange(280, 9_000),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "temperature": rng.choice((0, 0.2, 0.7, 1)),
            "finish_reason": rng.choice(("stop", "stop", "stop", "length")),
            "ai_data": (json.dumps(ai_data, ensure_ascii=False) if ai_data_as_string else ai_data),
        }
        event = events.track_call(events.AI_CHAT, properties, **envelope)
        user.history += [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer},
        ]
        user.last_trace_id = trace_id
        return event

    def tool_called(self, user: _User) -> Event:
        rng = self._rng
        tool, arguments = rng.choice(_TOOLS)
        envelope = self._envelope(user)
        properties = {
            "trace_id": f"tr_{self.uuid().replace('-', '')}",
            "parent_trace_id": user.last_trace_id,
            "convo_id": user.convo_id,
            "model": rng.choice(_MODELS),
            "tool_name": tool,
            "latency_ms": rng.randrange(20, 2_500),
            "success": rng.random() < 0.9,
            "ai_data": {
                "input": arguments,
                "output": {"status": "ok", "results": rng.randrange(0, 12)},
            },
        }
        return events.track_call(events.AI_TOOL, properties, **envelope)

    def edit(self, user: _User, chat: Event) -> Event:
        """An edit signal: the user corrected the code ``chat`` attached to its answer."""
        [attachment] = chat["properties"]["attachments"]
        properties = {
            "trace_id": chat["properties"]["trace_id"],
            "signal_type": "edit",
            "signal_name": "code_edited",
            "attachment_id": attachment["attachment_id"],
            "after": _EDITED_QUERY,
        }
        return events.track_call(events.AI_FEEDBACK, properties, **self._envelope(user))

    def feedback(self, user: _User) -> Event:
        rng = self._rng
        envelope = self._envelope(user)
        properties: dict[str, Any] = {
            "trace_id": user.last_trace_id or f"tr_{self.uuid().replace('-', '')}",
            "sentiment": rng.choice(("positive", "Negative", "POSITIVE", "negative")),
            "rating": rng.randrange(1, 6),
        }
        if rng.random() < 0.7:
            properties["comment"] = rng.choice(_COMMENTS)
        if rng.random() < 0.3:
            properties["signal_name"] = "thumbs"
        return events.track_call(events.AI_FEEDBACK, properties, **envelope)

    def identify(self, user: _User) -> Event:
        rng = self._rng
        envelope = self._envelope(user)
        traits = {
            **json.loads(json.dumps(user.traits)),
            "created_at": "2024-11-02T08:15:00.000Z",
            "address": {"city": rng.choice(("München", "Paris", "東京", "Austin")), "zip": None},
            "roles": ["admin", "billing"] if rng.random() < 0.3 else ["member"],
            "onboarded": rng.random() < 0.8,
            "seats": rng.randrange(1, 250),
            "nps": None,
        }
        return events.identify_call(traits, **envelope)

    def page(self, user: _User) -> Event:
        path, title = self._rng.choice(_PAGES)
        envelope = self._envelope(user)
        properties = {
            "path": path,
            "referrer": "",
            "search": "",
            "title": title,
            "url": f"https://app.northwind.example{path}",
        }
        return events.page_call(title.split(" · ")[0], properties, **envelope)

    def order_completed(self, user: _User) -> Event:
        rng = self._rng
        lines = [
            (product, rng.randrange(1, 5))
            for product in rng.sample(_PRODUCTS, rng.randrange(1, len(_PRODUCTS) + 1))
        ]
        products = [
            {"product_id": pid, "sku": sku, "name": name, "price": price, "quantity": quantity}
            for (pid, sku, name, price), quantity in lines
        ]
        revenue = round(sum(price * quantity for (_, _, _, price), quantity in lines), 2)
        envelope = self._envelope(user)
        properties = {
            "order_id": f"ord_{rng.getrandbits(40):010x}",
            "currency": "EUR",
            "revenue": revenue,
            "tax": round(revenue * 0.19, 2),
            "products": products,
        }
        return events.track_call(events.ORDER_COMPLETED, properties, **envelope)


# The code the first answer of a conversation attaches, and the user's corrected version.
_QUERY: Final = (
    "SELECT date_trunc('day', ts) AS day, count(DISTINCT user_id) AS active_users\n"
    "FROM events\nGROUP BY 1\nORDER BY 1;"
)
_EDITED_QUERY: Final = (
    "SELECT date_trunc('day', ts) AS day, count(DISTINCT user_id) AS active_users\n"
    "FROM events\nWHERE ts >= now() - interval '30 days'\nGROUP BY 1\nORDER BY 1;"
)


def _with_attachment(chat: Event) -> Event:
    """``chat`` with the answer's code as a Raindrop attachment (``properties.attachments``)."""
    trace_id = chat["properties"]["trace_id"]
    chat["properties"]["attachments"] = [
        {
            "type": "code",
            "role": "output",
            "language": "sql",
            "name": "active_users.sql",
            "value": _QUERY,
            "attachment_id": f"att_{trace_id.removeprefix('tr_')[:12]}",
        }
    ]
    return chat


def conversation(
    user_id: str = "usr_4f1c9e2a7b30",
    *,
    seed: int = 0,
    turns: int = 4,
    prompt_chars: int = 400,
    start: datetime = DEFAULT_START,
) -> list[Event]:
    """One user's session with the assistant, in order.

    ``turns`` ``AI Chat Completed`` events (the input is the whole message list so far, as chat
    apps resend it; every third turn carries ``ai_data`` as a JSON string; the first answer
    attaches a SQL query), an ``AI Tool Called`` after the first turn, then an edit signal
    (the user corrected the attached query), and an ``AI Feedback Submitted`` about the last
    turn.
    """
    traffic = _Traffic(seed, start, prompt_chars)
    user = traffic.user(user_id)
    events: list[Event] = []
    for turn in range(max(1, turns)):
        events.append(
            traffic.chat_completed(user, ai_data_as_string=turn % 3 == 2, history=2 * turn)
        )
        if turn == 0:
            first = _with_attachment(events[0])
            events.append(traffic.tool_called(user))
            events.append(traffic.edit(user, first))
    events.append(traffic.feedback(user))
    return events


def chat_completed(
    user_id: str = "usr_4f1c9e2a7b30",
    *,
    seed: int = 0,
    prompt_chars: int = 400,
    ai_data_as_string: bool = False,
) -> Event:
    """One ``AI Chat Completed`` track event."""
    traffic = _Traffic(seed, DEFAULT_START, prompt_chars)
    return traffic.chat_completed(traffic.user(user_id), ai_data_as_string=ai_data_as_string)


def tool_called(user_id: str = "usr_4f1c9e2a7b30", *, seed: int = 0) -> Event:
    """One ``AI Tool Called`` track event (arguments and result as objects in ``ai_data``)."""
    traffic = _Traffic(seed, DEFAULT_START, 400)
    return traffic.tool_called(traffic.user(user_id))


def feedback(user_id: str = "usr_4f1c9e2a7b30", *, seed: int = 0) -> Event:
    """One ``AI Feedback Submitted`` with a comment and a sentiment."""
    traffic = _Traffic(seed, DEFAULT_START, 400)
    event = traffic.feedback(traffic.user(user_id))
    event["properties"]["comment"] = _COMMENTS[0]
    return event


def identify(user_id: str = "usr_4f1c9e2a7b30", *, seed: int = 0) -> Event:
    """One ``identify`` with nested traits, a list and nulls."""
    traffic = _Traffic(seed, DEFAULT_START, 400)
    return traffic.identify(traffic.user(user_id))


def page(user_id: str = "usr_4f1c9e2a7b30", *, seed: int = 0) -> Event:
    """One ``page`` call (not forwarded)."""
    traffic = _Traffic(seed, DEFAULT_START, 400)
    return traffic.page(traffic.user(user_id))


def order_completed(user_id: str = "usr_4f1c9e2a7b30", *, seed: int = 0) -> Event:
    """One ``Order Completed`` track event (not an AI event, so not forwarded)."""
    traffic = _Traffic(seed, DEFAULT_START, 400)
    return traffic.order_completed(traffic.user(user_id))


def batch(
    n: int,
    seed: int = 0,
    prompt_chars: int = 400,
    *,
    start: datetime = DEFAULT_START,
) -> list[Event]:
    """``n`` events resembling an AI product's traffic, interleaved across users.

    Mostly ``AI Chat Completed``, some tool calls, feedback, identifies and non-AI noise
    (``page``, ``Order Completed``). Every AI event in it is valid, so all of them map. Each
    chat input is ``[system, user]`` with a ``prompt_chars``-long prompt and an answer as long;
    a third of them carry ``ai_data`` as a JSON string.
    """
    traffic = _Traffic(seed, start, prompt_chars)
    rng = random.Random(seed ^ 0x5EED)  # noqa: S311 (sample data, not secrets)
    users = [traffic.user() for _ in range(max(1, n // 25))]
    kinds = [kind for kind, _ in _TRAFFIC_MIX]
    weights = [weight for _, weight in _TRAFFIC_MIX]
    events: list[Event] = []
    for kind in rng.choices(kinds, weights, k=max(0, n)):
        user = rng.choice(users)
        if kind == "chat":
            events.append(traffic.chat_completed(user))
        elif kind == "tool":
            events.append(traffic.tool_called(user))
        elif kind == "feedback":
            events.append(traffic.feedback(user))
        elif kind == "identify":
            events.append(traffic.identify(user))
        elif kind == "page":
            events.append(traffic.page(user))
        else:
            events.append(traffic.order_completed(user))
    return events


def chats(
    n: int,
    seed: int = 0,
    prompt_chars: int = 400,
    *,
    start: datetime = DEFAULT_START,
) -> list[Event]:
    """``n`` ``AI Chat Completed`` events of 40 users: every one of them is forwarded.

    Each carries Segment's usual ``context`` and a ``prompt_chars``-long prompt and answer; with
    ``prompt_chars=20`` an event is about 1.2 KB of compact JSON.
    """
    traffic = _Traffic(seed, start, prompt_chars)
    rng = random.Random(seed ^ 0xC4A7)  # noqa: S311 (sample data, not secrets)
    users = [traffic.user() for _ in range(40)]
    return [traffic.chat_completed(rng.choice(users)) for _ in range(max(0, n))]


def short_chats(n: int, seed: int = 19) -> list[Event]:
    """``n`` ``AI Chat Completed`` events of about 1.2 KB each: a short prompt and answer and
    Segment's usual ``context`` (library, ip, locale, timezone, traits), no ``integrations``."""
    events = chats(n, seed=seed, prompt_chars=20)
    for event in events:
        event.pop("integrations")
        event["context"]["traits"].pop("company")
    return events


def body(events: list[Event]) -> bytes:
    """``events`` as a Webhooks (Actions) batched request body (a compact JSON array)."""
    return json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
