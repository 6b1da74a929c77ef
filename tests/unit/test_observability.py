"""When the handlers are traced: pure decisions on an environment, no X-Ray involved.

Whether the X-Ray SDK is really left unimported is checked from the real bundle in a clean
interpreter (tests/infra/test_infra_bundling.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from segment_raindrop.adapters import observability
from segment_raindrop.adapters.observability import traced_handler, tracing_enabled

IN_LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (IN_LAMBDA, True),  # Powertools' default: trace unless told not to
        ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({**IN_LAMBDA, "POWERTOOLS_TRACE_DISABLED": " TRUE "}, False),
        ({**IN_LAMBDA, "AWS_SAM_LOCAL": "true"}, False),
        ({**IN_LAMBDA, "AWS_CHALICE_CLI_MODE": "true"}, False),
        ({}, False),  # tests, local mode, the CLI: no X-Ray daemon to send to
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, False),
        ({"LAMBDA_TASK_ROOT": ""}, False),
    ],
)
def test_tracing_only_inside_lambda_and_when_not_disabled(
    environ: dict[str, str], expected: bool
) -> None:
    assert tracing_enabled(environ) is expected


def test_without_a_tracer_the_handler_is_left_as_it_is() -> None:
    # The test run is not a Lambda environment, so the module built no tracer.
    assert observability.tracer is None

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"seen": event}

    assert traced_handler(handler) is handler
