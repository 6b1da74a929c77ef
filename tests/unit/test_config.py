"""Settings from environment variables (docs/architecture.md; defaults are docs/wire.md §3)."""

from __future__ import annotations

from typing import Any

import pytest

from segment_raindrop.core.config import (
    DEFAULT_RAINDROP_API_URL,
    ConfigError,
    DeliveryConfig,
    ForwarderConfig,
    MappingConfig,
)
from segment_raindrop.core.environment import (
    read_config,
    read_delivery_config,
    read_mapping_config,
    to_environment,
)
from segment_raindrop.service.runtime import LazyRuntime

REQUIRED = {
    "RAINDROP_SECRET_ID": "segment-raindrop/forwarder",
    "RETRY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/retry",
    "DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
}


def env(**values: str) -> dict[str, str]:
    return {**REQUIRED, **values}


# -- defaults --------------------------------------------------------------------------------


def test_mapping_defaults_are_wire_section_3() -> None:
    config = read_mapping_config({})
    assert config.forward_event_prefixes == ("AI ",)
    assert config.forward_event_names == frozenset()
    assert config.event_renames == {"AI Chat Completed": "ai_interaction"}
    assert config.feedback_event_names == frozenset({"AI Feedback Submitted"})
    assert config.forward_identify is True
    assert config.enrich_from_context_traits is True
    assert config == MappingConfig()


def test_forwarder_defaults_match_the_architecture_table() -> None:
    config = read_config(REQUIRED)
    assert config.secret_id == REQUIRED["RAINDROP_SECRET_ID"]
    assert config.retry_queue_url == REQUIRED["RETRY_QUEUE_URL"]
    assert config.dlq_url == REQUIRED["DLQ_URL"]
    assert config.secret_max_age_seconds == 300
    assert config.max_body_bytes == 6_291_456  # Lambda's 6 MiB invoke payload: all it can take
    assert config.retry_base_delay_seconds == 30
    assert config.retry_max_attempts == 8
    assert config.mapping == MappingConfig()
    delivery = config.delivery
    assert delivery.raindrop_api_url == DEFAULT_RAINDROP_API_URL == "https://api.raindrop.ai/v1"
    assert delivery.project_id is None
    assert delivery.chunk_max_items == 100
    assert delivery.chunk_max_bytes == 1_000_000
    assert delivery.concurrency == 8
    assert delivery.budget_seconds == 5.0  # init + budget + queueing inside Segment's 10 s


def test_default_forwarding_decisions() -> None:
    config = MappingConfig()
    assert config.is_forwarded_track("AI Chat Completed")
    assert config.is_forwarded_track("AI Feedback Submitted")
    assert config.is_forwarded_track("AI Tool Called")
    assert not config.is_forwarded_track("Order Completed")
    assert not config.is_forwarded_track("AIChat")
    assert not config.is_forwarded_track("ai Chat Completed")


def test_feedback_names_are_forwarded_without_a_prefix() -> None:
    config = MappingConfig(forward_event_prefixes=(), feedback_event_names=frozenset({"Thumbs"}))
    assert config.is_forwarded_track("Thumbs")
    assert not config.is_forwarded_track("AI Chat Completed")


def test_empty_or_blank_variables_mean_default() -> None:
    config = read_config(
        env(FORWARD_EVENT_PREFIXES="", CHUNK_MAX_ITEMS="  ", RAINDROP_PROJECT_ID="")
    )
    assert config.mapping.forward_event_prefixes == ("AI ",)
    assert config.delivery.chunk_max_items == 100
    assert config.delivery.project_id is None


def test_unrelated_variables_are_ignored() -> None:
    config = read_config(env(PATH="/usr/bin", AWS_REGION="eu-west-1", forward_identify="false"))
    assert config.mapping.forward_identify is True


def test_models_are_frozen() -> None:
    config = read_config(REQUIRED)
    with pytest.raises(ValueError):
        config.mapping.forward_identify = False  # type: ignore[misc]


# -- parsing each variable -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        ("FORWARD_EVENT_PREFIXES", '["AI ", "LLM "]', "forward_event_prefixes", ("AI ", "LLM ")),
        ("FORWARD_EVENT_PREFIXES", "[]", "forward_event_prefixes", ()),
        (
            "FORWARD_EVENT_NAMES",
            '["Prompt Sent", "Answer Rated"]',
            "forward_event_names",
            frozenset({"Prompt Sent", "Answer Rated"}),
        ),
        (
            "EVENT_RENAMES",
            '{"AI Chat Completed": "chat", "AI Tool Called": "tool"}',
            "event_renames",
            {"AI Chat Completed": "chat", "AI Tool Called": "tool"},
        ),
        ("EVENT_RENAMES", "{}", "event_renames", {}),
        (
            "FEEDBACK_EVENT_NAMES",
            '["Thumbs Up", "Thumbs Down"]',
            "feedback_event_names",
            frozenset({"Thumbs Up", "Thumbs Down"}),
        ),
        ("FORWARD_IDENTIFY", "false", "forward_identify", False),
        ("FORWARD_IDENTIFY", "False", "forward_identify", False),
        ("FORWARD_IDENTIFY", "0", "forward_identify", False),
        ("FORWARD_IDENTIFY", "true", "forward_identify", True),
        ("FORWARD_IDENTIFY", "1", "forward_identify", True),
        ("ENRICH_FROM_CONTEXT_TRAITS", "false", "enrich_from_context_traits", False),
        ("ENRICH_FROM_CONTEXT_TRAITS", "yes", "enrich_from_context_traits", True),
    ],
)
def test_mapping_variables(variable: str, raw: str, attribute: str, expected: Any) -> None:
    assert getattr(read_mapping_config({variable: raw}), attribute) == expected
    assert getattr(read_config(env(**{variable: raw})).mapping, attribute) == expected


def test_prefix_with_meaningful_trailing_space_survives() -> None:
    config = read_mapping_config({"FORWARD_EVENT_PREFIXES": '["AI "]'})
    assert config.is_forwarded_track("AI Chat Completed")
    assert not config.is_forwarded_track("AIR Ticket Booked")


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        (
            "RAINDROP_API_URL",
            "http://localhost:8787/v1",
            "raindrop_api_url",
            "http://localhost:8787/v1",
        ),
        (
            "RAINDROP_API_URL",
            "https://api.raindrop.ai/v1/",
            "raindrop_api_url",
            "https://api.raindrop.ai/v1",
        ),
        (
            "RAINDROP_API_URL",
            "https://eu.raindrop.example/v1//",
            "raindrop_api_url",
            "https://eu.raindrop.example/v1",
        ),
        ("RAINDROP_PROJECT_ID", "acme-prod", "project_id", "acme-prod"),
        ("CHUNK_MAX_ITEMS", "10", "chunk_max_items", 10),
        ("CHUNK_MAX_BYTES", "262144", "chunk_max_bytes", 262_144),
        ("DELIVERY_CONCURRENCY", "16", "concurrency", 16),
        ("DELIVERY_BUDGET_SECONDS", "4.5", "budget_seconds", 4.5),
        ("DELIVERY_MAX_ATTEMPTS", "5", "max_attempts", 5),
        ("RAINDROP_CONNECT_TIMEOUT_SECONDS", "1.5", "connect_timeout_seconds", 1.5),
        ("RAINDROP_READ_TIMEOUT_SECONDS", "15", "read_timeout_seconds", 15.0),
        ("RETRY_BACKOFF_BASE_SECONDS", "0.5", "backoff_base_seconds", 0.5),
        ("RETRY_BACKOFF_CAP_SECONDS", "0", "backoff_cap_seconds", 0.0),
        ("RETRY_AFTER_CAP_SECONDS", "10", "retry_after_cap_seconds", 10.0),
    ],
)
def test_delivery_variables(variable: str, raw: str, attribute: str, expected: Any) -> None:
    assert getattr(read_delivery_config({variable: raw}), attribute) == expected
    assert getattr(read_config(env(**{variable: raw})).delivery, attribute) == expected


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        ("SECRET_MAX_AGE_SECONDS", "0", "secret_max_age_seconds", 0),
        ("SECRET_MAX_AGE_SECONDS", "3600", "secret_max_age_seconds", 3600),
        ("MAX_BODY_BYTES", "1048576", "max_body_bytes", 1_048_576),
        ("RETRY_BASE_DELAY_SECONDS", "60", "retry_base_delay_seconds", 60),
        ("RETRY_MAX_ATTEMPTS", "3", "retry_max_attempts", 3),
    ],
)
def test_forwarder_variables(variable: str, raw: str, attribute: str, expected: Any) -> None:
    assert getattr(read_config(env(**{variable: raw})), attribute) == expected


def test_a_handler_reads_os_environ_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one place the process environment composes a runtime: a Lambda handler's first call.
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORWARD_IDENTIFY", "false")
    monkeypatch.setenv("CHUNK_MAX_ITEMS", "25")
    lazy = LazyRuntime(source="webhook")
    try:
        config = lazy.get().config
        monkeypatch.setenv("CHUNK_MAX_ITEMS", "50")
        assert lazy.get().config is config
    finally:
        lazy.reset()
    assert isinstance(config, ForwarderConfig)
    assert config.mapping.forward_identify is False
    assert config.delivery.chunk_max_items == 25


@pytest.mark.parametrize(
    "config",
    [
        ForwarderConfig(secret_id="s", retry_queue_url="r", dlq_url="d"),
        ForwarderConfig(
            secret_id="arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
            retry_queue_url="https://sqs/retry",
            dlq_url="https://sqs/dlq",
            max_body_bytes=4096,
            retry_max_attempts=3,
            mapping=MappingConfig(
                forward_event_prefixes=("AI ", "LLM "),
                forward_event_names=frozenset({"Chat Started"}),
                event_renames={"AI Chat Completed": "chat", "Ünïcode": "ok"},
                forward_identify=False,
            ),
            delivery=DeliveryConfig(
                raindrop_api_url="http://127.0.0.1:9/v1", project_id="acme", budget_seconds=6.5
            ),
        ),
    ],
)
def test_the_environment_written_reads_back_as_the_same_config(config: ForwarderConfig) -> None:
    environment = to_environment(config)
    assert all(isinstance(value, str) for value in environment.values())
    assert read_config(environment) == config


# -- bad values fail naming the variable -----------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        # not JSON (the comma-separated form is refused, it would lose "AI "'s space)
        ("FORWARD_EVENT_PREFIXES", "AI ,LLM "),
        ("FORWARD_EVENT_NAMES", "['Prompt Sent']"),
        ("EVENT_RENAMES", "AI Chat Completed=ai_interaction"),
        ("FEEDBACK_EVENT_NAMES", '["AI Feedback Submitted"'),
        # JSON of the wrong type
        ("FORWARD_EVENT_PREFIXES", '"AI "'),
        ("FORWARD_EVENT_PREFIXES", '{"AI ": true}'),
        ("FORWARD_EVENT_NAMES", "42"),
        ("FORWARD_EVENT_NAMES", "[1, 2]"),
        ("EVENT_RENAMES", '["AI Chat Completed", "ai_interaction"]'),
        ("EVENT_RENAMES", '{"AI Chat Completed": 3}'),
        ("FEEDBACK_EVENT_NAMES", "null"),
        # empty names
        ("FORWARD_EVENT_PREFIXES", '[""]'),
        ("FORWARD_EVENT_NAMES", '["Prompt Sent", ""]'),
        ("EVENT_RENAMES", '{"AI Chat Completed": ""}'),
        ("EVENT_RENAMES", '{"": "x"}'),
        ("FEEDBACK_EVENT_NAMES", '[""]'),
        # booleans
        ("FORWARD_IDENTIFY", "maybe"),
        ("ENRICH_FROM_CONTEXT_TRAITS", "2"),
    ],
)
def test_bad_mapping_values_name_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        read_mapping_config({variable: raw})
    with pytest.raises(ConfigError, match=variable):
        read_config(env(**{variable: raw}))


def test_bad_json_says_it_is_not_json() -> None:
    with pytest.raises(ConfigError, match=r"^FORWARD_EVENT_NAMES: not valid JSON \(.+\)$"):
        read_mapping_config({"FORWARD_EVENT_NAMES": "Prompt Sent"})


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("RAINDROP_API_URL", "api.raindrop.ai/v1"),
        ("RAINDROP_API_URL", "ftp://api.raindrop.ai/v1"),
        ("CHUNK_MAX_ITEMS", "0"),
        ("CHUNK_MAX_ITEMS", "10001"),
        ("CHUNK_MAX_ITEMS", "ten"),
        ("CHUNK_MAX_ITEMS", "2.5"),
        ("CHUNK_MAX_BYTES", "1023"),
        ("CHUNK_MAX_BYTES", "50000001"),
        ("DELIVERY_CONCURRENCY", "0"),
        ("DELIVERY_CONCURRENCY", "65"),
        ("DELIVERY_BUDGET_SECONDS", "0"),
        ("DELIVERY_BUDGET_SECONDS", "-1"),
        ("DELIVERY_BUDGET_SECONDS", "901"),
        ("DELIVERY_BUDGET_SECONDS", "soon"),
        ("DELIVERY_MAX_ATTEMPTS", "0"),
        ("RAINDROP_CONNECT_TIMEOUT_SECONDS", "0"),
        ("RAINDROP_READ_TIMEOUT_SECONDS", "301"),
        ("RETRY_BACKOFF_BASE_SECONDS", "-0.1"),
        ("RETRY_AFTER_CAP_SECONDS", "1000"),
    ],
)
def test_bad_delivery_values_name_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        read_delivery_config({variable: raw})
    with pytest.raises(ConfigError, match=variable):
        read_config(env(**{variable: raw}))


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("SECRET_MAX_AGE_SECONDS", "-1"),
        ("SECRET_MAX_AGE_SECONDS", "86401"),
        ("SECRET_MAX_AGE_SECONDS", "5m"),
        ("MAX_BODY_BYTES", "100"),
        ("MAX_BODY_BYTES", "10485761"),
        ("RETRY_BASE_DELAY_SECONDS", "-5"),
        ("RETRY_MAX_ATTEMPTS", "0"),
        ("RETRY_MAX_ATTEMPTS", "many"),
    ],
)
def test_bad_forwarder_values_name_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        read_config(env(**{variable: raw}))


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_missing_required_variable_is_named(missing: str) -> None:
    values = {name: value for name, value in REQUIRED.items() if name != missing}
    with pytest.raises(ConfigError, match=missing) as caught:
        read_config(values)
    for present in set(REQUIRED) - {missing}:
        assert present not in str(caught.value)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_blank_required_variable_counts_as_missing(missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        read_config(env(**{missing: "   "}))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        read_config({"RAINDROP_SECRET_ID": "x"})
    assert "RETRY_QUEUE_URL" in str(caught.value)
    assert "DLQ_URL" in str(caught.value)


def test_config_error_does_not_echo_the_value() -> None:
    # Messages go to logs; a mistyped value could be a secret pasted in the wrong place.
    with pytest.raises(ConfigError) as caught:
        read_delivery_config({"CHUNK_MAX_ITEMS": "sk-live-123456"})
    assert "sk-live-123456" not in str(caught.value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("project", ["Prodé", "Prod", "proj_1", "-x"])
def test_a_malformed_raindrop_project_id_is_refused_at_start_up(project: str) -> None:
    with pytest.raises(ConfigError, match="RAINDROP_PROJECT_ID"):
        read_delivery_config({"RAINDROP_PROJECT_ID": project})


def test_floats_survive_the_environment_round_trip() -> None:
    config = ForwarderConfig(
        secret_id="s",
        retry_queue_url="r",
        dlq_url="d",
        delivery=DeliveryConfig(budget_seconds=4.1234567, backoff_cap_seconds=123.4567),
    )
    assert read_config(to_environment(config)) == config
