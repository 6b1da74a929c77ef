"""Local mode: the forwarder's real handlers wired together on 127.0.0.1.

:class:`LocalMode` starts, in this process:

- a moto server holding the forwarder's secret, retry queue and dead-letter queue
  (:func:`~segment_raindrop_tools.local.aws.provision`);
- a Raindrop stand-in (:class:`~segment_raindrop_tools.local.receiver.RaindropReceiver`) whose
  accepted items are printed and appended to a JSONL file, unless a real Raindrop URL and key
  are given, in which case nothing local stands in for Raindrop;
- the webhook over HTTP (:mod:`~segment_raindrop_tools.local.front`), serving ``POST /segment``
  and ``POST /v1/batch``, the path Segment's own libraries post to;
- the mirror (Raindrop's SDK pointed at ``/raindrop/v1/``): a Segment Tracking API stand-in
  (:mod:`~segment_raindrop_tools.local.segment_tracking`) recording the mirrored batches, and
  the partial-events table in moto;
- the retry worker: Lambda's SQS event source on the retry queue
  (:mod:`~segment_raindrop_tools.local.event_source`) feeding
  ``segment_raindrop.handlers.retry_worker.handler``;
- the EventBridge intake: a Segment partner event source and the stack's rule in moto's
  EventBridge, the intake queue (:mod:`~segment_raindrop_tools.local.eventbridge`), and the
  event source feeding ``segment_raindrop.handlers.eventbridge.handler``.

The handlers get their runtimes from a configuration built here
(:mod:`~segment_raindrop_tools.local.wiring`), never from ``os.environ``. Nothing reimplements a
pipeline step: only the translation between HTTP / SQS and the Lambda event formats is local.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any, Self

from segment_raindrop.core.config import DEFAULT_RAINDROP_API_URL
from segment_raindrop.core.contract import RAINDROP_SDK_PATH
from segment_raindrop.handlers import eventbridge, retry_worker, webhook
from segment_raindrop_tools.local.apigw import SDK_API_PREFIX
from segment_raindrop_tools.local.aws import (
    LocalResources,
    provision,
    provision_partials_table,
)
from segment_raindrop_tools.local.console import Console, Echo, banner
from segment_raindrop_tools.local.event_source import BatchRun, SqsEventSource
from segment_raindrop_tools.local.eventbridge import EventBridgeIntake, provision_eventbridge
from segment_raindrop_tools.local.front import Exchange, WebhookFront
from segment_raindrop_tools.local.invocations import SerialInvocations
from segment_raindrop_tools.local.lifecycle import Service
from segment_raindrop_tools.local.logs import ForwarderLogs
from segment_raindrop_tools.local.moto import MotoServer
from segment_raindrop_tools.local.options import HOST, WEBHOOK_PATH, LocalEndpoints, LocalOptions
from segment_raindrop_tools.local.raindrop_items import check_raindrop_items
from segment_raindrop_tools.local.receiver import RaindropReceiver
from segment_raindrop_tools.local.segment_tracking import SegmentTrackingApi
from segment_raindrop_tools.local.state import (
    ENV_FILE,
    ITEMS_FILE,
    SEGMENT_EVENTS_FILE,
    STATE_FILE,
    ItemsLog,
    remove_state_files,
    write_state_files,
)
from segment_raindrop_tools.local.wiring import (
    forwarder_config,
    install_runtimes,
    remove_runtimes,
)

__all__ = ["LocalMode"]


class LocalMode(Service):
    """The whole forwarder on 127.0.0.1; ``start()``, then ``stop()`` (or use ``with``).

    ``echo`` receives every line local mode prints (one per webhook request, per accepted
    Raindrop item and per retry-worker run); :meth:`banner` is the text to show once started.
    Thread-safe. The handlers run one invocation at a time, as in one Lambda execution
    environment (:mod:`~segment_raindrop_tools.local.invocations`).
    """

    def __init__(self, options: LocalOptions | None = None, *, echo: Echo | None = None) -> None:
        self.options = options or LocalOptions()
        self._console = Console(echo)
        self._invocations = SerialInvocations()
        self._records_lock = threading.Lock()
        self._stopping = threading.Event()
        self._moto: MotoServer | None = None
        self._receiver: RaindropReceiver | None = None
        self._segment: SegmentTrackingApi | None = None
        self._front: WebhookFront | None = None
        self._poller: threading.Thread | None = None
        self._intake_poller: threading.Thread | None = None
        self._intake: EventBridgeIntake | None = None
        self._retry_source: SqsEventSource | None = None
        self._resources: LocalResources | None = None
        self._items: ItemsLog | None = None
        self._segment_events: ItemsLog | None = None
        self._endpoints: LocalEndpoints | None = None
        self._logs: ForwarderLogs | None = None
        self._runtimes_installed = False
        self._exchanges: deque[Exchange] = deque(maxlen=10_000)
        self._retry_runs: deque[BatchRun] = deque(maxlen=10_000)
        self._intake_runs: deque[BatchRun] = deque(maxlen=10_000)
        self._started = False
        self._stopped = False

    # Life cycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._started

    def start(self) -> Self:
        if self._started:
            raise RuntimeError("a LocalMode can be started only once")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        if options.raindrop_url and not options.raindrop_api_key:
            raise ValueError("forwarding to a Raindrop URL needs a Raindrop API key")
        data_dir = options.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        # The webhook port first: if it is taken, nothing else has started yet.
        self._front = WebhookFront(
            (HOST, options.port),
            invocations=self._invocations,
            on_exchange=self._record,
            on_handler_error=self._console.webhook_failed,
        )
        self._moto = MotoServer(options.moto_port).start()
        secret = {
            "raindrop_api_key": options.raindrop_api_key or f"rk_local_{secrets.token_hex(12)}",
            "webhook_token": options.webhook_token or f"whk_{secrets.token_hex(16)}",
            "segment_shared_secret": options.shared_secret or f"ss_{secrets.token_hex(16)}",
            "segment_write_key": f"wk_local_{secrets.token_hex(12)}",
        }
        resources = provision(
            endpoint_url=self._moto.endpoint_url,
            region=options.region,
            secret=secret,
            secret_name=f"{options.resource_prefix}/forwarder",
            prefix=options.resource_prefix,
        )
        self._resources = resources
        if options.forwards_to_real_raindrop:
            raindrop_url = (options.raindrop_url or DEFAULT_RAINDROP_API_URL).rstrip("/")
        else:
            self._items = ItemsLog(data_dir / ITEMS_FILE)
            self._receiver = RaindropReceiver(
                host=HOST,
                port=options.receiver_port,
                api_key=secret["raindrop_api_key"],
                validator=check_raindrop_items,
                on_accept=self._on_accept,
            ).start()
            raindrop_url = self._receiver.url
        self._segment_events = ItemsLog(data_dir / SEGMENT_EVENTS_FILE)
        self._segment = SegmentTrackingApi(
            write_key=secret["segment_write_key"], on_accept=self._on_mirrored
        ).start()
        partials_table = provision_partials_table(
            endpoint_url=self._moto.endpoint_url,
            region=options.region,
            name=f"{options.resource_prefix}-partials",
        )
        config = forwarder_config(
            options,
            resources,
            raindrop_url=raindrop_url,
            segment_url=self._segment.url,
            partials_table=partials_table,
        )
        self._logs = ForwarderLogs(
            verbose=options.verbose, data_dir=data_dir, console=self._console
        )
        self._invocations.exclusively(
            lambda: install_runtimes(config, resources, sqs_endpoint=self.options.sqs_endpoint)
        )
        self._runtimes_installed = True
        # Built now, so a bad setting fails at start-up and the first request does not pay for
        # the AWS clients and the secret.
        self._invocations.exclusively(
            lambda: (webhook.runtime.get().secrets.get(), retry_worker.runtime.get())
        )
        self._retry_source = SqsEventSource(
            resources.sqs_client(),
            resources.retry_queue_url,
            retry_worker.handler,
            region=options.region,
        )
        _ = self._retry_source.queue_arn  # looked up once, before any invocation needs it
        self._intake = provision_eventbridge(
            endpoint_url=self._moto.endpoint_url,
            region=options.region,
            sources=tuple(config.segment_event_sources),
            mapping=config.mapping,
            prefix=options.resource_prefix,
        )
        origin = f"http://{HOST}:{self._front.port}"
        # The SDK API's URLs start with its stage, as deployed (SDK_API_PREFIX).
        sdk_api = f"{origin}{SDK_API_PREFIX}"
        self._endpoints = LocalEndpoints(
            webhook_url=f"{origin}{WEBHOOK_PATH}",
            origin=origin,
            tracking_api_host=sdk_api,
            batch_url=f"{sdk_api}/v1/batch",
            webhook_token=secret["webhook_token"],
            shared_secret=secret["segment_shared_secret"],
            moto_endpoint=self._moto.endpoint_url,
            region=options.region,
            secret_id=resources.secret_id,
            retry_queue_url=resources.retry_queue_url,
            dlq_url=resources.dlq_url,
            raindrop_url=raindrop_url,
            local_receiver=self._receiver is not None,
            items_file=str(self._items.path) if self._items else None,
            segment_events_file=str(self._segment_events.path),
            state_file=str(data_dir / STATE_FILE),
            env_file=str(data_dir / ENV_FILE),
            pid=os.getpid(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            raindrop_sdk_endpoint=f"{sdk_api}/{RAINDROP_SDK_PATH}/",
            segment_api_url=self._segment.url,
            # Local mode's own key only: a real Raindrop key is never printed or stored.
            raindrop_api_key=secret["raindrop_api_key"] if self._receiver is not None else None,
            eventbridge_source=self._intake.sources[0],
            intake_queue_url=self._intake.queue_url,
            intake_dlq_url=self._intake.dlq_url,
        )
        self._front.start()
        self._poller = threading.Thread(
            target=self._retry_source.run_until,
            args=(self._stopping,),
            kwargs={
                "wait_seconds": options.retry_poll_seconds,
                "invoke": self._invocations.run,
                "on_run": self._record_retry,
                "on_poll_error": self._console.poll_failed,
            },
            name="local-retry-worker",
            daemon=True,
        )
        self._poller.start()
        self._intake_poller = self._start_intake(resources, self._intake)
        write_state_files(self._endpoints)

    def _start_intake(
        self, resources: LocalResources, intake: EventBridgeIntake
    ) -> threading.Thread:
        """Lambda's SQS event source on the EventBridge intake queue, polling in a thread."""
        source = SqsEventSource(
            resources.sqs_client(),
            intake.queue_url,
            eventbridge.handler,
            region=self.options.region,
            function_name="segment-raindrop-eventbridge",
            batch_size=10,
        )
        _ = source.queue_arn
        poller = threading.Thread(
            target=source.run_until,
            args=(self._stopping,),
            kwargs={
                "wait_seconds": self.options.retry_poll_seconds,
                "invoke": self._invocations.run,
                "on_run": self._record_intake,
                "on_poll_error": self._console.poll_failed,
            },
            name="local-eventbridge-intake",
            daemon=True,
        )
        poller.start()
        return poller

    def stop(self) -> None:
        """Stop everything and give the handlers back their own runtimes (idempotent, never
        raises)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._invocations.close()
        if self._front is not None:
            self._front.stop()
        # The retry worker's invocation in progress, if any, finishes before its queue goes.
        self._invocations.wait_idle()
        # moto's server takes up to half a second to stop and a long poll up to its wait: let
        # them overlap. A long poll still in flight then ends with an error the poller ignores.
        stoppers = [
            threading.Thread(target=component.stop, name=f"local-stop-{name}", daemon=True)
            for name, component in (
                ("receiver", self._receiver),
                ("segment", self._segment),
                ("moto", self._moto),
            )
            if component is not None
        ]
        for stopper in stoppers:
            stopper.start()
        for poller in (self._poller, self._intake_poller):
            if poller is not None:
                # Waiting in a long poll, the worker has nothing to finish: it sees the stop
                # flag when the poll ends, and invokes nothing any more.
                poller.join(0.2)
        for stopper in stoppers:
            stopper.join(10)
        if self._runtimes_installed:
            self._invocations.exclusively(remove_runtimes)
        if self._logs is not None:
            self._logs.close()
        if self._endpoints is not None:
            remove_state_files(self._endpoints)

    # What it exposes ---------------------------------------------------------------------

    @property
    def endpoints(self) -> LocalEndpoints:
        if self._endpoints is None:
            raise RuntimeError("local mode is not running")
        return self._endpoints

    @property
    def receiver(self) -> RaindropReceiver | None:
        """The local Raindrop stand-in; None when forwarding to a real Raindrop."""
        return self._receiver

    @property
    def segment(self) -> SegmentTrackingApi | None:
        """The local Segment Tracking API stand-in the mirror sends to."""
        return self._segment

    @property
    def resources(self) -> LocalResources:
        if self._resources is None:
            raise RuntimeError("local mode is not running")
        return self._resources

    @property
    def exchanges(self) -> list[Exchange]:
        with self._records_lock:
            return list(self._exchanges)

    @property
    def retry_runs(self) -> list[BatchRun]:
        with self._records_lock:
            return list(self._retry_runs)

    @property
    def intake_runs(self) -> list[BatchRun]:
        """The EventBridge intake consumer's invocations."""
        with self._records_lock:
            return list(self._intake_runs)

    def banner(self) -> str:
        return banner(self.endpoints)

    # Records ------------------------------------------------------------------------------

    def _record(self, exchange: Exchange) -> None:
        with self._records_lock:
            self._exchanges.append(exchange)
        self._console.exchange(exchange)

    def _record_retry(self, run: BatchRun) -> None:
        with self._records_lock:
            self._retry_runs.append(run)
        self._console.retry_run(run)

    def _record_intake(self, run: BatchRun) -> None:
        with self._records_lock:
            self._intake_runs.append(run)
        self._console.intake_run(run)

    def _on_accept(self, endpoint: str, items: list[dict[str, Any]]) -> None:
        if self._items is not None:
            self._items.append(endpoint, items)
        self._console.accepted(endpoint, items)

    def _on_mirrored(self, events: list[dict[str, Any]]) -> None:
        if self._segment_events is not None:
            self._segment_events.append("batch", events)
        self._console.mirrored(events)
