"""moto's server on 127.0.0.1: the AWS endpoint of the tests and of local mode.

moto is imported only when a server starts, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from typing import Any, Self

from segment_raindrop_tools.local.lifecycle import Service

__all__ = ["MotoServer", "start_moto_server"]


class MotoServer(Service):
    """moto's threaded server on 127.0.0.1, bound to an ephemeral port unless told otherwise."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: Any = None
        self._port: int | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - imported when used

        if self._server is not None:
            raise RuntimeError("the moto server is already running")
        if self._requested_port:
            _ensure_port_free(self._requested_port)
        _quiet_werkzeug()
        server = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self._requested_port, verbose=False
        )
        server.start()
        self._server = server
        self._port = int(server.get_host_and_port()[1])
        return self

    def stop(self) -> None:
        """Stop serving (idempotent). Takes up to half a second: werkzeug polls at 0.5 s."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def reset(self) -> None:
        """Delete every resource in every moto backend (``POST /moto-api/reset``)."""
        # No proxies: a developer's HTTP(S)_PROXY must not capture traffic meant for 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"{self.endpoint_url}/moto-api/reset"  # always http://127.0.0.1
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with opener.open(request, timeout=10) as response:
            response.read()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the moto server was never started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_moto_server(port: int = 0) -> MotoServer:
    """Start a moto server on 127.0.0.1 (``port=0``: an ephemeral port) and return it."""
    return MotoServer(port).start()


def _ensure_port_free(port: int) -> None:
    # moto's ThreadedMotoServer.start() waits forever when its server thread cannot bind, so a
    # busy port has to be detected before handing it over.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(f"port {port} on 127.0.0.1 is already in use") from exc


def _quiet_werkzeug() -> None:
    # moto's verbose=False only mutes its banner; werkzeug still logs one line per request to
    # stderr unless its logger already has a level, which would drown local mode's output.
    logger = logging.getLogger("werkzeug")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
