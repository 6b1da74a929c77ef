"""Context validation: defaults, `-c` strings, and errors that name the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.app import PROJECT_ROOT, build_app, stack_name
from infra.config import CONTEXT_KEYS, ConfigError, StackConfig, config_from_context
from tests.infra.support import cdk_json_context


def test_cdk_json_holds_every_key_with_the_models_defaults() -> None:
    context = cdk_json_context()
    ours = {key: context[key] for key in CONTEXT_KEYS}
    assert config_from_context(ours) == StackConfig()
    assert set(CONTEXT_KEYS) <= set(context)


def test_cdk_json_runs_the_app_through_the_locked_environment() -> None:
    app = json.loads((PROJECT_ROOT / "cdk.json").read_text())["app"]
    assert app == "uv run --frozen --all-extras python -m infra.app"


def test_defaults() -> None:
    config = config_from_context({})
    assert config.stage == "prod"
    assert not config.imports_secret
    assert config.raindrop_api_url == "https://api.raindrop.ai/v1"
    assert config.mapping.forward_event_prefixes == ("AI ",)
    assert config.mapping.event_renames == {"AI Chat Completed": "ai_interaction"}
    assert config.mapping.feedback_event_names == {"AI Feedback Submitted"}
    assert config.retry_max_receives == 8
    assert config.webhook_memory_mb == 1024
    assert config.delivery_budget_seconds == 5
    assert config.retry_max_concurrency == 2
    assert config.retain_data is True
    assert config.alarm_email is None
    assert config.segment_p99_event_bytes == 4_000
    assert config.tracing is True
    assert stack_name(config.stage) == "segment-raindrop-prod"


def test_command_line_strings_are_parsed() -> None:
    # `cdk synth -c key=value` delivers every value as a string.
    config = config_from_context(
        {
            "forwardEventPrefixes": '["AI ", "LLM "]',
            "eventRenames": '{"a": "b"}',
            "forwardIdentify": "false",
            "throttleRateLimit": "12.5",
            "throttleBurstLimit": "30",
            "sdkThrottleRateLimit": "250",
            "sdkThrottleBurstLimit": "400",
            "alarmOnRecovery": "true",
            "retryMaxReceives": "3",
            "tracing": "false",
            "secretName": "",  # empty means default
        }
    )
    assert config.mapping.forward_event_prefixes == ("AI ", "LLM ")
    assert config.mapping.event_renames == {"a": "b"}
    assert config.mapping.forward_identify is False
    assert config.throttle_rate_limit == 12.5
    assert config.throttle_burst_limit == 30
    assert config.webhook_throttle == (12.5, 30)
    assert config.sdk_throttle == (250, 400)
    assert config.alarm_on_recovery is True
    assert config.retry_max_receives == 3
    assert config.tracing is False
    assert config.secret_name is None


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"stage": "has space"}, "stage"),
        ({"secretArn": "not-an-arn"}, "secretArn"),
        ({"raindropApiUrl": "http://insecure.example.com"}, "raindropApiUrl"),
        ({"forwardEventPrefixes": '["AI "'}, "forwardEventPrefixes"),
        ({"forwardEventNames": '"one"'}, "forwardEventNames"),
        ({"eventRenames": '{"a": 1}'}, "eventRenames"),
        ({"feedbackEventNames": '[""]'}, "feedbackEventNames"),
        ({"forwardIdentify": "maybe"}, "forwardIdentify"),
        ({"throttleRateLimit": "0"}, "throttleRateLimit"),
        ({"throttleBurstLimit": "-5"}, "throttleBurstLimit"),
        ({"sdkThrottleRateLimit": "0"}, "sdkThrottleRateLimit"),
        ({"sdkThrottleRateLimit": "10001"}, "sdkThrottleRateLimit"),
        ({"sdkThrottleBurstLimit": "5001"}, "sdkThrottleBurstLimit"),
        ({"alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:alerts.fifo"}, "alarmTopicArn"),
        ({"alarmTopicArn": "oncall-alerts"}, "alarmTopicArn"),
        ({"alarmOnRecovery": "sometimes"}, "alarmOnRecovery"),
        ({"alarmEmail": "not-an-email"}, "alarmEmail"),
        ({"retryMaxReceives": "0"}, "retryMaxReceives"),
        ({"retryMaxReceives": "1001"}, "retryMaxReceives"),
        ({"webhookMemoryMb": "64"}, "webhookMemoryMb"),
        ({"logRetentionDays": "8"}, "logRetentionDays"),
        ({"deliveryBudgetSeconds": "8"}, "deliveryBudgetSeconds"),
        ({"retryMaxConcurrency": "1"}, "retryMaxConcurrency"),
        ({"retryMaxConcurrency": "1001"}, "retryMaxConcurrency"),
        ({"retainData": "perhaps"}, "retainData"),
        ({"deliveryBudgetSeconds": "0"}, "deliveryBudgetSeconds"),
        ({"logLevel": "LOUD"}, "logLevel"),
        ({"skipBundling": "perhaps"}, "skipBundling"),
        ({"tracing": "sometimes"}, "tracing"),
        ({"segmentP99EventBytes": "99"}, "segmentP99EventBytes"),
        ({"segmentP99EventBytes": "32001"}, "segmentP99EventBytes"),
    ],
)
def test_invalid_values_are_rejected_naming_the_key(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"invalid CDK context: {named}\b"):
        config_from_context(context)


def test_budget_error_explains_the_segment_timeout() -> None:
    with pytest.raises(ConfigError, match="webhook timeout of 8 s"):
        config_from_context({"deliveryBudgetSeconds": 9})


def test_retry_concurrency_and_retention_from_the_command_line() -> None:
    config = config_from_context({"retryMaxConcurrency": "4", "retainData": "false"})
    assert config.retry_max_concurrency == 4
    assert config.retain_data is False


def test_secret_name_and_arn_are_exclusive() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"
    with pytest.raises(ConfigError, match="secretName and secretArn"):
        config_from_context({"secretName": "x", "secretArn": arn})


def test_event_lists_must_fit_lambdas_environment() -> None:
    names = [f"Event number {i:04d} with a long name" for i in range(100)]
    with pytest.raises(ConfigError, match=r"forwardEventNames.*4 KB"):
        config_from_context({"forwardEventNames": names})


def test_every_mapping_setting_is_a_context_key_under_its_own_name() -> None:
    # A new MappingConfig field is a cdk.json key without being declared again in the stack.
    mapping_keys = {"forwardEventPrefixes", "eventRenames", "redactPii", "fieldPaths"}
    assert mapping_keys <= set(CONTEXT_KEYS)
    assert len(CONTEXT_KEYS) == len(set(CONTEXT_KEYS))


def test_misspelt_keys_are_reported_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown context key\(s\): trottleRateLimit; known"):
        config_from_context({"trottleRateLimit": 5})


def test_cdk_and_feature_flag_keys_are_not_ours_to_check() -> None:
    config_from_context({"@aws-cdk/core:checkSecretUsage": True, "aws:cdk:bundling-stacks": ["x"]})


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_context({"stage": "a b", "retryMaxReceives": "0"})
    assert "stage:" in str(raised.value)
    assert "retryMaxReceives:" in str(raised.value)


def test_the_app_refuses_invalid_context() -> None:
    with pytest.raises(ConfigError, match="throttleBurstLimit"):
        build_app({"throttleBurstLimit": "lots", "skipBundling": True})
