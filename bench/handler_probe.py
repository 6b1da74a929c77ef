"""Runs inside a fresh interpreter whose only path is the Lambda bundle: a cold start, timed.

Run as ``python -I -S bench/handler_probe.py BUNDLE EVENT_FILE WARM_CALLS``. The process
environment is the function's (the parent passes what the stack would set, with AWS pointed
at a local moto server), so the handler builds its runtime exactly as in Lambda: from the
environment, on the first invocation. Prints one JSON object of seconds:

- ``import``: ``import segment_raindrop.handlers.webhook``;
- ``first``: the first ``handler(event, context)``, which builds the runtime, reads the
  secret and delivers the batch;
- ``warm``: the median of ``WARM_CALLS`` later calls with the same event;
- ``floor``: the median of as many ``json.loads`` + ``json.dumps`` of the same body, each
  right after a warm call.

Only the standard library is imported here besides the bundle, and nothing from ``bench``,
so no development package can slip into what is measured.
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any


class LambdaContext:
    """The parts of Lambda's context object the handler and Powertools read."""

    function_name = "segment-raindrop-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:segment-raindrop-bench"
    log_group_name = "/aws/lambda/segment-raindrop-bench"
    log_stream_name = "bench"

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _seconds(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _call(handler: Any, event: dict[str, Any]) -> None:
    response = handler(event, LambdaContext())
    if response["statusCode"] != 200:
        raise SystemExit(f"the handler answered {response['statusCode']}: {response['body']}")
    counts = json.loads(response["body"])
    if counts["queued"] or counts["dead_lettered"]:
        raise SystemExit(f"not every event was delivered: {counts}")


def main() -> None:
    bundle, event_file, warm_calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    event: dict[str, Any] = json.loads(Path(event_file).read_text(encoding="utf-8"))
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"]
    sys.path.insert(0, bundle)

    started = time.perf_counter()
    from segment_raindrop.handlers.webhook import handler  # noqa: PLC0415 - the import is what is timed

    imported = time.perf_counter()
    _call(handler, event)
    first_done = time.perf_counter()

    # Alternating, so that a neighbour's burst of work slows both alike.
    warm, floor = [], []
    for _ in range(warm_calls):
        warm.append(_seconds(lambda: _call(handler, event)))
        floor.append(_seconds(lambda: json.dumps(json.loads(body)).encode()))
    result = {
        "import": imported - started,
        "first": first_done - imported,
        "warm": statistics.median(warm),
        "floor": statistics.median(floor),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
