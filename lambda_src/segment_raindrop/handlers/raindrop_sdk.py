"""Lambda handler for Raindrop's SDK pointed at the stack (API Gateway REST proxy): Raindrop's
own API under ``/raindrop/v1/``, forwarded to Raindrop unchanged and mirrored into Segment, and
the SDK's OTLP spans (``/traces``), forwarded only.

The routes only name the endpoint; :mod:`segment_raindrop.service.raindrop_sdk` does the rest
and says what the SDK is told and why.
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
    from segment_raindrop.core.contract import OTLP_TRACES_ROUTES, RAINDROP_SDK_PATH
    from segment_raindrop.core.raindrop_api import Endpoint
    from segment_raindrop.handlers.api import api_request, install_refusals, response
    from segment_raindrop.handlers.snapstart import register_restore_hooks
    from segment_raindrop.service import raindrop_sdk
    from segment_raindrop.service.runtime import LazyRuntime

PATH_PREFIX = f"/{RAINDROP_SDK_PATH}"

app = APIGatewayRestResolver()
runtime = LazyRuntime(source="mirror")
# With `-c snapStart=true` these functions resume from a snapshot (handlers/snapstart.py).
register_restore_hooks(runtime)


def _error_body(status: int, message: str) -> dict[str, Any]:
    # Raindrop's own error shape, which its SDK expects.
    return {"error": {"code": status, "message": message}}


install_refusals(app, _error_body)


@app.post(f"{PATH_PREFIX}/events/track")
def track() -> Response[str]:
    return _receive(Endpoint.TRACK)


@app.post(f"{PATH_PREFIX}/events/track_partial")
def track_partial() -> Response[str]:
    return _receive(Endpoint.TRACK_PARTIAL)


@app.post(f"{PATH_PREFIX}/signals/track")
def signals() -> Response[str]:
    return _receive(Endpoint.SIGNAL)


@app.post(f"{PATH_PREFIX}/users/identify")
def identify() -> Response[str]:
    return _receive(Endpoint.IDENTIFY)


@app.post(f"{PATH_PREFIX}/traces")
def traces() -> Response[str]:
    return _receive(Endpoint.TRACES)


# Where the SDK's OTLP exporter posts spans with tracing on: "<host>/v1/traces", the stage v1's
# "/traces" on API Gateway's URL (SDK_API_STAGE), "/v1/traces" on a domain without a stage.
for _route in OTLP_TRACES_ROUTES:
    app.post(_route)(traces)


def _receive(endpoint: Endpoint) -> Response[str]:
    return response(raindrop_sdk.receive(runtime.get(), api_request(app), endpoint))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
