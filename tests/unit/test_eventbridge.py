"""Pure parts of the EventBridge intake: the rule's pattern from the mapping, reading an
envelope, and the partner-source setting."""

from __future__ import annotations

import json

import pytest

from segment_raindrop.core.config import ConfigError, ForwarderConfig, MappingConfig
from segment_raindrop.core.environment import read_config, to_environment
from segment_raindrop.core.eventbridge import (
    MAX_PATTERN_CHARS,
    EnvelopeError,
    event_pattern,
    matches,
    read_envelope,
)
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop_tools import events as se

SOURCE = "aws.partner/segment.com/abc"


def _envelope(event: object, source: str = SOURCE) -> dict[str, object]:
    return {"version": "0", "id": "e-1", "detail-type": "track", "source": source, "detail": event}


def test_the_default_pattern_keeps_what_the_mapping_forwards() -> None:
    pattern = event_pattern(MappingConfig(), [SOURCE])

    assert pattern == {
        "source": [SOURCE],
        "detail": {
            "$or": [
                {"type": ["track"], "event": [{"prefix": "AI "}, "AI Feedback Submitted"]},
                {"type": ["identify"]},
                # Logged as a hash of the user id, never forwarded.
                {"type": ["delete"]},
            ]
        },
    }


@pytest.mark.parametrize(
    "event",
    [se.chat(1), se.feedback(2, about=1), se.identify(3), se.page(4), se.noise(5)],
    ids=["chat", "feedback", "identify", "page", "noise"],
)
def test_the_pattern_agrees_with_the_mapping(event: dict[str, object]) -> None:
    mapping = MappingConfig()
    forwarded = not map_events([event], mapping, user_hash_key=b"k").filtered

    assert matches(event_pattern(mapping, [SOURCE]), _envelope(event)) is forwarded


def test_extra_names_and_no_identify_change_the_pattern() -> None:
    mapping = MappingConfig(forward_event_names=frozenset({"Prompt Sent"}), forward_identify=False)
    pattern = event_pattern(mapping, [SOURCE])

    assert matches(pattern, _envelope(se.track_call("Prompt Sent", {}, userId="u")))
    assert not matches(pattern, _envelope(se.identify(1)))
    assert not matches(pattern, _envelope(se.chat(1), source="aws.partner/segment.com/other"))


def test_a_pattern_too_long_for_eventbridge_keeps_every_track() -> None:
    names = frozenset(f"Event number {n:04d}" for n in range(400))
    pattern = event_pattern(MappingConfig(forward_event_names=names), [SOURCE])

    assert len(json.dumps(pattern)) <= MAX_PATTERN_CHARS
    assert pattern["detail"] == {"type": ["track", "identify", "delete"]}


def test_a_mapping_that_forwards_nothing_has_no_pattern() -> None:
    with pytest.raises(ValueError, match="forwards no event"):
        event_pattern(
            MappingConfig(
                forward_event_prefixes=(),
                feedback_event_names=frozenset(),
                forward_identify=False,
            ),
            [SOURCE],
        )


def test_an_envelope_gives_its_source_and_segment_event() -> None:
    envelope = read_envelope(json.dumps(_envelope(se.chat(1))))

    assert (envelope.source, envelope.detail, envelope.event_id) == (SOURCE, se.chat(1), "e-1")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "record is not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"detail": {}}), "no source"),
        (json.dumps({"source": SOURCE, "detail": "text"}), "no detail object"),
    ],
)
def test_what_is_not_an_envelope_says_why(body: str, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        read_envelope(body)


def test_event_sources_round_trip_through_the_environment() -> None:
    config = ForwarderConfig(
        secret_id="s",
        retry_queue_url="r",
        dlq_url="d",
        segment_event_sources={SOURCE: "team-a", "aws.partner/segment.com/x": None},
    )

    assert read_config(to_environment(config)) == config


@pytest.mark.parametrize(
    ("sources", "problem"),
    [
        ({"aws.partner/segment/abc": None}, "not a Segment partner event source"),
        ({SOURCE: "Team A"}, "not a Raindrop project slug"),
    ],
)
def test_event_sources_are_validated_naming_the_variable(
    sources: dict[str, str | None], problem: str
) -> None:
    env = {
        "RAINDROP_SECRET_ID": "s",
        "RETRY_QUEUE_URL": "r",
        "DLQ_URL": "d",
        "SEGMENT_EVENT_SOURCES": json.dumps(sources),
    }
    with pytest.raises(ConfigError, match=f"SEGMENT_EVENT_SOURCES.*{problem}"):
        read_config(env)


def test_a_hundred_and_twenty_custom_names_fit_eventbridge_s_4096_characters() -> None:
    # The older CloudWatch Events limit (2,048) turned this into "every track".
    names = frozenset(f"Custom Product Event {n:03d}" for n in range(120))
    pattern = event_pattern(MappingConfig(forward_event_names=names), [SOURCE])

    assert 2_048 < len(json.dumps(pattern, separators=(",", ":"))) <= MAX_PATTERN_CHARS
    assert matches(pattern, _envelope(se.track_call("Custom Product Event 042", {}, userId="u")))
    assert not matches(
        pattern, _envelope(se.track_call("Custom Product Event 420", {}, userId="u"))
    )
