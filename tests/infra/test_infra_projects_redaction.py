"""CDK context for per-project routing and redaction: validated at synth, and written into the
functions' environment as the runtime reads it back."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, config_from_context
from segment_raindrop.core.config import DeliveryConfig, ForwarderConfig
from segment_raindrop.core.environment import read_config, to_environment


def test_defaults_allow_any_project_and_redact_nothing() -> None:
    config = config_from_context({})
    assert config.raindrop_projects is None
    assert config.mapping.redact_pii is False
    assert config.mapping.redact_keys == frozenset()


def test_command_line_strings_are_parsed() -> None:
    config = config_from_context(
        {
            "raindropProjects": '["team-a", "team-b"]',
            "redactPii": "true",
            "redactKeys": '["email", "phone"]',
        }
    )
    assert config.raindrop_projects == ["team-a", "team-b"]
    assert config.mapping.redact_pii is True
    assert config.mapping.redact_keys == {"email", "phone"}


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"raindropProjects": '["Team-A"]'}, "raindropProjects"),
        ({"raindropProjects": '["ok", "-bad"]'}, "raindropProjects"),
        ({"raindropProjects": '"team-a"'}, "raindropProjects"),
        ({"redactPii": "perhaps"}, "redactPii"),
        ({"redactKeys": '[""]'}, "redactKeys"),
    ],
)
def test_invalid_values_are_rejected_naming_the_key(context: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"invalid CDK context: {named}\b"):
        config_from_context(context)


def test_the_settings_round_trip_through_the_environment() -> None:
    stack = config_from_context(
        {"raindropProjects": '["team-a"]', "redactPii": "true", "redactKeys": '["email"]'}
    )
    forwarder = ForwarderConfig(
        secret_id="s",
        retry_queue_url="r",
        dlq_url="d",
        mapping=stack.mapping,
        delivery=DeliveryConfig(projects=frozenset(stack.raindrop_projects or [])),
    )
    environment = to_environment(forwarder)
    assert environment["RAINDROP_PROJECTS"] == '["team-a"]'
    assert environment["REDACT_PII"] == "true"
    assert environment["REDACT_KEYS"] == '["email"]'
    assert read_config(environment) == forwarder


def test_a_malformed_project_in_the_environment_fails_start_up() -> None:
    with pytest.raises(ConfigError, match="RAINDROP_PROJECTS"):
        read_config(
            {
                "RAINDROP_SECRET_ID": "s",
                "RETRY_QUEUE_URL": "r",
                "DLQ_URL": "d",
                "RAINDROP_PROJECTS": '["Nope"]',
            }
        )
