"""Synthesised templates are expensive (5-10 s each): build each variant once per session."""

from __future__ import annotations

import pytest
from aws_cdk import assertions

from tests.infra.support import synth

# Every optional setting, given as `-c key=value` would give it: strings.
CUSTOM_CONTEXT = {
    "stage": "staging",
    "secretName": "segment-raindrop/staging",
    "raindropApiUrl": "https://raindrop.example.com/v1",
    "raindropProjectId": "proj-123",
    "forwardEventPrefixes": '["AI ", "LLM "]',
    "forwardEventNames": '["Chat Started"]',
    "eventRenames": '{"AI Chat Completed": "chat"}',
    "feedbackEventNames": '["Thumbs"]',
    "forwardIdentify": "false",
    "enrichFromContextTraits": "false",
    "fieldPaths": '{"ai_data.input": ["properties.prompt"]}',
    "throttleRateLimit": "25",
    "throttleBurstLimit": "50",
    "sdkThrottleRateLimit": "40",
    "sdkThrottleBurstLimit": "80",
    "alarmEmail": "ops@example.com",
    "retryMaxReceives": "5",
    "webhookMemoryMb": "2048",
    "logRetentionDays": "90",
    "deliveryBudgetSeconds": "6.5",
    "logLevel": "DEBUG",
    "retryMaxConcurrency": "5",
    "retainData": "false",
    "tracing": "false",
}


@pytest.fixture(scope="session")
def template() -> assertions.Template:
    """The stack with cdk.json's defaults."""
    return synth()


@pytest.fixture(scope="session")
def custom_template() -> assertions.Template:
    """The stack with every optional setting overridden (CUSTOM_CONTEXT)."""
    return synth(CUSTOM_CONTEXT)
