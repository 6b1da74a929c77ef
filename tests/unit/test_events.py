"""The one Segment event factory: traceable events end as their names say, and keep their seq."""

from __future__ import annotations

import json

from tests.support.segment import is_filtered

from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.mapping.mapper import map_events
from segment_raindrop.core.raindrop_api import Endpoint
from segment_raindrop_tools import events as se


def test_each_traceable_event_maps_as_its_name_says() -> None:
    batch = [se.chat(0), se.feedback(1, about=0), se.identify(2), se.page(3), se.noise(4)]
    result = map_events([*batch, se.invalid(5)], MappingConfig())
    assert sorted(result.filtered) == [3, 4]
    assert sorted(result.invalid) == [5]
    endpoints = {item.event_index: item.endpoint for item in result.items}
    assert endpoints == {0: Endpoint.TRACK, 1: Endpoint.SIGNAL, 2: Endpoint.IDENTIFY}
    [chat] = [item.payload for item in result.items if item.event_index == 0]
    assert json.loads(chat)["event_id"] == "trace-0"


def test_seq_survives_the_mapping_so_deliveries_can_be_traced() -> None:
    batch = se.mixed(30)
    result = map_events(batch, MappingConfig())
    delivered = se.seqs(json.loads(item.payload) for item in result.items)
    assert delivered == {n for n, event in enumerate(batch) if not is_filtered(event)}
    assert se.seqs(batch) == set(range(30))


def test_the_shapes_put_type_and_name_first_and_keep_the_fields_given() -> None:
    event = se.track_call("AI Tool Called", {"a": 1}, messageId="m", userId="u")
    assert list(event) == ["type", "event", "messageId", "userId", "properties"]
    assert se.identify_call({"plan": "pro"}, userId="u") == {
        "type": "identify",
        "userId": "u",
        "traits": {"plan": "pro"},
    }
    assert "properties" not in se.page_call("Home", userId="u")
