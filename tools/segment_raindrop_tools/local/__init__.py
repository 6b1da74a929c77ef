"""Local mode: a moto server holding the forwarder's AWS resources and a Raindrop stand-in.

Used by ``segment-raindrop local``, the integration tests and the benchmarks; never by the
deployed functions.
"""

from segment_raindrop_tools.local.aws import (
    LocalResources,
    MotoServer,
    drain_messages,
    drain_queue,
    peek_messages,
    peek_queue,
    provision,
    queue_depth,
    start_moto_server,
)
from segment_raindrop_tools.local.receiver import (
    ENDPOINTS,
    Fault,
    RaindropReceiver,
    RecordedRequest,
    check_raindrop_items,
)

__all__ = [
    "ENDPOINTS",
    "Fault",
    "LocalResources",
    "MotoServer",
    "RaindropReceiver",
    "RecordedRequest",
    "check_raindrop_items",
    "drain_messages",
    "drain_queue",
    "peek_messages",
    "peek_queue",
    "provision",
    "queue_depth",
    "start_moto_server",
]
