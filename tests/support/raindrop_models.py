"""The forwarder's own models of Raindrop's items, by endpoint, to check what mapping makes."""

from __future__ import annotations

from pydantic import BaseModel

from segment_raindrop.core.raindrop_api import Endpoint, Identify, Signal, TrackEvent

MODEL_FOR_ENDPOINT: dict[Endpoint, type[BaseModel]] = {
    Endpoint.TRACK: TrackEvent,
    Endpoint.SIGNAL: Signal,
    Endpoint.IDENTIFY: Identify,
}
