"""Lambda handler for Segment's webhook requests (API Gateway REST, ``POST /segment``, and
``POST /segment/{project}`` to send a request's events to that Raindrop project).

The routes only admit the request; :mod:`segment_raindrop.service.segment_webhook` does the rest
and says what Segment is told and why. Every refusal is an exception turned into its answer by
:func:`~segment_raindrop.handlers.api.install_refusals`.
"""

from __future__ import annotations

from typing import Any

from segment_raindrop.handlers.loading import handler_loading

# In Lambda the rest loads with the garbage collector paused, and is then frozen (loading.py).
with handler_loading():
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from segment_raindrop.adapters.observability import logger, metrics, traced_handler
    from segment_raindrop.handlers.api import api_request, install_refusals, response
    from segment_raindrop.handlers.snapstart import register_restore_hooks
    from segment_raindrop.service import segment_webhook
    from segment_raindrop.service.runtime import LazyRuntime

app = APIGatewayRestResolver()
runtime = LazyRuntime(source="webhook")
# With `-c snapStart=true` these functions resume from a snapshot (handlers/snapstart.py).
register_restore_hooks(runtime)


def _error_body(_status: int, message: str) -> dict[str, Any]:
    return {"error": message}


install_refusals(app, _error_body)


@app.post("/segment")
@app.post("/v1/batch")  # where Segment's server libraries post; the stack routes it here too
def receive() -> Response[str]:
    return _receive(project=None)


@app.post("/segment/<project>")
def receive_for_project(project: str) -> Response[str]:
    """One Segment destination per source, each to its own Raindrop project."""
    segment_webhook.check_project(project)
    return _receive(project=project)


def _receive(*, project: str | None) -> Response[str]:
    request = api_request(app)
    return response(segment_webhook.receive(runtime.get(), request, project=project))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
