"""The numbers and names the forwarder, the stack and the tools must agree on, written once.

Limits come from Segment, Lambda and SQS (docs/wire.md §1 and §5); metric names are what the
handlers publish and what the stack's alarms and dashboard read. The CDK app imports this module
(it is plain Python, with no AWS SDK), so a changed number cannot drift between the two sides.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

# --- Segment (docs/wire.md §1) -----------------------------------------------------------------
# Segment's HTTP client gives up on a webhook call after this long: API Gateway, a cold start
# and the handler together must answer within it.
SEGMENT_TIMEOUT_SECONDS: Final = 10

# --- AWS APIs ------------------------------------------------------------------------------
# The AWS services the functions call (runtime.py builds every client); the bundle ships
# botocore's models of these only (infra/bundling.py), so a client for another service cannot
# be built in Lambda until it is added here.
SQS: Final = "sqs"
SECRETS_MANAGER: Final = "secretsmanager"
DYNAMODB: Final = "dynamodb"
AWS_SERVICES: Final = (SQS, SECRETS_MANAGER, DYNAMODB)

# --- Lambda and API Gateway (docs/wire.md §5) ------------------------------------------------
# Segment's 10 s also cover what happens before the handler's clock starts: API Gateway's own
# time (tens of ms) and, on a cold start, the function's init (runtime start, code download,
# imports, Powertools and X-Ray set-up: about 1-2 s at 1 GB). Lambda starts an invocation's
# timeout after init, so the handler cannot see it; this much is kept out of its timeout.
WEBHOOK_INIT_ALLOWANCE_SECONDS: Final = 2
# The webhook function's timeout: the handler can never run past Segment's window with init.
WEBHOOK_TIMEOUT_SECONDS: Final = SEGMENT_TIMEOUT_SECONDS - WEBHOOK_INIT_ALLOWANCE_SECONDS
# The webhook's default delivery budget: with the 2.5 s it keeps for queueing and answering it
# fits the timeout, so init + budget + queueing stays inside 10 s (docs/architecture.md, "Time").
WEBHOOK_DELIVERY_BUDGET_SECONDS: Final = 5.0
# The retry worker has no caller waiting: a minute covers a slow Raindrop for a batch of ten,
# and its delivery budget leaves ~10 s to put back on the queue what did not get through.
RETRY_TIMEOUT_SECONDS: Final = 60
RETRY_BUDGET_SECONDS: Final = 50
RETRY_BATCH_SIZE: Final = 10
# Replay drains the dead-letter queue in one long run (Lambda's maximum).
REPLAY_TIMEOUT_SECONDS: Final = 900
REPLAY_BUDGET_SECONDS: Final = RETRY_BUDGET_SECONDS
# API Gateway refuses larger payloads before any function sees them.
API_GATEWAY_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
# Lambda's synchronous invoke payload: the whole API Gateway event, not just the body.
LAMBDA_MAX_INVOKE_BYTES: Final = 6 * 1024 * 1024
# What the REST proxy event adds around the body: API Gateway allows 10,240 bytes of request
# line and headers, which the event holds twice (headers and multiValueHeaders), JSON-escaped,
# plus the request context (about 1.5 KB). Bounded generously; tests/unit/test_contract.py
# measures a worst-case event against it.
API_GATEWAY_ENVELOPE_BYTES: Final = 64 * 1024
# What Lambda's payload leaves for the body, in the form the event carries it.
EVENT_BODY_BYTES: Final = LAMBDA_MAX_INVOKE_BYTES - API_GATEWAY_ENVELOPE_BYTES
# The SDK API delivers every body base64-encoded (binary media type */*, so gzip bodies
# from Segment's libraries arrive intact): 4 bytes of event per 3 of body. The largest body
# whose event always fits.
MAX_SDK_BODY_BYTES: Final = EVENT_BODY_BYTES * 3 // 4
# The webhook API has no binary media types: a body travels as a JSON string, where each quote
# and backslash takes two bytes. Compact Segment JSON grows by 2-13% (tests/unit/test_contract.py
# measures sample traffic: the shorter the texts, the more quotes per byte); this is the
# allowance the batch-size advice keeps for it. (Were API Gateway to escape every character
# outside ASCII, text in other scripts would take up to twice its size: docs/wire.md §5.)
JSON_ESCAPING_ALLOWANCE: Final = 1.25
# The largest body a function can be handed, as text with nothing to escape: the webhook holds
# every body, decompressed ones too, to this by default (MAX_BODY_BYTES), so its own limit never
# refuses what Lambda took.
MAX_DECODED_BODY_BYTES: Final = LAMBDA_MAX_INVOKE_BYTES
# Segment's Webhooks (Actions) batch size: its default and its maximum.
SEGMENT_DEFAULT_BATCH_SIZE: Final = 1_000
SEGMENT_MAX_BATCH_SIZE: Final = 4_000


def segment_batch_size(p99_event_bytes: int) -> int:
    """The Webhooks (Actions) batch size whose request fits Lambda's payload when events are at
    most ``p99_event_bytes`` of compact JSON (a batch is a JSON array: one comma an event)."""
    if p99_event_bytes < 1:
        raise ValueError("an event size is at least one byte")
    per_event = p99_event_bytes * JSON_ESCAPING_ALLOWANCE + 1
    return max(1, min(SEGMENT_MAX_BATCH_SIZE, int((EVENT_BODY_BYTES - 2) // per_event)))


# --- SQS (docs/wire.md §5) ------------------------------------------------------------------
# One message, and one SendMessageBatch call, attributes included.
SQS_MAX_MESSAGE_BYTES: Final = 1_048_576
SQS_BATCH_ENTRIES: Final = 10
# The largest DelaySeconds of SendMessage.
SQS_MAX_DELAY_SECONDS: Final = 900
# SQS refuses a visibility timeout reaching past 12 hours after the receive; stay clear of it.
SQS_MAX_VISIBILITY_SECONDS: Final = 43_000
# Receives of a retry message before SQS's redrive moves it to the dead-letter queue; the retry
# worker reads the same number (RETRY_MAX_ATTEMPTS) to know when it holds the last receive.
DEFAULT_RETRY_MAX_RECEIVES: Final = 8
# A dead-letter queue keeps messages for the SQS maximum: the most time to replay.
DLQ_RETENTION_DAYS: Final = 14
# A message keeps its original enqueue time when moved to the dead-letter queue, so the retry
# queue must keep messages for less time than the dead-letter queue does.
RETRY_RETENTION_DAYS: Final = 4
# AWS's guidance for SQS event sources: at least six times the function timeout.
VISIBILITY_TO_TIMEOUT_RATIO: Final = 6

# --- Raindrop -> Segment (the mirror; docs/wire.md §2) ------------------------------------------
# Segment refuses larger events and batch requests (HTTP Tracking API limits). 32 KB and 500 KB
# are read as decimal kilobytes, the stricter reading.
SEGMENT_MAX_EVENT_BYTES: Final = 32_000
SEGMENT_MAX_BATCH_BYTES: Final = 500_000
# context.library.name of every event the mirror sends to Segment: the Segment -> Raindrop
# webhook filters such events, so nothing goes round in a loop.
MIRROR_LIBRARY_NAME: Final = "segment-raindrop"
LOOP_FILTER_REASON: Final = "originated in Raindrop"


# --- Routes --------------------------------------------------------------------------------
# Raindrop's SDK pointed at the stack posts to "<this>/events/track", "signals/track"...: the
# stack routes the whole path to the mirror function.
# Segment's Amazon EventBridge (Actions) destination puts events on a partner event source of
# this name: Segment's partner name (its code's SEGMENT_PARTNER_NAME) and the Segment source's
# id, in the characters EventBridge allows in a partner source's name.
SEGMENT_PARTNER_SOURCE: Final = re.compile(r"^aws\.partner/segment\.com/[.\-_A-Za-z0-9]{1,200}$")
# Records the EventBridge consumer takes per invocation, and how long SQS's poller may wait to
# fill a batch (CDK context segmentEventBatchSize, segmentEventBatchWindowSeconds).
EVENTBRIDGE_BATCH_SIZE: Final = 100
EVENTBRIDGE_BATCH_WINDOW_SECONDS: Final = 2
# The consumer's timeout and delivery budget: like the retry worker's, nobody waits on it.
EVENTBRIDGE_TIMEOUT_SECONDS: Final = 60
EVENTBRIDGE_BUDGET_SECONDS: Final = 20
# Receives of an intake record before SQS moves it to the intake's own dead-letter queue. A
# record fails only when its event could be neither delivered nor queued (SQS unreachable).
EVENTBRIDGE_MAX_RECEIVES: Final = 5

RAINDROP_SDK_PATH: Final = "raindrop/v1"
# With tracing on, the SDK's OTLP exporter posts spans to "<scheme>://<host>/v1/traces",
# whatever path its endpoint has (docs/wire.md §2). On API Gateway's default URL the first
# path segment is the stage, so the SDK API's stage is named "v1": the spans land on its
# "/traces" route. ("/v1/traces" is routed too, for a custom domain without a base path.)
SDK_API_STAGE: Final = "v1"
OTLP_TRACES_ROUTES: Final = ("/traces", "/v1/traces")


# --- Stack outputs ---------------------------------------------------------------------------
class StackOutput(StrEnum):
    """What the stack prints and the tools read back (``--stack``): its outputs' names."""

    WEBHOOK_URL = "WebhookUrl"
    SEGMENT_LIBRARY_HOST = "SegmentLibraryHost"
    SEGMENT_BATCH_SIZE = "SegmentBatchSize"
    ALARM_NOTIFICATIONS = "AlarmNotifications"
    RAINDROP_SDK_ENDPOINT = "RaindropSdkEndpoint"
    PARTIALS_TABLE_NAME = "PartialsTableName"
    RETRY_QUEUE_URL = "RetryQueueUrl"
    DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
    REPLAY_FUNCTION_NAME = "ReplayFunctionName"
    SECRET_ARN = "SecretArn"  # noqa: S105 - an output's name, not a secret
    # The stage dimension of the stack's metrics (segment-raindrop status reads them).
    STAGE = "Stage"
    # "true" when the stack mirrors Raindrop's SDK traffic into Segment (context
    # mirrorToSegment): then the secret's segment_write_key is needed.
    MIRROR_TO_SEGMENT = "MirrorToSegment"
    DASHBOARD_URL = "DashboardUrl"
    # The EventBridge intake (segmentEventSource only).
    SEGMENT_EVENTS_QUEUE_URL = "SegmentEventsQueueUrl"
    SEGMENT_EVENTS_DEAD_LETTER_QUEUE_URL = "SegmentEventsDeadLetterQueueUrl"
    SEGMENT_EVENT_BUSES = "SegmentEventBuses"


# --- Observability ----------------------------------------------------------------------------
SERVICE_NAME: Final = "segment-raindrop"
METRICS_NAMESPACE: Final = "SegmentRaindrop"
# Every metric of the forwarder carries two dimensions: service=SERVICE_NAME and this one, the
# stack's stage (the functions read it from STAGE_VARIABLE; the access-log metric filters from
# the log line). Two stages in one account and region never share a metric, so never an alarm.
STAGE_DIMENSION: Final = "stage"
# The stage outside a deployment (tests, local mode, the CLI).
LOCAL_STAGE: Final = "local"


def metric_dimensions(stage: str) -> dict[str, str]:
    """The dimensions of every forwarder metric of one stage, as CloudWatch names them."""
    return {"service": SERVICE_NAME, STAGE_DIMENSION: stage}


class Metric(StrEnum):
    """Every metric the forwarder publishes (namespace METRICS_NAMESPACE, dimensions
    :func:`metric_dimensions`)."""

    EVENTS_RECEIVED = "EventsReceived"
    EVENTS_FORWARDED = "EventsForwarded"
    EVENTS_FILTERED = "EventsFiltered"
    EVENTS_QUEUED = "EventsQueued"
    EVENTS_DEAD_LETTERED = "EventsDeadLettered"
    # With a second dimension, reason (invalid, rejected, transient).
    EVENTS_DEAD_LETTERED_BY_REASON = "EventsDeadLetteredByReason"
    RAINDROP_REQUESTS = "RaindropRequests"
    RAINDROP_REQUEST_FAILURES = "RaindropRequestFailures"
    RAINDROP_LATENCY = "RaindropLatency"
    # Raindrop answered with a redirect: RAINDROP_API_URL needs fixing.
    RAINDROP_REDIRECTS = "RaindropRedirects"
    # Chunks not sent because the circuit breaker was open (queued at once).
    RAINDROP_SHORT_CIRCUITED = "RaindropShortCircuited"
    # The breaker opened: Raindrop kept failing transiently.
    RAINDROP_CIRCUIT_OPENED = "RaindropCircuitOpened"
    # Text with lone UTF-16 surrogates (cut mid-emoji), repaired with U+FFFD and delivered.
    TEXTS_REPAIRED = "TextsRepaired"
    # Personal data or credentials replaced before sending (REDACT_PII), with a second
    # dimension, kind (email, phone, card, ssn, ip, credential, password).
    REDACTIONS = "Redactions"
    # Entries of properties.attachments not in Raindrop's shape, left out (their event went).
    ATTACHMENTS_DROPPED = "AttachmentsDropped"
    REQUESTS_REFUSED = "RequestsRefused"
    UNAUTHORIZED_REQUESTS = "UnauthorizedRequests"
    # A batch signed over its first element only, with no token configured to check the rest.
    UNVERIFIABLE_BATCHES = "UnverifiableBatches"
    MESSAGES_REPLAYED = "MessagesReplayed"
    # Seconds since the events of a message the retry worker handles first failed (its
    # first_failure_at, kept through re-queueing), one value per message: how long Raindrop has
    # been failing them. SQS's own ApproximateAgeOfOldestMessage cannot tell: it leaves out
    # messages received three times or more, and re-queued events are new messages.
    RETRY_FAILURE_AGE = "RetryFailureAge"
    # Raindrop -> Segment (segment_raindrop.handlers.raindrop_sdk). Requests from Raindrop's SDK to
    # /raindrop/v1/, events put into Segment, events that could not be (dead-lettered or
    # failed for good), and requests not mirrored because the mirror is switched off for want
    # of a segment_write_key (forwarding to Raindrop goes on).
    RAINDROP_SDK_REQUESTS = "RaindropSdkRequests"
    MIRROR_EVENTS_SENT = "MirrorEventsSent"
    MIRROR_FAILURES = "MirrorFailures"
    # Mirrored events over Segment's 32 KB whose longest texts were cut (Raindrop got them whole).
    MIRROR_EVENTS_TRUNCATED = "MirrorEventsTruncated"
    MIRROR_DISABLED = "MirrorDisabled"
    # Partial patches the table could not take now (queued for the retry worker to apply).
    MIRROR_PARTIALS_DEFERRED = "MirrorPartialsDeferred"
    # Finished interactions sent to Segment again because a patch came after the finish.
    MIRROR_PARTIALS_REVISED = "MirrorPartialsRevised"
    # Unfinished interactions found expired by a later patch of the same event_id.
    MIRROR_PARTIALS_EXPIRED = "MirrorPartialsExpired"
    # Finishing patches that found nothing of their interaction's start (never seen, or its
    # row expired) to finish: an interaction Segment never gets.
    MIRROR_PARTIALS_LOST = "MirrorPartialsLost"
    # Not published by the functions: a metric filter on API Gateway's access log counts the
    # requests answered 413, most of them bodies over Lambda's 6 MB invoke payload that API
    # Gateway refuses before the function runs (Segment drops 413s).
    API_REQUESTS_TOO_LARGE = "ApiRequestsTooLarge"
    # Counted the same way: requests answered 429, by API Gateway's throttle (the stage's route
    # limits) or for want of Lambda concurrency, before the function runs. Segment retries
    # them for hours; Raindrop's SDK gives up after about 1.5 s and drops the batch.
    API_REQUESTS_THROTTLED = "ApiRequestsThrottled"
    # And 5xx answered by API Gateway itself (a gateway response: integration failure or
    # timeout, a function that crashed), not by the function.
    API_GATEWAY_ERRORS = "ApiGatewayErrors"


# The per-event outcomes a webhook answer and the metrics count, in the order they are shown.
EVENT_METRICS: Final = (
    Metric.EVENTS_RECEIVED,
    Metric.EVENTS_FORWARDED,
    Metric.EVENTS_FILTERED,
    Metric.EVENTS_QUEUED,
    Metric.EVENTS_DEAD_LETTERED,
)
