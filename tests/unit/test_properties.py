"""Property-based tests: for any Segment-shaped input the mapper accounts for every event
exactly once, never raises, and never produces an item Raindrop's models reject; chunking
keeps every item exactly once within its bounds.

Profiles: ``unit`` (default, quick) and ``thorough``; pick one with
``SEGMENT_RAINDROP_HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.chunks import chunks_of, event_indices
from tests.support.raindrop_models import MODEL_FOR_ENDPOINT

from segment_raindrop.core.chunking import Chunk
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.items import MappedItem, MapResult
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop.core.request_auth import AuthMethod, authenticate
from segment_raindrop.core.segment_body import BodyError, first_array_element_text, parse_body

settings.register_profile(
    "unit",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile(os.environ.get("SEGMENT_RAINDROP_HYPOTHESIS_PROFILE", "unit"))

# -- strategies --------------------------------------------------------------------------------


def mostly(
    usual: st.SearchStrategy[Any], unusual: st.SearchStrategy[Any], percent: int = 80
) -> st.SearchStrategy[Any]:
    """``usual`` about ``percent``% of the time. (``st.one_of`` flattens nested ``one_of``s, so
    it cannot weight a short list of plausible values against a wide strategy of odd ones.)"""
    return st.integers(0, 99).flatmap(lambda n: usual if n < percent else unusual)


SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Mostly ordinary unicode; sometimes a lone UTF-16 surrogate, which JSON can carry as an escape.
TEXT = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(st.characters(), SURROGATES), max_size=6).map("".join),
    st.sampled_from(["", " ", "null", "{}", "[1,", "AI ", "日本語 🌍", "positive", "NEGATIVE"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
IDS = st.one_of(st.sampled_from(["user-1", "user-2", "anon-1", "tr-1", "m-1", ""]), TEXT, SCALARS)


def _tz(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


DATETIMES = st.datetimes(timezones=st.one_of(st.none(), st.integers(-1439, 1439).map(_tz)))
TIMESTAMPS = st.one_of(
    DATETIMES.map(lambda d: d.isoformat()),
    DATETIMES.map(lambda d: d.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")),
    st.sampled_from(["yesterday", "2025-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00"]),
    TEXT,
    SCALARS,
)
MESSAGES = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant"]), "content": TEXT}
    ),
    max_size=3,
)
AI_CONTENT = st.one_of(TEXT, MESSAGES, JSON_VALUES)
AI_DATA_OBJECTS = st.fixed_dictionaries(
    {},
    optional={"input": AI_CONTENT, "output": AI_CONTENT, "model": IDS, "convo_id": IDS},
)
AI_DATA = st.one_of(
    AI_DATA_OBJECTS,
    AI_DATA_OBJECTS.map(json.dumps),  # a JSON string holding the object
    TEXT,  # garbage
    JSON_VALUES,
)
PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "ai_data": AI_DATA,
        "trace_id": IDS,
        "model": IDS,
        "convo_id": IDS,
        "comment": st.one_of(TEXT, SCALARS),
        "sentiment": st.one_of(st.sampled_from(["positive", "Negative", "MEH"]), SCALARS),
        "signal_name": st.one_of(TEXT, SCALARS),
        "latency_ms": st.one_of(st.integers(0, 60_000), SCALARS),
        "nested": JSON_VALUES,
    },
)
TRAITS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)
CONTEXT = st.fixed_dictionaries(
    {}, optional={"traits": st.one_of(TRAITS, JSON_VALUES), "ip": TEXT, "library": JSON_VALUES}
)
EVENT_NAMES = st.one_of(
    st.sampled_from(
        [
            "AI Chat Completed",
            "AI Tool Called",
            "AI Feedback Submitted",
            "AI ",
            "Order Completed",
            "Prompt Sent",
            "Thumbs",
        ]
    ),
    TEXT,
    SCALARS,
)
TYPES = st.one_of(
    st.sampled_from(["track", "track", "track", "identify", "page", "screen", "group"]),
    st.sampled_from(["alias", "delete", "Track", ""]),
    SCALARS,
)


PLAUSIBLE_AI_DATA_OBJECTS = st.fixed_dictionaries(
    {"input": mostly(st.one_of(TEXT, MESSAGES), AI_CONTENT), "output": mostly(TEXT, AI_CONTENT)},
    optional={"model": IDS, "convo_id": IDS},
)
PLAUSIBLE_PROPERTIES = st.fixed_dictionaries(
    {
        "trace_id": mostly(st.sampled_from(["tr-1", "tr-2"]), IDS),
        "ai_data": mostly(
            st.one_of(PLAUSIBLE_AI_DATA_OBJECTS, PLAUSIBLE_AI_DATA_OBJECTS.map(json.dumps)),
            AI_DATA,
        ),
    },
    optional={
        "model": IDS,
        "convo_id": IDS,
        "comment": mostly(st.sampled_from(["Great", "Wrong answer 👎"]), st.one_of(TEXT, SCALARS)),
        "sentiment": mostly(st.sampled_from(["positive", "Negative", "MEH"]), SCALARS),
        "signal_name": st.one_of(TEXT, SCALARS),
        "latency_ms": st.integers(0, 60_000),
        "nested": JSON_VALUES,
    },
)
PLAUSIBLE_TIMESTAMPS = mostly(DATETIMES.map(lambda d: d.isoformat()), TIMESTAMPS)
PLAUSIBLE_TRAITS = st.dictionaries(
    st.sampled_from(["email", "name", "plan", "company", "roles", "nps", "seats"]),
    JSON_VALUES,
    max_size=4,
)

# Events close to real ones (each field still sometimes of the wrong type) and wild ones
# (any field missing or of any type).
PLAUSIBLE_EVENTS = st.fixed_dictionaries(
    {
        "type": mostly(st.sampled_from(["track", "track", "track", "identify"]), TYPES),
        "event": mostly(
            st.sampled_from(["AI Chat Completed", "AI Tool Called", "AI Feedback Submitted"]),
            EVENT_NAMES,
        ),
        "userId": mostly(st.sampled_from(["user-1", "user-2", "user-3"]), IDS),
        "messageId": mostly(st.sampled_from(["m-1", "m-2"]), IDS),
        "timestamp": PLAUSIBLE_TIMESTAMPS,
        "properties": mostly(PLAUSIBLE_PROPERTIES, st.one_of(PROPERTIES, JSON_VALUES)),
    },
    optional={
        "anonymousId": IDS,
        "originalTimestamp": TIMESTAMPS,
        "receivedAt": TIMESTAMPS,
        "sentAt": TIMESTAMPS,
        "traits": mostly(PLAUSIBLE_TRAITS, st.one_of(TRAITS, JSON_VALUES)),
        "context": mostly(
            st.fixed_dictionaries({"traits": PLAUSIBLE_TRAITS}, optional={"ip": TEXT}),
            st.one_of(CONTEXT, JSON_VALUES),
        ),
        "integrations": JSON_VALUES,
    },
)
WILD_EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "type": TYPES,
        "event": EVENT_NAMES,
        "userId": IDS,
        "anonymousId": IDS,
        "messageId": IDS,
        "timestamp": TIMESTAMPS,
        "originalTimestamp": TIMESTAMPS,
        "receivedAt": TIMESTAMPS,
        "sentAt": TIMESTAMPS,
        "properties": st.one_of(PROPERTIES, JSON_VALUES),
        "traits": st.one_of(TRAITS, JSON_VALUES),
        "context": st.one_of(CONTEXT, JSON_VALUES),
        "integrations": JSON_VALUES,
    },
)


def segment_events() -> st.SearchStrategy[dict[str, Any]]:
    return mostly(PLAUSIBLE_EVENTS, WILD_EVENTS, percent=70)


EVENT_LISTS = st.lists(mostly(segment_events(), JSON_VALUES, percent=90), max_size=12)

CONFIGS = st.builds(
    MappingConfig,
    forward_event_prefixes=st.sampled_from([("AI ",), ("AI ", "LLM "), ()]),
    forward_event_names=st.sampled_from([frozenset(), frozenset({"Prompt Sent"})]),
    event_renames=st.sampled_from(
        [{"AI Chat Completed": "ai_interaction"}, {}, {"AI Tool Called": "tool_call"}]
    ),
    feedback_event_names=st.sampled_from(
        [frozenset({"AI Feedback Submitted"}), frozenset({"Thumbs", "AI Feedback Submitted"})]
    ),
    forward_identify=st.booleans(),
    enrich_from_context_traits=st.booleans(),
)


def _no_constants(name: str) -> Any:
    raise AssertionError(f"payload holds {name}, which is not JSON")


def assert_accounted_and_valid(events: list[Any], result: MapResult) -> None:
    indices = range(len(events))
    mapped, filtered, invalid = result.mapped, set(result.filtered), set(result.invalid)
    # Exactly once: the three outcomes are disjoint and together cover every index.
    assert not mapped & filtered
    assert not mapped & invalid
    assert not filtered & invalid
    assert mapped | filtered | invalid == set(indices)
    for reason in [*result.filtered.values(), *result.invalid.values()]:
        assert isinstance(reason, str)
        assert reason
    # Tracks and signals come in event order, then the identifies (held to merge enrichment),
    # at most one primary item and one enrichment per event.
    first_identify = next(
        (i for i, item in enumerate(result.items) if item.endpoint is Endpoint.IDENTIFY),
        len(result.items),
    )
    assert all(item.endpoint is Endpoint.IDENTIFY for item in result.items[first_identify:])
    sources = [item.event_index for item in result.items[:first_identify]]
    assert sources == sorted(sources)
    identify_sources = [item.event_index for item in result.items[first_identify:]]
    assert identify_sources == sorted(set(identify_sources), key=identify_sources.index)
    for source, count in Counter(sources).items():
        assert count <= 2
        if count == 2:
            endpoints = [item.endpoint for item in result.items if item.event_index == source]
            assert endpoints[1] is Endpoint.IDENTIFY
            assert endpoints[0] in {Endpoint.TRACK, Endpoint.SIGNAL}
    # Every payload is strict JSON in UTF-8 that Raindrop's model for its endpoint accepts.
    enriched: list[str] = []
    identified: set[str] = set()
    for item in result.items:
        document = json.loads(item.payload.decode("utf-8"), parse_constant=_no_constants)
        MODEL_FOR_ENDPOINT[item.endpoint].model_validate(document)
        if item.endpoint is Endpoint.IDENTIFY:
            is_track = events[item.event_index].get("type") == "track"
            assert item.optional is is_track
            (enriched.append if is_track else identified.add)(document["user_id"])
    # Enrichment: one users/identify per user per request, merged into the user's explicit
    # identify when the request has one.
    assert len(enriched) == len(set(enriched))
    assert not identified & set(enriched)


def encode(events: list[Any], shape: str) -> bytes:
    document: Any = events if shape == "array" else {"batch": events, "context": {"ip": "1.2.3.4"}}
    # ensure_ascii: lone surrogates travel as \\udXXX escapes, as JSON.stringify writes them.
    return json.dumps(document).encode("ascii")


# -- mapping -------------------------------------------------------------------------------------


@PROFILE
@given(events=EVENT_LISTS, config=CONFIGS, shape=st.sampled_from(["array", "batch"]))
def test_every_event_accounted_for_once_and_every_item_valid(
    events: list[Any], config: MappingConfig, shape: str
) -> None:
    parsed = parse_body(encode(events, shape))
    assert len(parsed.events) == len(events)
    result = map_events(parsed.events, config)
    assert_accounted_and_valid(parsed.events, result)


@PROFILE
@given(events=st.lists(JSON_VALUES, max_size=8), config=CONFIGS)
def test_map_events_never_raises_on_any_json(events: list[Any], config: MappingConfig) -> None:
    result = map_events(events, config)
    assert_accounted_and_valid(events, result)


@PROFILE
@given(event=segment_events())
def test_single_event_outcome_does_not_depend_on_its_neighbours(event: dict[str, Any]) -> None:
    # Enrichment aside (it is per request), an event maps the same alone or in a batch.
    config = MappingConfig(enrich_from_context_traits=False)
    alone = map_events([event], config)
    among = map_events([{"type": "track", "event": "AI x"}, event, None], config)
    assert [item.payload for item in alone.items] == [
        item.payload for item in among.items if item.event_index == 1
    ]
    assert alone.filtered.get(0) == among.filtered.get(1)
    assert alone.invalid.get(0) == among.invalid.get(1)


# -- chunking ----------------------------------------------------------------------------------

ITEMS = st.lists(
    st.builds(
        lambda endpoint, text, source: MappedItem(
            endpoint, json.dumps({"t": text}).encode(), source
        ),
        st.sampled_from(list(MODEL_FOR_ENDPOINT)),
        st.text(max_size=300),
        st.integers(0, 50),
    ),
    max_size=60,
)


def assert_chunks(
    items: list[MappedItem], chunks: list[Chunk], max_items: int, max_bytes: int
) -> None:
    # Every item exactly once, in its endpoint's arrival order.
    assert Counter(id(item) for chunk in chunks for item in chunk.items) == Counter(
        id(item) for item in items
    )
    for endpoint in Endpoint:
        got = [item for chunk in chunks if chunk.endpoint is endpoint for item in chunk.items]
        assert got == [item for item in items if item.endpoint is endpoint]
    previous: dict[Endpoint, Chunk] = {}
    for chunk in chunks:
        assert chunk.items
        assert all(item.endpoint is chunk.endpoint for item in chunk.items)
        assert len(chunk.items) <= max_items
        body = chunk.body
        assert len(body) <= max_bytes or len(chunk.items) == 1
        assert json.loads(body) == [json.loads(item.payload) for item in chunk.items]
        assert event_indices(chunk) == {item.event_index for item in chunk.items}
        # Greedy: the previous chunk of this endpoint could not also take this chunk's first item.
        before = previous.get(chunk.endpoint)
        if before is not None:
            grown = Chunk(chunk.endpoint, (*before.items, chunk.items[0]))
            assert len(grown.items) > max_items or len(grown.body) > max_bytes
        previous[chunk.endpoint] = chunk


@PROFILE
@given(items=ITEMS, max_items=st.integers(1, 12), max_bytes=st.integers(2, 3_000))
def test_chunking_keeps_every_item_once_within_bounds(
    items: list[MappedItem], max_items: int, max_bytes: int
) -> None:
    chunks = chunks_of(items, max_items=max_items, max_bytes=max_bytes)
    assert_chunks(items, chunks, max_items, max_bytes)
    for chunk in chunks:
        first, second = chunk.halves()
        assert first.items + second.items == chunk.items


@PROFILE
@given(
    events=EVENT_LISTS,
    max_items=st.integers(1, 10),
    max_bytes=st.integers(1_024, 4_096),
)
def test_mapped_events_chunk_within_bounds(
    events: list[Any], max_items: int, max_bytes: int
) -> None:
    result = map_events(parse_body(encode(events, "array")).events, MappingConfig())
    chunks = chunks_of(result.items, max_items=max_items, max_bytes=max_bytes)
    assert_chunks(result.items, chunks, max_items, max_bytes)
    assert {source for chunk in chunks for source in event_indices(chunk)} == result.mapped


# -- parsing and the first-element signature ---------------------------------------------------

WHITESPACE = st.text(alphabet=" \t\r\n", max_size=3)


@PROFILE
@given(value=JSON_VALUES)
def test_parse_body_returns_events_or_body_error(value: Any) -> None:
    raw = json.dumps(value).encode()
    batch = value.get("batch") if isinstance(value, dict) else None
    acceptable = isinstance(value, list) or (
        isinstance(value, dict) and (batch is None or isinstance(batch, list))
    )
    if acceptable:
        parsed = parse_body(raw)
        assert isinstance(parsed.events, list)
        if isinstance(value, list):
            assert parsed.events == json.loads(raw)  # (a surrogate pair becomes one character)
    else:
        with pytest.raises(BodyError):
            parse_body(raw)


@PROFILE
@given(
    elements=st.lists(JSON_VALUES, min_size=1, max_size=4),
    gaps=st.lists(WHITESPACE, min_size=12, max_size=12),
    compact=st.booleans(),
)
def test_first_array_element_text_is_the_raw_first_element(
    elements: list[Any], gaps: list[str], compact: bool
) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    texts = [
        json.dumps(element, separators=separators, ensure_ascii=compact) for element in elements
    ]
    body = gaps[0] + "[" + gaps[1] + (gaps[2] + "," + gaps[3]).join(texts) + gaps[4] + "]" + gaps[5]
    assert first_array_element_text(body) == texts[0]
    # The same text is what authenticate() verifies an X-Signature against.
    secret = "s3cret"
    signature = hmac.new(
        secret.encode(), texts[0].encode("utf-8", "surrogatepass"), hashlib.sha1
    ).hexdigest()
    body_bytes = body.encode("utf-8", "surrogatepass")
    decision = authenticate(
        {"x-signature": signature}, body_bytes, webhook_token=None, shared_secret=secret
    )
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        assert not decision.ok  # a raw lone surrogate is not UTF-8: not a body Segment sends
    else:
        if len(elements) == 1:
            assert decision.method is AuthMethod.SIGNATURE_FIRST_ELEMENT
        else:
            assert decision.unverifiable  # recognised, but it does not cover events 2..n
