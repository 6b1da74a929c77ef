"""`fieldPaths` in the CDK context: validated by the runtime's rules at synth, and written to
the functions' FIELD_PATHS only when given."""

from __future__ import annotations

import json

import pytest
from aws_cdk import assertions

from infra.config import CONTEXT_KEYS as STACK_KEYS
from infra.config import ConfigError, config_from_context
from segment_raindrop.core.context import MAPPING_KEYS as MAP_KEYS
from segment_raindrop.core.environment import read_mapping_config, to_environment
from segment_raindrop_tools.mapping_preview import mapping_config
from tests.infra.support import HANDLERS, environment

TEAM = {
    "event_id": ["properties.request_id", "messageId"],
    "ai_data.input": ["properties.prompt"],
    "ai_data.output": ["properties.completion"],
    "ai_data.convo_id": ["properties.conversation_id"],
}


@pytest.mark.parametrize("given", [TEAM, json.dumps(TEAM)])
def test_field_paths_from_cdk_json_or_the_command_line(given: object) -> None:
    config = config_from_context({"fieldPaths": given})
    assert config.mapping.field_paths == {field: tuple(paths) for field, paths in TEAM.items()}
    variables = to_environment(config.mapping)
    assert json.loads(variables["FIELD_PATHS"]) == TEAM
    assert read_mapping_config(variables) == config.mapping


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"prompt": ["properties.prompt"]}, "fieldPaths: Value error, unknown Raindrop field"),
        ({"event_id": []}, "event_id: needs at least one path"),
        ({"event_id": ["properties..request_id"]}, "malformed path 'properties..request_id'"),
        ("{not json", "fieldPaths: not valid JSON"),
    ],
)
def test_bad_field_paths_fail_the_synth_naming_the_key(given: object, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_context({"fieldPaths": given})
    assert "fieldPaths" in str(raised.value)
    assert problem in str(raised.value)


def test_default_field_paths_are_not_written() -> None:
    assert "FIELD_PATHS" not in to_environment(config_from_context({}).mapping)


def test_functions_read_the_stacks_field_paths(custom_template: assertions.Template) -> None:
    for handler in HANDLERS:
        variables = environment(custom_template, handler)
        assert json.loads(variables["FIELD_PATHS"]) == {"ai_data.input": ["properties.prompt"]}


def test_map_commands_context_keys_are_the_stacks() -> None:
    # `segment-raindrop map -c` names mapping settings as cdk.json does, without importing CDK.
    assert set(MAP_KEYS) <= set(STACK_KEYS)
    stack = config_from_context({"fieldPaths": TEAM, "forwardIdentify": False})
    preview = mapping_config({}, {"fieldPaths": TEAM, "forwardIdentify": False})
    assert preview == stack.mapping
