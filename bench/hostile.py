"""What a body built to cost costs before it is refused: the decoding step of both routes.

An 11 KB ``Content-Encoding: gzip, gzip`` body of 233,472 empty gzip members once cost most of
a second of CPU before anything else happened. Decoding now stops after ``MAX_GZIP_MEMBERS``
members where compressed bodies are taken (the SDK API: Segment's libraries at ``/v1/batch``,
Raindrop's SDKs at ``/raindrop/v1/``), and where bodies arrive as text (the webhook API's
``/segment``) any compressed body is refused unread. Timed here is ``ApiRequest.decoded_body``,
the step both handlers run (after a token check that costs microseconds), median of repeats.
"""

from __future__ import annotations

import gzip
import statistics
import time
from dataclasses import dataclass
from typing import Final

from segment_raindrop.core.content_encoding import UnsupportedEncoding
from segment_raindrop.core.contract import MAX_DECODED_BODY_BYTES
from segment_raindrop.core.segment_body import BodyError
from segment_raindrop.service.requests import ApiRequest

MEMBERS: Final = 233_472
REPEATS: Final = 25
TARGET_MS: Final = 50.0


@dataclass(frozen=True)
class HostileResult:
    wire_bytes: int
    # Route -> (median milliseconds, the answer's status).
    routes: dict[str, tuple[float, int]]

    def section(self) -> list[str]:
        lines = [
            "",
            "## Bodies built to cost",
            "",
            f"{self.wire_bytes:,} bytes on the wire: {MEMBERS:,} empty gzip members, gzipped again",
            "(`Content-Encoding: gzip, gzip`). The decoding step both handlers run, median of",
            f"{REPEATS}:",
            "",
            "| route | refused in | answer |",
            "| --- | ---: | ---: |",
        ]
        for route, (ms, status) in self.routes.items():
            lines.append(f"| {route} | {ms:.2f} ms | {status} |")
        return lines

    @property
    def slowest_ms(self) -> float:
        return max(ms for ms, _ in self.routes.values())


def _refusal(body: bytes, *, intact: bool) -> tuple[float, int]:
    request = ApiRequest(
        headers={"content-encoding": "gzip, gzip"},
        body=body,
        request_id="bench",
        remaining=lambda: 10.0,
        intact=intact,
    )
    timings: list[float] = []
    status = 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        try:
            request.decoded_body(max_bytes=MAX_DECODED_BODY_BYTES)
        except BodyError:
            status = 400
        except UnsupportedEncoding:
            status = 415
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000, status


def run() -> HostileResult:
    body = gzip.compress(gzip.compress(b"") * MEMBERS, mtime=0)
    return HostileResult(
        wire_bytes=len(body),
        routes={
            "SDK API: `/v1/batch`, `/raindrop/v1/` (decoded)": _refusal(body, intact=True),
            "webhook API: `/segment` (text)": _refusal(body, intact=False),
        },
    )


if __name__ == "__main__":
    result = run()
    print("\n".join(result.section()))
