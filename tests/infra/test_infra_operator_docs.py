"""The operator commands in docs/deploy.md, docs/runbook.md and README.md work as written.

Each is run through bash as the reader would paste it, with stand-ins for the AWS CLI and npx
where an account would be needed, or checked for the flag without which it misbehaves. (The
general extraction of every offline shell block is tests' business elsewhere; these are the
commands that reach AWS.)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from aws_cdk import assertions

from infra.app import PROJECT_ROOT
from infra.config import config_from_context
from tests.infra.support import resources

DOCS = {
    name: (PROJECT_ROOT / name).read_text()
    for name in ("README.md", "docs/deploy.md", "docs/runbook.md")
}
DEPLOY = DOCS["docs/deploy.md"]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^\s*```sh\n(.*?)^\s*```", text, flags=re.DOTALL | re.MULTILINE)


def shell_commands(text: str) -> list[list[str]]:
    """Every command line of the document's sh blocks, continuations joined, split into words
    (pipelines and `;` lists split into their commands)."""
    commands: list[list[str]] = []
    for block in shell_blocks(text):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            # A quoted string may span lines (python3 -c "..."): read on until it closes.
            pending = f"{pending}\n{line}" if pending else line
            try:
                words = _split(pending)
            except ValueError:
                continue
            pending = ""
            commands.extend(words)
        assert not pending, f"unterminated quote in: {pending}"
    return [command for command in commands if command]


def _split(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";|&")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for word in lexer:
        if set(word) <= set(";|&"):
            commands.append([])
        else:
            commands[-1].append(word)
    return commands


def _bash(script: str, **env: str) -> str:
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run(
        [bash, "-euo", "pipefail", "-c", script],
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def _block_with(text: str, needle: str) -> str:
    (block,) = [block for block in shell_blocks(text) if needle in block]
    return block


# Stand-ins for the commands that would need an AWS account or the network.
_FAKE_AWS = """
aws() {
  case "$1 $2" in
    "sts get-caller-identity") echo 123456789012 ;;
    "configure get") echo us-west-2 ;;
    *) echo "unexpected: aws $*" >&2; return 1 ;;
  esac
}
npx() { echo "npx $*"; }
make() { :; }
"""


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "ap-south-1"}, "eu-central-1"),
        ({"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
        ({}, "us-west-2"),  # the profile's region
    ],
)
def test_bootstrap_uses_the_region_the_deploy_will(env: dict[str, str], region: str) -> None:
    # `aws configure get region` alone ignores AWS_REGION and AWS_DEFAULT_REGION, which the
    # CDK (and the deploy) honour: the bootstrap would go to another region.
    block = _block_with(DEPLOY, "cdk bootstrap")
    output = _bash(_FAKE_AWS + block, **env)
    assert output.strip().splitlines()[-1] == f"npx cdk bootstrap aws://123456789012/{region}"


def test_the_cdk_args_example_reaches_the_cdk_as_valid_context() -> None:
    # Make hands CDK_ARGS to a shell again: unquoted, ["Chat Started"] arrived as [Chat Started].
    (line,) = [
        line
        for block in shell_blocks(DEPLOY)
        for line in block.splitlines()
        if line.startswith("make deploy CDK_ARGS=")
    ]
    dry_run = _bash(f'make() {{ command make --dry-run "$@"; }}\n{line}')
    (cdk,) = [cmd for cmd in dry_run.splitlines() if cmd.startswith("npx cdk deploy")]
    words = shlex.split(cdk)
    context = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-c")
    config = config_from_context(context)
    assert config.mapping.forward_event_names == {"Chat Started"}
    assert config.alarm_email == "ops@example.com"


def test_the_non_interactive_deploy_turns_approval_off_once() -> None:
    # In CI there is no terminal to approve on; the CDK refuses --require-approval twice, so
    # CDK_ARGS cannot carry it.
    (line,) = [
        line
        for block in shell_blocks(DEPLOY)
        for line in block.splitlines()
        if line.startswith("make deploy REQUIRE_APPROVAL=")
    ]
    dry_run = _bash(f'make() {{ command make --dry-run "$@"; }}\n{line}')
    (cdk,) = [cmd for cmd in dry_run.splitlines() if cmd.startswith("npx cdk deploy")]
    words = shlex.split(cdk)
    assert words.count("--require-approval") == 1
    assert words[words.index("--require-approval") + 1] == "never"
    context = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-c")
    assert config_from_context(context).stage == "prod"


def _replay_invocations() -> list[tuple[str, list[str]]]:
    return [
        (name, command)
        for name, text in DOCS.items()
        for command in shell_commands(text)
        if command[:3] == ["aws", "lambda", "invoke"]
    ]


def test_every_replay_invocation_waits_for_the_replay() -> None:
    # The replay Lambda may run 15 minutes; the CLI's default 60 s read timeout gives up and
    # retries, starting up to three replays at once.
    invocations = _replay_invocations()
    assert len(invocations) >= 3
    for name, command in invocations:
        assert "--cli-read-timeout" in command, f"{name}: {shlex.join(command)}"
        timeout = int(command[command.index("--cli-read-timeout") + 1])
        assert timeout == 0 or timeout >= 900, f"{name}: {shlex.join(command)}"


def test_the_cli_is_run_with_its_extra() -> None:
    # The CLI's dependencies are the `cli` extra: a plain `uv run segment-raindrop` on a fresh
    # checkout fails with ModuleNotFoundError.
    extras = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(requirement.startswith("typer") for requirement in extras["cli"])
    runs = [
        (name, command)
        for name, text in DOCS.items()
        for command in map(_without_assignments, shell_commands(text))
        if command[:2] == ["uv", "run"] and "segment-raindrop" in command
    ]
    assert len(runs) >= 10
    for name, command in runs:
        words = command[: command.index("segment-raindrop")]
        assert "--all-extras" in words or ("--extra" in words and "cli" in words), (
            f"{name}: {shlex.join(command)}"
        )


def _without_assignments(command: list[str]) -> list[str]:
    """The command without its leading `NAME=value` environment assignments."""
    while command and re.match(r"^[A-Z_][A-Z0-9_]*=", command[0]):
        command = command[1:]
    return command


def test_node_versions_that_are_still_supported() -> None:
    for name in ("README.md", "docs/deploy.md"):
        assert "Node.js 22 or 24" in DOCS[name], name
        assert not re.search(r"Node\.js (≥ ?|>= ?)?20\b", DOCS[name]), name


def test_segments_own_labels() -> None:
    assert "**Configure Webhooks (Actions)**" in DEPLOY
    assert "**Settings → Advanced Settings → Shared Secret**" in DEPLOY


def test_answers_are_attributed_to_who_gives_them() -> None:
    readme = DOCS["README.md"]
    # A function timeout behind a REST proxy integration is a 502, not a 504.
    assert "504" not in readme
    assert "502" in readme
    # Bodies over Lambda's payload get their 413 from API Gateway, not from the forwarder.
    (row,) = [line for line in readme.splitlines() if line.startswith("| `413` |")]
    assert "API Gateway" in row
    assert "ApiRequestsTooLarge" in row


def test_every_alarm_is_documented_with_how_to_fire_it(template: assertions.Template) -> None:
    names = {
        alarm["Properties"]["AlarmName"].removeprefix("segment-raindrop-prod-")
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    section = DEPLOY[DEPLOY.index("### Alarms") : DEPLOY.index("## 9.")]
    documented = set(re.findall(r"^\| `([A-Za-z<>0-9]+)`", section, flags=re.MULTILINE))
    documented |= set(re.findall(r"`(<Function>\w+)`", section))
    expanded = {
        name.replace("<Function>", function)
        for name in documented
        for function in ("Webhook", "RetryWorker", "Replay", "Mirror")
    }
    assert names <= expanded
    assert "aws cloudwatch set-alarm-state" in section


def test_destroy_says_what_it_keeps() -> None:
    section = DEPLOY[DEPLOY.index("## 10. Remove it") :]
    for kept in ("the secret the stack created", "the dead-letter queue", "retainData=false"):
        assert kept in section
    # CloudFormation deletes a secret at once: no recovery window to count on.
    assert "*without* Secrets Manager's recovery window" in section


_FAKE_SECRETS_MANAGER = """
aws() {
  case "$1 $2" in
    "secretsmanager get-secret-value") printf '%s\\n' "$SECRET_JSON" ;;
    "secretsmanager put-secret-value") cat > "$PUT_FILE" ;;
    *) echo "unexpected: aws $*" >&2; return 1 ;;
  esac
}
"""


def _rotation_step(number: int) -> str:
    section = DEPLOY[DEPLOY.index("## 5. Read and rotate") : DEPLOY.index("## 6.")]
    start = section.index(f"\n{number}. ")
    end = section.find(f"\n{number + 1}. ", start)
    step = section[start : end if end != -1 else None]
    (block,) = shell_blocks(step)
    return block


def test_the_token_rotation_keeps_the_old_token_then_removes_it(tmp_path: Path) -> None:
    put = tmp_path / "put.json"
    before = {"raindrop_api_key": "rk", "webhook_token": "old", "segment_shared_secret": "ss"}
    env = {"SECRET_ARN": "arn", "PUT_FILE": str(put)}
    _bash(_FAKE_SECRETS_MANAGER + _rotation_step(1), SECRET_JSON=json.dumps(before), **env)
    rotated = json.loads(put.read_text())
    assert rotated["webhook_token_previous"] == "old"
    assert len(rotated["webhook_token"]) >= 32
    assert rotated["webhook_token"] != "old"
    assert {k: v for k, v in rotated.items() if not k.startswith("webhook_token")} == {
        "raindrop_api_key": "rk",
        "segment_shared_secret": "ss",
    }
    _bash(_FAKE_SECRETS_MANAGER + _rotation_step(4), SECRET_JSON=json.dumps(rotated), **env)
    finished = json.loads(put.read_text())
    assert finished == {k: v for k, v in rotated.items() if k != "webhook_token_previous"}
