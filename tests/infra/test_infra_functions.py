"""Functions: runtime, architecture, tracing, timeouts, environment (docs/architecture.md)."""

from __future__ import annotations

import json

from aws_cdk import assertions

from segment_raindrop.core.contract import (
    SEGMENT_TIMEOUT_SECONDS,
    WEBHOOK_INIT_ALLOWANCE_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
)
from segment_raindrop.core.environment import read_config
from segment_raindrop.service.requests import QUEUEING_RESERVE_SECONDS
from tests.infra.support import (
    HANDLERS,
    REPLAY_HANDLER,
    RETRY_HANDLER,
    WEBHOOK_HANDLER,
    environment,
    function,
    only,
    ref_or_att,
    resources,
)

CONTRACT_VARIABLES = {
    "RAINDROP_SECRET_ID",
    "RAINDROP_API_URL",
    "RETRY_QUEUE_URL",
    "DLQ_URL",
    "FORWARD_EVENT_PREFIXES",
    "FORWARD_EVENT_NAMES",
    "EVENT_RENAMES",
    "FEEDBACK_EVENT_NAMES",
    "FORWARD_IDENTIFY",
    "ENRICH_FROM_CONTEXT_TRAITS",
    "DELIVERY_BUDGET_SECONDS",
    "RETRY_MAX_ATTEMPTS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
    "PYDANTIC_DISABLE_PLUGINS",
}


def test_four_functions_with_the_contracts_handlers(template: assertions.Template) -> None:
    handlers = {
        resource["Properties"]["Handler"]
        for resource in resources(template, "AWS::Lambda::Function").values()
    }
    assert handlers == set(HANDLERS)


def test_python_313_on_arm64(template: assertions.Template) -> None:
    for handler in HANDLERS:
        properties = function(template, handler)[1]["Properties"]
        assert properties["Runtime"] == "python3.13"
        assert properties["Architectures"] == ["arm64"]


def test_active_tracing_by_default(template: assertions.Template) -> None:
    for handler in HANDLERS:
        properties = function(template, handler)[1]["Properties"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert environment(template, handler)["POWERTOOLS_TRACE_DISABLED"] == "false"


def test_tracing_context_turns_tracing_off(custom_template: assertions.Template) -> None:
    for handler in HANDLERS:
        assert "TracingConfig" not in function(custom_template, handler)[1]["Properties"]
        # The handlers then build no tracer, so no cold start imports the X-Ray SDK.
        assert environment(custom_template, handler)["POWERTOOLS_TRACE_DISABLED"] == "true"


def test_timeouts_fit_segment_and_the_budgets(template: assertions.Template) -> None:
    webhook = function(template, WEBHOOK_HANDLER)[1]["Properties"]
    retry = function(template, RETRY_HANDLER)[1]["Properties"]
    replay = function(template, REPLAY_HANDLER)[1]["Properties"]
    assert retry["Timeout"] == 60
    assert replay["Timeout"] == 900
    for properties in (webhook, retry, replay):
        budget = float(properties["Environment"]["Variables"]["DELIVERY_BUDGET_SECONDS"])
        assert 0 < budget < properties["Timeout"]
    assert retry["Environment"]["Variables"]["DELIVERY_BUDGET_SECONDS"] == "50"


def test_webhook_answers_inside_segments_10_s_even_on_a_cold_start(
    template: assertions.Template,
) -> None:
    # Lambda starts the invocation's clock after init, so the handler cannot see a cold start:
    # the timeout leaves room for it, and the default budget plus the webhook's queueing
    # reserve fit the timeout (docs/architecture.md, "Time").
    webhook = function(template, WEBHOOK_HANDLER)[1]["Properties"]
    budget = float(webhook["Environment"]["Variables"]["DELIVERY_BUDGET_SECONDS"])
    assert webhook["Timeout"] == WEBHOOK_TIMEOUT_SECONDS
    assert WEBHOOK_INIT_ALLOWANCE_SECONDS + webhook["Timeout"] <= SEGMENT_TIMEOUT_SECONDS
    assert WEBHOOK_INIT_ALLOWANCE_SECONDS >= 2
    assert budget == 5
    assert budget + QUEUEING_RESERVE_SECONDS <= webhook["Timeout"]


def test_memory(template: assertions.Template, custom_template: assertions.Template) -> None:
    assert function(template, WEBHOOK_HANDLER)[1]["Properties"]["MemorySize"] == 1024
    assert function(custom_template, WEBHOOK_HANDLER)[1]["Properties"]["MemorySize"] == 2048


def test_environment_follows_the_contract(template: assertions.Template) -> None:
    for handler in HANDLERS:
        variables = environment(template, handler)
        assert set(variables) >= CONTRACT_VARIABLES
        assert variables["POWERTOOLS_SERVICE_NAME"] == "segment-raindrop"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "SegmentRaindrop"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
        assert variables["RAINDROP_API_URL"] == "https://api.raindrop.ai/v1"
        assert "RAINDROP_PROJECT_ID" not in variables
        # Lists and objects travel as JSON strings.
        assert json.loads(variables["FORWARD_EVENT_PREFIXES"]) == ["AI "]
        assert json.loads(variables["FORWARD_EVENT_NAMES"]) == []
        assert json.loads(variables["EVENT_RENAMES"]) == {"AI Chat Completed": "ai_interaction"}
        assert json.loads(variables["FEEDBACK_EVENT_NAMES"]) == ["AI Feedback Submitted"]
        assert variables["FORWARD_IDENTIFY"] == "true"
        assert variables["ENRICH_FROM_CONTEXT_TRAITS"] == "true"
        assert variables["RETRY_MAX_ATTEMPTS"] == "8"
        retry_queue, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=4 * 86400)
        dlq, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=14 * 86400)
        assert ref_or_att(variables["RETRY_QUEUE_URL"]) == retry_queue
        assert ref_or_att(variables["DLQ_URL"]) == dlq
        secret, _ = only(template, "AWS::SecretsManager::Secret")
        assert ref_or_att(variables["RAINDROP_SECRET_ID"]) == secret


def test_environment_follows_the_context(custom_template: assertions.Template) -> None:
    for handler in HANDLERS:
        variables = environment(custom_template, handler)
        assert variables["RAINDROP_SECRET_ID"] == "segment-raindrop/staging"
        assert variables["RAINDROP_API_URL"] == "https://raindrop.example.com/v1"
        assert variables["RAINDROP_PROJECT_ID"] == "proj-123"
        assert json.loads(variables["FORWARD_EVENT_PREFIXES"]) == ["AI ", "LLM "]
        assert json.loads(variables["FORWARD_EVENT_NAMES"]) == ["Chat Started"]
        assert json.loads(variables["EVENT_RENAMES"]) == {"AI Chat Completed": "chat"}
        assert json.loads(variables["FEEDBACK_EVENT_NAMES"]) == ["Thumbs"]
        assert variables["FORWARD_IDENTIFY"] == "false"
        assert variables["ENRICH_FROM_CONTEXT_TRAITS"] == "false"
        assert variables["RETRY_MAX_ATTEMPTS"] == "5"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert environment(custom_template, WEBHOOK_HANDLER)["DELIVERY_BUDGET_SECONDS"] == "6.5"


def test_the_forwarder_accepts_the_environment(custom_template: assertions.Template) -> None:
    # The functions' own configuration loader reads what the stack sets (tokens made concrete).
    for handler in HANDLERS:
        variables = {
            name: value if isinstance(value, str) else f"resolved-{name.lower()}"
            for name, value in environment(custom_template, handler).items()
        }
        config = read_config(variables)
        assert config.mapping.forward_event_prefixes == ("AI ", "LLM ")
        assert config.mapping.forward_identify is False
        assert config.retry_max_attempts == 5


def test_each_function_logs_to_its_own_group_with_retention(
    template: assertions.Template, custom_template: assertions.Template
) -> None:
    for tmpl, days in ((template, 30), (custom_template, 90)):
        groups = resources(tmpl, "AWS::Logs::LogGroup")
        targets = {
            ref_or_att(function(tmpl, handler)[1]["Properties"]["LoggingConfig"]["LogGroup"])
            for handler in HANDLERS
        }
        assert len(targets) == len(HANDLERS)
        for logical_id in targets:
            assert logical_id is not None
            assert groups[logical_id]["Properties"]["RetentionInDays"] == days


def test_retry_worker_consumes_the_retry_queue_in_small_batches(
    template: assertions.Template,
) -> None:
    retry_queue, _ = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=4 * 86400)
    worker, _ = function(template, RETRY_HANDLER)
    _, mapping = only(template, "AWS::Lambda::EventSourceMapping")
    properties = mapping["Properties"]
    assert ref_or_att(properties["FunctionName"]) == worker
    assert ref_or_att(properties["EventSourceArn"]) == retry_queue
    assert properties["BatchSize"] == 10
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_retry_worker_concurrency_is_bounded(
    template: assertions.Template, custom_template: assertions.Template
) -> None:
    # Unbounded, SQS scales the worker to hundreds of invocations on a backlog: a stampede on
    # a recovering Raindrop, and the account's concurrency taken from the webhook.
    for tmpl, expected in ((template, 2), (custom_template, 5)):
        _, mapping = only(tmpl, "AWS::Lambda::EventSourceMapping")
        assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": expected}
    # What reaches Raindrop from the retry path at most, as docs/architecture.md states it:
    # invocations x requests in flight in each (the functions' own reading of their settings).
    variables = {
        name: value if isinstance(value, str) else f"resolved-{name.lower()}"
        for name, value in environment(template, RETRY_HANDLER).items()
    }
    in_flight = read_config(variables).delivery.concurrency
    assert 2 * in_flight == 16


def test_retry_queue_visibility_is_six_worker_timeouts(template: assertions.Template) -> None:
    _, retry_queue = only(template, "AWS::SQS::Queue", MessageRetentionPeriod=4 * 86400)
    timeout = function(template, RETRY_HANDLER)[1]["Properties"]["Timeout"]
    assert retry_queue["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_function_roles_carry_no_managed_policies(template: assertions.Template) -> None:
    roles = resources(template, "AWS::IAM::Role")
    for handler in HANDLERS:
        role_id = ref_or_att(function(template, handler)[1]["Properties"]["Role"])
        assert role_id is not None
        assert "ManagedPolicyArns" not in roles[role_id]["Properties"]
