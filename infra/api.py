"""The public endpoints: two REST APIs sharing one stage name, access log and set of limits.

- The webhook API: `POST /segment` (and `/segment/{project}`) proxied to the webhook function,
  for Segment's Webhooks (Actions) destination. It has no binary media types, so its JSON
  reaches the function as text and Lambda's 6 MiB payload holds as much body as it can
  (docs/deploy.md, "Batch size").
- The SDK API, for client libraries that may compress their bodies: `POST /v1/batch` (Segment's
  server libraries) proxied to the webhook function and `POST /raindrop/v1/{proxy+}`
  (Raindrop's own API shape, for Raindrop's SDKs) and `POST /traces` (their OTLP spans) proxied
  to the mirror function. Every body reaches the functions base64-encoded, intact. These
  clients send at most 500 KB (Segment) or 1 MiB (Raindrop) a request, far below what base64
  leaves of Lambda's payload. Its stage is named `v1`: the SDK's span exporter posts to
  `<host>/v1/traces`, dropping the endpoint's path (SDK_API_STAGE).

Binary media types belong to a whole REST API and match the Content-Type, which a gzip body
shares with a plain one (application/json): two kinds of body need two APIs.
"""

from __future__ import annotations

import json
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StackConfig, Throttle
from infra.functions import log_retention
from segment_raindrop.core.contract import (
    METRICS_NAMESPACE,
    OTLP_TRACES_ROUTES,
    RAINDROP_SDK_PATH,
    SDK_API_STAGE,
    Metric,
    metric_dimensions,
)

PATH: Final = "segment"
PROJECT_PATH_PART: Final = "{project}"

# On the SDK API every request body reaches the function base64-encoded (isBase64Encoded:
# true), whatever its Content-Type. A REST API passes a body as text unless its Content-Type
# matches one of these, and Segment's libraries send gzip bodies (Content-Encoding: gzip) as
# application/json: as text they arrive mangled. The cost is the Lambda invoke payload carrying
# the body as base64, 4/3 of its size: up to 4.6 MB of body, far more than these clients send.
# The webhook API has none: a Webhooks (Actions) batch, never compressed, travels as text,
# JSON-escaped (a quote takes two bytes), so about 5.5 MB of compact Segment JSON fits
# (docs/deploy.md, "Batch size"). Responses are text either way.
SDK_BINARY_MEDIA_TYPES: Final = ("*/*",)

# One JSON object per request (CloudWatch Logs Insights discovers the fields). Beyond the
# standard fields: latencies, the integration's status and error, the gateway response API
# Gateway answered with itself (none when the function answered), and the X-Ray trace id, which
# is what tells a Lambda timeout from a Segment retry storm. No headers: they carry the token.
# This log is the only record of requests API Gateway answers itself (a body over Lambda's
# 6 MB invoke payload gets 413 before the function runs), so execution logging is off: it
# adds nothing for this API and would go to a log group API Gateway creates outside the stack.
_REQUEST_FIELDS: Final = {
    "requestId": apigateway.AccessLogField.context_request_id(),
    "requestTime": apigateway.AccessLogField.context_request_time(),
    "ip": apigateway.AccessLogField.context_identity_source_ip(),
    "userAgent": apigateway.AccessLogField.context_identity_user_agent(),
    "httpMethod": apigateway.AccessLogField.context_http_method(),
    "resourcePath": apigateway.AccessLogField.context_resource_path(),
    "protocol": apigateway.AccessLogField.context_protocol(),
    "status": apigateway.AccessLogField.context_status(),
    "responseLength": apigateway.AccessLogField.context_response_length(),
    "responseLatencyMs": apigateway.AccessLogField.context_response_latency(),
    "integrationLatencyMs": apigateway.AccessLogField.context_integration_latency(),
    "integrationStatus": apigateway.AccessLogField.context_integration_status(),
    "integrationError": apigateway.AccessLogField.context_integration_error_message(),
    "errorMessage": apigateway.AccessLogField.context_error_message(),
    # The gateway response type (THROTTLED, INTEGRATION_FAILURE, INTEGRATION_TIMEOUT,
    # REQUEST_TOO_LARGE, DEFAULT_5XX...) when API Gateway answered itself; "-" otherwise.
    "errorResponseType": apigateway.AccessLogField.context_error_response_type(),
    "xrayTraceId": apigateway.AccessLogField.context_xray_trace_id(),
}


def access_log_fields(stage: str) -> dict[str, str]:
    """The access log's JSON fields for one stage. ``service`` and ``stage`` are constants
    of the stack (the SDK API's own stage is always SDK_API_STAGE): a metric filter's dimension
    values must come from the log event, and these are the dimensions every forwarder metric
    carries (contract.metric_dimensions), so the filters' counts are this stage's only."""
    return {**metric_dimensions(stage), **_REQUEST_FIELDS}


# Requests counted from the access log, each by a filter on its fields; most never reach a
# function. Segment drops a 413; a 429 comes from the stage's throttle (below: the route
# limits), which Raindrop's SDK retries for only about 1.5 s; a gateway 5xx is API Gateway's
# own answer (an integration failure or timeout, a function that crashed, or Lambda out of
# concurrency, which API Gateway answers 500), never the function's.
ACCESS_LOG_METRICS: Final = {
    Metric.API_REQUESTS_TOO_LARGE: ("Status413", (("$.status", "=", "413"),)),
    Metric.API_REQUESTS_THROTTLED: ("Status429", (("$.status", "=", "429"),)),
    Metric.API_GATEWAY_ERRORS: (
        "GatewayStatus5xx",
        (("$.status", "=", "5*"), ("$.errorResponseType", "!=", "-")),
    ),
}

_SDK_AUTH_REASON: Final = (
    "Raindrop's SDKs send only 'Authorization: Bearer <Raindrop key>', so the mirror function "
    "authenticates every request itself: a constant-time comparison with the raindrop_api_key "
    "(or webhook_token) in Secrets Manager. Cognito would need the apps to change their SDK "
    "set-up, and an authorizer would add a second invocation per request."
)

_LOGGING_POLICY: Final = (
    "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)

_AUTH_REASON: Final = (
    "Segment's Webhooks destination can only send a static header or sign the body, so the "
    "webhook function authenticates every request itself: constant-time comparison of the "
    "bearer token, X-Signature HMAC with the shared secret, or Basic auth, all from Secrets "
    "Manager. An API Gateway authorizer would add a second invocation per request and could "
    "not check the body signature."
)


class WebhookApi(Construct):
    """Exposes `api` (the webhook API), `sdk_api`, `apis` (both), `webhook_url`, `sdk_host`
    (the SDK API's root) and `raindrop_sdk_endpoint`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        handler: lambda_.IFunction,
        mirror_handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.api = self._rest_api(
            "Api",
            name=f"segment-raindrop-{config.stage}",
            description="Receives Segment webhook events and forwards them to Raindrop",
            binary_media_types=(),
            # Access logging needs the account-wide API Gateway CloudWatch role; this API
            # creates it and, on destroy, keeps it because other APIs may rely on it.
            cloud_watch_role=True,
            stage_name=config.stage,
            throttle=config.webhook_throttle,
        )
        self.sdk_api = self._rest_api(
            "SdkApi",
            name=f"segment-raindrop-{config.stage}-sdks",
            description=(
                "Receives Segment's server libraries' batches and Raindrop's SDKs' requests, "
                "compressed or not"
            ),
            binary_media_types=SDK_BINARY_MEDIA_TYPES,
            cloud_watch_role=False,
            # Where the SDK's OTLP exporter sends spans: "<host>/v1/traces" (SDK_API_STAGE).
            stage_name=SDK_API_STAGE,
            throttle=config.sdk_throttle,
        )
        # Its stage logs through the account role the webhook API sets up.
        self.sdk_api.node.add_dependency(self.api)
        self.apis = (self.api, self.sdk_api)
        integration = apigateway.LambdaIntegration(handler, proxy=True)
        # POST /segment for Segment's Webhooks destination. POST /segment/{project} routes one
        # Segment source to its own Raindrop project; the function checks the slug (and the
        # allow-list, when set) and answers 404 otherwise. POST /v1/batch, on the SDK API
        # (its root is their host), is where Segment's server libraries post their
        # {"batch": [...]} envelope, with the webhook token as their write key.
        webhook = self.api.root.add_resource(PATH)
        routes = (
            webhook,
            webhook.add_resource(PROJECT_PATH_PART),
            self.sdk_api.root.add_resource("v1").add_resource("batch"),
        )
        methods = [
            resource.add_method(
                "POST", integration, authorization_type=apigateway.AuthorizationType.NONE
            )
            for resource in routes
        ]
        self.webhook_url = self.api.url_for_path(f"/{PATH}")
        self.sdk_host = self.sdk_api.url_for_path("/")
        # The trailing slash matters: the SDK appends "events/track" to the endpoint as given.
        sdk = self.sdk_api.root.resource_for_path(RAINDROP_SDK_PATH).add_proxy(
            any_method=False, default_integration=None
        )
        mirror = apigateway.LambdaIntegration(mirror_handler, proxy=True)
        sdk_methods = [
            resource.add_method(
                "POST", mirror, authorization_type=apigateway.AuthorizationType.NONE
            )
            for resource in (
                sdk,
                *(self.sdk_api.root.resource_for_path(path) for path in OTLP_TRACES_ROUTES),
            )
        ]
        self.raindrop_sdk_endpoint = self.sdk_api.url_for_path(f"/{RAINDROP_SDK_PATH}/")
        for metric, (filter_id, conditions) in ACCESS_LOG_METRICS.items():
            self._count(filter_id, metric, conditions)
        self._acknowledge(methods, reason=_AUTH_REASON)
        self._acknowledge(sdk_methods, reason=_SDK_AUTH_REASON)
        for api in self.apis:
            self._acknowledge_api(api)

    def _rest_api(
        self,
        construct_id: str,
        *,
        name: str,
        description: str,
        binary_media_types: tuple[str, ...],
        cloud_watch_role: bool,
        stage_name: str,
        throttle: Throttle,
    ) -> apigateway.RestApi:
        config = self._config
        return apigateway.RestApi(
            self,
            construct_id,
            rest_api_name=name,
            description=description,
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            binary_media_types=list(binary_media_types) or None,
            cloud_watch_role=cloud_watch_role,
            cloud_watch_role_removal_policy=(
                cdk.RemovalPolicy.RETAIN if cloud_watch_role else None
            ),
            deploy_options=apigateway.StageOptions(
                stage_name=stage_name,
                # Every method (route) of the API gets these limits on its own.
                throttling_rate_limit=throttle.rate_limit,
                throttling_burst_limit=throttle.burst_limit,
                tracing_enabled=config.tracing,  # with the functions (context `tracing`)
                # The API-level metrics the alarms and dashboard read are published anyway;
                # per-method detailed metrics would only add cost.
                metrics_enabled=False,
                # See _REQUEST_FIELDS; and never request bodies: they are AI conversations.
                logging_level=apigateway.MethodLoggingLevel.OFF,
                data_trace_enabled=False,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(
                    json.dumps(access_log_fields(config.stage))
                ),
            ),
        )

    def _count(
        self, construct_id: str, metric: Metric, conditions: tuple[tuple[str, str, str], ...]
    ) -> None:
        logs.MetricFilter(
            self,
            construct_id,
            log_group=self.access_logs,
            # The access log writes every field as a string ("$context.status" in quotes).
            filter_pattern=logs.FilterPattern.all(
                *(logs.FilterPattern.string_value(*condition) for condition in conditions)
            ),
            metric_namespace=METRICS_NAMESPACE,
            metric_name=metric.value,
            metric_value="1",
            dimensions={name: f"$.{name}" for name in metric_dimensions(self._config.stage)},
            unit=cloudwatch.Unit.COUNT,
        )

    def _acknowledge(self, methods: list[apigateway.Method], *, reason: str) -> None:
        for method in methods:
            for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                cdk.Validations.of(method).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))

    def _acknowledge_api(self, api: apigateway.RestApi) -> None:
        cdk.Validations.of(api).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-APIG2",
                reason=(
                    "The webhook function validates every body with pydantic and answers Segment "
                    "with per-event outcomes, dead-lettering what it cannot map; an API Gateway "
                    "validator would reject whole batches before they can be counted or kept."
                ),
            )
        )
        stage = api.deployment_stage
        cdk.Validations.of(stage).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-APIG6",
                reason=(
                    "Execution logging is off on purpose: the JSON access log records every "
                    "request with its status, integration status and error and X-Ray id, and "
                    "execution logs would go to a log group API Gateway creates outside the "
                    "stack, never expiring and surviving its deletion."
                ),
            )
        )
        cdk.Validations.of(stage).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-APIG3",
                reason=(
                    "Only Segment calls this endpoint and every request is authenticated by the "
                    "function; stage throttling bounds the rate. A WAF web ACL (about $6/month "
                    "plus per-request fees) is left to operators who want IP or rate rules."
                ),
            )
        )
        role = api.node.try_find_child("CloudWatchRole")
        if role is None:
            return
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM4[Policy::{_LOGGING_POLICY}]",
                reason=(
                    "API Gateway's account-wide logging role uses the AWS managed policy that "
                    "AWS documents for it; it only lets API Gateway write its own log groups."
                ),
            )
        )
