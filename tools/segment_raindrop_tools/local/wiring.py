"""How local mode plugs the forwarder's real handlers into its local resources.

The configuration is built from values (local mode's options and what it provisioned), and each
handler gets its runtime through ``LazyRuntime.use``: nothing goes through ``os.environ``, so
local mode leaves the process environment as it found it.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

import httpx

from segment_raindrop.core.config import DeliveryConfig, ForwarderConfig, MirrorConfig
from segment_raindrop.handlers import eventbridge, raindrop_sdk, replay, retry_worker, webhook
from segment_raindrop.service.runtime import LazyRuntime, Runtime, build_runtime
from segment_raindrop_tools.local.aws import LocalResources, forwarder_clients
from segment_raindrop_tools.local.eventbridge import local_source
from segment_raindrop_tools.local.options import LocalOptions

__all__ = ["HANDLERS", "forwarder_config", "install_runtimes", "remove_runtimes"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# The handlers local mode serves (webhook, mirror, retry worker, EventBridge intake) and the
# one an operator may invoke.
HANDLERS: tuple[LazyRuntime, ...] = (
    webhook.runtime,
    raindrop_sdk.runtime,
    retry_worker.runtime,
    replay.runtime,
    eventbridge.runtime,
)


def forwarder_config(
    options: LocalOptions,
    resources: LocalResources,
    *,
    raindrop_url: str,
    segment_url: str | None = None,
    partials_table: str | None = None,
) -> ForwarderConfig:
    """The forwarder's configuration: the operator's settings, local mode's resources (and,
    given ``segment_url``, the mirror's Segment stand-in and partial-events table)."""
    mirror_config = (
        MirrorConfig(segment_api_url=segment_url, partials_table=partials_table)
        if segment_url is not None
        else MirrorConfig(enabled=False)
    )
    delivery = DeliveryConfig.model_validate(
        {**options.delivery.model_dump(), "raindrop_api_url": raindrop_url}
    )
    return ForwarderConfig(
        secret_id=resources.secret_id,
        retry_queue_url=resources.retry_queue_url,
        dlq_url=resources.dlq_url,
        # The redrive policy's number, as the stack makes the two agree.
        retry_max_attempts=resources.retry_max_receives,
        retry_base_delay_seconds=options.retry_base_delay_seconds,
        max_body_bytes=options.max_body_bytes,
        mapping=options.mapping,
        delivery=delivery,
        mirror=mirror_config,
        # The EventBridge intake's partner source (local mode provisions this one).
        segment_event_sources={local_source(options.resource_prefix): None},
    )


def _direct_transport(delivery: DeliveryConfig) -> httpx.HTTPTransport:
    # A transport of our own keeps httpx from routing 127.0.0.1 through a proxy named in the
    # operator's environment; with the limits the client would give its default transport.
    return httpx.HTTPTransport(
        limits=httpx.Limits(
            max_connections=delivery.concurrency,
            max_keepalive_connections=delivery.concurrency,
        )
    )


def _runtime(
    config: ForwarderConfig,
    resources: LocalResources,
    source: str,
    *,
    local_raindrop: bool,
    sqs_endpoint: str | None,
) -> Runtime:
    if resources.endpoint_url is None:
        raise ValueError("local mode's resources have no local endpoint")
    return build_runtime(
        config,
        source=source,
        aws=forwarder_clients(
            resources.endpoint_url, resources.region, sqs_endpoint_url=sqs_endpoint
        ),
        transport=_direct_transport(config.delivery) if local_raindrop else None,
    )


def install_runtimes(
    config: ForwarderConfig, resources: LocalResources, *, sqs_endpoint: str | None = None
) -> None:
    """Every handler builds its runtime from ``config`` and clients bound to ``resources``.

    A Raindrop on this machine is reached directly, never through a proxy; any other the way
    the operator's environment says (proxies included).
    """
    local_raindrop = urlsplit(config.delivery.raindrop_api_url).hostname in _LOOPBACK
    for handler in HANDLERS:
        handler.use(
            functools.partial(
                _runtime,
                config,
                resources,
                handler.source,
                local_raindrop=local_raindrop,
                sqs_endpoint=sqs_endpoint,
            )
        )


def remove_runtimes() -> None:
    """The handlers build their runtimes from the environment again, as in Lambda."""
    for handler in HANDLERS:
        handler.use(None)
