"""What ``segment-raindrop replay`` runs with: the deployment's own settings when it is given a
stack, the operator's shell otherwise.

A replay re-maps the dead-lettered events, so it must map, redact and route them as the
deployment does. With ``--stack`` the settings are read from the stack's replay function
(``lambda:GetFunctionConfiguration``): mapping, redaction, project, field paths, Raindrop's and
Segment's URLs, the queues and the secret. A setting the operator's shell or an option gives
differently is refused unless ``--override-deployment`` says so, and then printed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop.core.config import ConfigError, ReplayConfig
from segment_raindrop.core.contract import StackOutput
from segment_raindrop.core.environment import read_replay_config, variable_names
from segment_raindrop_tools.cli_common import fail
from segment_raindrop_tools.stack_outputs import stack_outputs

_AWS_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 5}
)
_VARIABLES = variable_names(ReplayConfig)

Say = Callable[[str], None]


@dataclass(frozen=True)
class Override:
    variable: str
    deployed: str | None
    given: str


def replay_config(
    *,
    shell: Mapping[str, str],
    queue_url: str | None,
    stack: str | None,
    region: str | None,
    secret_id: str | None,
    dry_run: bool,
    override_deployment: bool,
    say: Say,
) -> ReplayConfig:
    """The replay's configuration; exits (2) naming what is missing or differs."""
    given = {name: value for name, value in shell.items() if name in _VARIABLES and value.strip()}
    if queue_url:
        given["DLQ_URL"] = queue_url
    if secret_id:
        given["RAINDROP_SECRET_ID"] = secret_id
    if stack is None:
        env = given
    else:
        deployed = _deployed(stack, region)
        overrides = [
            Override(name, deployed.get(name), value)
            for name, value in sorted(given.items())
            if deployed.get(name) != value
        ]
        if overrides and not override_deployment:
            fail(_refusal(stack, overrides))
        for override in overrides:
            say(
                f"overriding the deployment's {override.variable}: {override.given!r} "
                f"(deployed: {override.deployed!r})"
            )
        env = {**deployed, **given}
    if not env.get("DLQ_URL"):
        fail("which dead-letter queue? Pass --queue-url URL or --stack NAME")
    if not dry_run and not env.get("RAINDROP_SECRET_ID"):
        fail(
            "which secret holds the Raindrop key? Pass --secret-id, --stack NAME, "
            "or set RAINDROP_SECRET_ID"
        )
    try:
        return read_replay_config(env)
    except ConfigError as exc:
        fail(f"configuration is invalid: {exc}")


def _deployed(stack: str, region: str | None) -> dict[str, str]:
    """The replay function's variables, as the stack set them."""
    outputs = stack_outputs(stack, region)
    function = outputs.get(StackOutput.REPLAY_FUNCTION_NAME)
    if function is None:
        fail(f"stack {stack!r} has no {StackOutput.REPLAY_FUNCTION_NAME} output")
    client = boto3.client("lambda", region_name=region, config=_AWS_CONFIG)
    try:
        configuration = client.get_function_configuration(FunctionName=function)
    except (BotoCoreError, ClientError) as exc:
        fail(
            f"cannot read the settings of the replay function {function!r} "
            f"({_error_code(exc)}); replay with the deployment's settings needs "
            "lambda:GetFunctionConfiguration on it"
        )
    variables = configuration.get("Environment", {}).get("Variables", {})
    return {name: value for name, value in variables.items() if name in _VARIABLES}


def _refusal(stack: str, overrides: list[Override]) -> str:
    lines = [
        f"your settings differ from the deployment's ({stack}'s replay function), which "
        "decide how dead-lettered events are mapped, redacted and routed:"
    ]
    lines += [f"  {o.variable}: yours {o.given!r}, deployed {o.deployed!r}" for o in overrides]
    lines.append(
        "unset them (or drop the option) to replay as deployed, or pass "
        "--override-deployment to replay with yours"
    )
    return "\n".join(lines)


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
