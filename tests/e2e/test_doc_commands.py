"""Every shell block of README.md and docs/*.md works as written, or says here why it is not run.

Each ```sh block is either run, through bash exactly as a reader pastes it, or listed in
:data:`NOT_RUN` with the reason (an AWS account, a process that runs until Ctrl-C, a value
only the reader has). A new block that is neither fails
:func:`test_every_shell_block_is_run_or_listed`.

The blocks run against what they were written for, on 127.0.0.1 only:

- local mode's blocks against a running local mode whose data directory is ``local-data/`` of
  the working directory (a scratch directory: the reader's checkout, minus their own
  ``local-data/``); ``uv run`` finds the project through ``UV_PROJECT``, offline;
- the blocks that use a deployment's outputs (``$STACK``, ``$WEBHOOK_URL``, ``$TOKEN``, ...)
  against a stand-in deployment: a CloudFormation stack ``segment-raindrop-prod`` in local
  mode's moto whose outputs are local mode's resources, with ``AWS_ENDPOINT_URL`` pointing
  there. The variables are those the docs' earlier (AWS-only) blocks would have set.

The only change made to a block: local mode's default port (8787) becomes the port this local
mode got, so a developer's running local mode is never disturbed. Any HTTPS request (PyPI, real
AWS) would go to a closed proxy port and fail: nothing leaves the machine.

``make`` targets are checked without running them (``make --dry-run``), and every
``CDK_ARGS`` example is taken through make's own quoting to the CDK context validation
(``infra.config.config_from_context``): a real ``make synth`` takes about 30 s each, and
tests/infra synthesises the stack already. tests/infra/test_infra_operator_docs.py runs the
AWS-bound commands against stand-ins for the AWS CLI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from infra.config import config_from_context
from segment_raindrop.adapters.queue_writer import QueueTarget
from segment_raindrop.core.config import ReplayConfig
from segment_raindrop.core.environment import variable_names
from segment_raindrop_tools import events as se
from tests.e2e.conftest import Local
from tests.support.queues import put_message
from tests.support.stack import create_replay_function

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", *sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")))
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console", "zsh"})
DOCUMENTED_PORT = 8787
STACK = "segment-raindrop-prod"


# --- the blocks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    doc: str
    text: str
    key: tuple[str, str, int]  # (doc, first command line without its comment, occurrence)

    def __str__(self) -> str:
        return f"{self.doc}: {self.key[1]!r} (#{self.key[2] + 1})"


_FENCE = re.compile(r"^([ \t]*)```([\w-]*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)


def _first_line(text: str) -> str:
    line = next(line for line in text.splitlines() if line.strip())
    return " ".join(line.split(" #")[0].split())


def shell_blocks(doc: str) -> list[Block]:
    """The doc's shell blocks in order (indented ones inside lists dedented)."""
    blocks = []
    seen: Counter[str] = Counter()
    for match in _FENCE.finditer((ROOT / doc).read_text(encoding="utf-8")):
        if match.group(2) not in SHELL_LANGUAGES:
            continue
        text = textwrap.dedent(match.group(3))
        first = _first_line(text)
        blocks.append(Block(doc, text, (doc, first, seen[first])))
        seen[first] += 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for doc in DOCS for block in shell_blocks(doc)]


# --- what is not run, and why -----------------------------------------------------------------

AWS = "needs an AWS account (tests/infra/test_infra_operator_docs.py runs it with a stand-in)"
AWS_ONLY = "needs an AWS account"
UNTIL_CTRL_C = "runs until Ctrl-C (tests/e2e/test_local_command.py runs `segment-raindrop local`)"

NOT_RUN: dict[tuple[str, str, int], str] = {
    ("README.md", "make local", 0): (
        f"{UNTIL_CTRL_C}; its second line, `make test`, is the whole suite this test is part of"
    ),
    ("docs/deploy.md", "make sync npm", 0): f"{AWS} (bootstrap)",
    (
        "docs/deploy.md",
        'make deploy CDK_ARGS="-c alarmEmail=ops@example.com -c \'forwardEventNames=[\\"Chat '
        'Started\\"]\'"',
        0,
    ): f"{AWS_ONLY}; its CDK_ARGS are checked by test_cdk_args_examples_are_valid_context",
    ("docs/deploy.md", "make deploy", 0): AWS_ONLY,
    (
        "docs/deploy.md",
        'make deploy REQUIRE_APPROVAL=never CDK_ARGS="-c stage=prod -c alarmEmail=ops@example.com"',
        0,
    ): AWS,
    ("docs/deploy.md", "aws lambda get-account-settings \\", 0): AWS_ONLY,
    (
        "docs/deploy.md",
        "aws service-quotas request-service-quota-increase --service-code lambda \\",
        0,
    ): f"{AWS_ONLY} (asks AWS for a quota increase)",
    ("docs/deploy.md", "STACK=segment-raindrop-prod", 0): (
        "reads the outputs with the AWS CLI; the blocks run here get the variables it sets"
    ),
    ("docs/deploy.md", "read -rs RAINDROP_KEY", 0): f"{AWS} (and waits for a pasted key)",
    (
        "docs/deploy.md",
        'TOKEN=$(aws secretsmanager get-secret-value --secret-id "$SECRET_ARN" --query '
        "SecretString --output text \\",
        0,
    ): AWS_ONLY,
    (
        "docs/deploy.md",
        'aws secretsmanager get-secret-value --secret-id "$SECRET_ARN" --query SecretString '
        "--output text \\",
        0,
    ): f"{AWS} (token rotation, step 1)",
    (
        "docs/deploy.md",
        'aws secretsmanager get-secret-value --secret-id "$SECRET_ARN" --query SecretString '
        "--output text \\",
        1,
    ): f"{AWS} (token rotation, step 4)",
    ("docs/deploy.md", "read -rs SHARED_SECRET; export SHARED_SECRET", 0): (
        f"{AWS_ONLY} (and waits for a pasted secret)"
    ),
    ("docs/deploy.md", "STAGE=prod", 0): f"{AWS_ONLY} (sets real alarms to ALARM)",
    ("docs/deploy.md", "REPLAY=$(output ReplayFunctionName)", 0): f"{AWS} (replay Lambda)",
    ("docs/deploy.md", "make destroy", 0): (
        f"{AWS_ONLY}; its CDK_ARGS are checked by test_cdk_args_examples_are_valid_context"
    ),
    ("docs/local-mode.md", "make local", 0): UNTIL_CTRL_C,
    ("docs/local-mode.md", "FORWARD_EVENT_NAMES='[\"Support Ticket Created\"]' make local", 0): (
        UNTIL_CTRL_C
    ),
    ("docs/local-mode.md", "RAINDROP_API_KEY=<your Raindrop write key> make local", 0): (
        f"{UNTIL_CTRL_C}, and needs the reader's Raindrop key (real deliveries)"
    ),
    ("docs/runbook.md", "STACK=segment-raindrop-prod", 0): (
        "reads the outputs with the AWS CLI; the blocks run here get the variables it sets"
    ),
    (
        "docs/runbook.md",
        'aws sqs receive-message --queue-url "$DLQ_URL" --max-number-of-messages 10 \\',
        0,
    ): f"{AWS_ONLY} (its local-mode form runs with the drill, step 4)",
    (
        "docs/runbook.md",
        'uv run --extra cli segment-raindrop replay --stack "$STACK" --dry-run',
        1,
    ): (
        "holds a placeholder (<secret arn>) and a confirmation prompt; each option is covered by "
        "tests/integration/test_replay_cli.py"
    ),
    ("docs/runbook.md", 'aws lambda invoke --function-name "$(out ReplayFunctionName)" \\', 0): AWS,
    (
        "docs/runbook.md",
        'DLQ_ARN=$(aws sqs get-queue-attributes --queue-url "$DLQ_URL" --attribute-names '
        "QueueArn \\",
        0,
    ): f"{AWS_ONLY}; moto has no StartMessageMoveTask",
    (
        "docs/runbook.md",
        "INTAKE_DLQ_ARN=$(aws sqs get-queue-attributes --queue-url "
        '"$(output SegmentEventsDeadLetterQueueUrl)" \\',
        0,
    ): f"{AWS_ONLY}; moto has no StartMessageMoveTask",
    (
        "docs/deploy.md",
        "aws events list-event-sources --name-prefix aws.partner/segment.com --region "
        '"$AWS_REGION" \\',
        0,
    ): f"{AWS_ONLY} (the partner source Segment created in the account)",
    (
        "docs/deploy.md",
        'make deploy CDK_ARGS="-c segmentEventSource=aws.partner/segment.com/abc123"',
        0,
    ): f"{AWS_ONLY}; its CDK_ARGS are checked by test_cdk_args_examples_are_valid_context",
    (
        "docs/runbook.md",
        "RAINDROP_API_KEY=drill-key uv run --extra cli segment-raindrop local \\",
        0,
    ): (f"{UNTIL_CTRL_C} (the drill's Raindrop-down local mode is this test's, with an outage)"),
    ("docs/runbook.md", 'uv run python -c "', 0): (
        "runs until Ctrl-C (the drill's Raindrop stand-in; healing is this test's receiver)"
    ),
    # Raindrop -> Segment: the write key, the SDK endpoint and the mirror's dead letters and
    # partials table exist only in a deployment.
    ("docs/deploy.md", "read -rs SEGMENT_WRITE_KEY", 0): f"{AWS_ONLY} (and waits for a pasted key)",
    ("docs/deploy.md", "RAINDROP_SDK_ENDPOINT=$(output RaindropSdkEndpoint)", 0): AWS_ONLY,
    (
        "docs/runbook.md",
        'aws sqs receive-message --queue-url "$DLQ_URL" --max-number-of-messages 10 \\',
        1,
    ): f"{AWS_ONLY} (Segment-bound dead letters come from a deployed mirror)",
    (
        "docs/runbook.md",
        'aws dynamodb scan --table-name "$(out PartialsTableName)" --select COUNT',
        0,
    ): AWS_ONLY,
}


# --- the scene the blocks run in --------------------------------------------------------------


@dataclass
class Scene:
    """A running local mode in ``cwd/local-data``, a stand-in deployment in its moto, and the
    environment a reader's shell would have at that point of the docs."""

    local: Local
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.local.endpoints.webhook_url.split(":")[2].split("/")[0])

    def dead_letter(self) -> None:
        """What the drill's first steps leave: one message Raindrop kept failing."""
        resources = self.local.mode.resources
        put_message(
            SimpleNamespace(sqs=resources.sqs_client(), resources=resources),
            QueueTarget.DEAD_LETTER,
            [se.chat(1), se.chat(2)],
        )

    def dlq_depth(self) -> int:
        return self.local.queue_depth(self.local.endpoints.dlq_url)


ALARMS = tuple(f"{STACK}-{name}" for name in ("DeadLetterQueueNotEmpty", "WebhookErrors"))


def _moto_clients(local: Local) -> dict[str, Any]:
    ep = local.endpoints
    return {
        service: boto3.client(
            service,
            endpoint_url=ep.moto_endpoint,
            region_name=ep.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for service in ("cloudformation", "cloudwatch")
    }


def _stand_in_deployment(local: Local) -> dict[str, str]:
    """Stack ``segment-raindrop-prod`` in local mode's moto, its outputs local mode's resources,
    and two of its alarms (OK); returns the variables the docs' AWS blocks would set."""
    ep = local.endpoints
    clients = _moto_clients(local)
    # The replay function holds the deployment's settings, which `replay --stack` reads: here
    # local mode's resources, as the shell the blocks run in has them too.
    settings = {
        name: value
        for name, value in ep.replay_environment().items()
        if name in variable_names(ReplayConfig)
    }
    outputs = {
        "WebhookUrl": ep.webhook_url,
        "SegmentLibraryHost": ep.tracking_api_host,
        "RetryQueueUrl": ep.retry_queue_url,
        "DeadLetterQueueUrl": ep.dlq_url,
        "SecretArn": ep.secret_id,
        "ReplayFunctionName": create_replay_function(
            ep.moto_endpoint, f"{STACK}-replay-{secrets.token_hex(3)}", settings
        ),
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": STACK}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    clients["cloudformation"].create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    for name in ALARMS:
        clients["cloudwatch"].put_metric_alarm(
            AlarmName=name,
            Namespace="SegmentRaindrop",
            MetricName="EventsDeadLettered",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    return {
        "STACK": STACK,
        "WEBHOOK_URL": ep.webhook_url,
        "SECRET_ARN": ep.secret_id,
        "DLQ_URL": ep.dlq_url,
        "RETRY_QUEUE_URL": ep.retry_queue_url,
        "TOKEN": ep.webhook_token,
        "SECRET": ep.shared_secret,
        "AWS_ENDPOINT_URL": ep.moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": ep.region,
        "AWS_REGION": ep.region,
    }


@pytest.fixture
def scene(start_local: Callable[..., Local], tmp_path: Path) -> Iterator[Scene]:
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    # What a checkout offers the blocks that name files in it (node's script, say).
    (cwd / "tests").symlink_to(ROOT / "tests")
    # The reader's own events file, which local-mode.md's curl posts.
    (cwd / "my-events.json").write_text(json.dumps([se.chat(11), se.feedback(12, about=11)]))
    local = start_local(data_dir=cwd / "local-data")
    # Bound, never listening: a connection to it is refused at once.
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    env = {
        **os.environ,
        **_stand_in_deployment(local),
        "UV_PROJECT": str(ROOT),
        "UV_OFFLINE": "1",
        "UV_NO_PROGRESS": "1",
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "COLUMNS": "200",
    }
    env.pop("SEGMENT_RAINDROP_DATA_DIR", None)
    try:
        with closed:
            yield Scene(local=local, cwd=cwd, env=env)
    finally:
        # moto's backends belong to the process, shared by every local mode the tests start.
        clients = _moto_clients(local)
        clients["cloudformation"].delete_stack(StackName=STACK)
        clients["cloudwatch"].delete_alarms(AlarmNames=list(ALARMS))


# --- how each run block is run and checked ----------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Run the block; ``before`` sets the scene, ``check`` reads the output (stdout + stderr).

    ``exit_echoed``: the block ends ``echo "exit $?"`` to show a command's status, so it runs
    without ``-e`` and the echoed status must be this one. ``terminal``: what the reader's
    terminal already ran, quoted from an earlier block, when the doc continues in it.
    """

    check: Callable[[str, Scene], None]
    before: Callable[[Scene], None] | None = None
    tools: tuple[str, ...] = ()
    exit_echoed: int | None = None
    terminal: str = ""


_TABLE_LINES = re.compile(r"[│┃║|─━═┌┐└┘├┤┬┴┼╭╮╰╯]")


def _says(*fragments: str) -> Callable[[str, Scene], None]:
    """Each fragment appears in the output, read without line breaks and table rules."""

    def check(output: str, _scene: Scene) -> None:
        flat = " ".join(_TABLE_LINES.sub(" ", output).split())
        for fragment in fragments:
            assert fragment in flat, f"{fragment!r} not in the output"

    return check


def _curl_answers(count: int) -> Callable[[str, Scene], None]:
    def check(output: str, _scene: Scene) -> None:
        answers = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert len(answers) == count, output
        for answer in answers:
            assert answer.get("received", 0) >= 1, answer
            assert answer["received"] == answer["forwarded"] + answer["filtered"], answer

    return check


def _segment_actions(output: str, _scene: Scene) -> None:
    result = json.loads(output[output.index("{") :])
    assert result["errors"] == [], result
    assert [response["status"] for response in result["responses"]] == [200], result


def _dlq_replayed(output: str, scene: Scene) -> None:
    _says("messages replayed and deleted")(output, scene)
    assert scene.dlq_depth() == 0


def _raindrop_down(scene: Scene) -> None:
    scene.local.receiver.outage()


def _raindrop_back(scene: Scene) -> None:
    scene.local.receiver.heal()


SEND_SAMPLE = _says("Raindrop got 7 of 8 events")
# The drill's steps 5 and 7 run in terminal 2, where step 4 sourced local mode's environment.
DRILL_TERMINAL_2 = "set -a; source local-data/local.env; set +a\n"

RUN: dict[tuple[str, str, int], Run] = {
    ("docs/deploy.md", 'curl -sS -X POST "$WEBHOOK_URL" \\', 0): Run(
        check=_curl_answers(1), tools=("curl",)
    ),
    (
        "docs/deploy.md",
        'uv run --extra cli segment-raindrop status --stack "$STACK" --ping',
        0,
    ): Run(
        check=_says("Ping HTTP 200: received 1, forwarded 1", "Healthy: nothing needs attention.")
    ),
    ("docs/local-mode.md", "TOKEN=$(jq -r .webhook_token local-data/local.json)", 0): Run(
        check=_curl_answers(2), tools=("curl", "jq", "openssl")
    ),
    ("docs/local-mode.md", "uv run --extra cli segment-raindrop send-sample", 0): Run(
        check=SEND_SAMPLE
    ),
    (
        "docs/local-mode.md",
        'echo \'{"url": "http://127.0.0.1:8787/segment", "batch": true,',
        0,
    ): Run(check=_segment_actions, tools=("node",)),
    ("docs/local-mode.md", "set -a; source local-data/local.env; set +a", 0): Run(
        check=_says("Dry run (nothing changed)", "Everything selected would be replayed.")
    ),
    (
        "docs/local-mode.md",
        "uv run --extra cli segment-raindrop map < tests/fixtures/ai_conversation.json",
        0,
    ): Run(check=_says("7 events: 5 mapped, 2 filtered, 0 invalid", '"events": [')),
    ("docs/local-mode.md", "uv run --extra cli segment-raindrop status", 0): Run(
        check=_says("local mode (local-data/local.json)", "Healthy: nothing needs attention.")
    ),
    ("docs/runbook.md", 'uv run --extra cli segment-raindrop status --stack "$STACK"', 0): Run(
        check=_says(
            f"status: stack {STACK}",
            "none of 2 in ALARM",
            "Ping HTTP 200: received 1, forwarded 1",
            '"ok": true',
        )
    ),
    (
        "docs/runbook.md",
        'uv run --extra cli segment-raindrop replay --stack "$STACK" --dry-run',
        0,
    ): Run(check=_says("Dry run (nothing changed)")),
    # The outage drill (§5), with this test's receiver as the Raindrop that is down, then back.
    ("docs/runbook.md", "uv run --extra cli segment-raindrop send-sample", 0): Run(
        check=SEND_SAMPLE
    ),
    ("docs/runbook.md", "set -a; source local-data/local.env; set +a", 0): Run(
        before=Scene.dead_letter,
        check=_says("Dry run (nothing changed)", "messages received 1", '"reason": "transient"'),
        tools=("aws", "jq"),
    ),
    (
        "docs/runbook.md",
        'uv run --extra cli segment-raindrop replay --queue-url "$DLQ_URL" --yes; echo "exit $?"',
        0,
    ): Run(
        before=_raindrop_down,
        check=_says("messages kept 1"),
        exit_echoed=1,
        terminal=DRILL_TERMINAL_2,
    ),
    (
        "docs/runbook.md",
        'uv run --extra cli segment-raindrop replay --queue-url "$DLQ_URL" --yes; echo "exit $?"',
        1,
    ): Run(before=_raindrop_back, check=_dlq_replayed, exit_echoed=0, terminal=DRILL_TERMINAL_2),
}


# --- the tests --------------------------------------------------------------------------------


def test_every_shell_block_is_run_or_listed() -> None:
    blocks = all_blocks()
    keys = [block.key for block in blocks]
    unaccounted = [str(block) for block in blocks if block.key not in RUN | NOT_RUN]
    assert not unaccounted, (
        "shell blocks neither run by this test nor listed in NOT_RUN with a reason: "
        + "; ".join(unaccounted)
    )
    assert not set(RUN) & set(NOT_RUN)
    stale = sorted((set(RUN) | set(NOT_RUN)) - set(keys))
    assert not stale, f"listed blocks that are no longer in the docs: {stale}"


def _bash(script: str, *, cwd: Path, env: dict[str, str], errexit: bool) -> tuple[int, str]:
    bash = shutil.which("bash")
    assert bash is not None
    flags = ["-euo", "pipefail"] if errexit else ["-uo", "pipefail"]
    result = subprocess.run(
        [bash, *flags, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stdout + result.stderr


def _run_doc(doc: str, scene: Scene) -> list[str]:
    """Run the doc's RUN blocks in order; returns what was not run for lack of a tool."""
    missing_tools = []
    for block in shell_blocks(doc):
        spec = RUN.get(block.key)
        if spec is None:
            continue
        absent = [tool for tool in spec.tools if shutil.which(tool, path=scene.env["PATH"]) is None]
        if absent:
            missing_tools.append(f"{block} (needs {', '.join(absent)})")
            continue
        if spec.before is not None:
            spec.before(scene)
        script = spec.terminal + block.text
        script = script.replace(f"127.0.0.1:{DOCUMENTED_PORT}", f"127.0.0.1:{scene.port}")
        status, output = _bash(
            script, cwd=scene.cwd, env=scene.env, errexit=spec.exit_echoed is None
        )
        assert status == 0, f"{block} exited {status}:\n{output}"
        if spec.exit_echoed is not None:
            echoed = re.findall(r"^exit (\d+)$", output, flags=re.MULTILINE)
            assert echoed == [str(spec.exit_echoed)], f"{block}: {echoed}\n{output}"
        try:
            spec.check(output, scene)
        except AssertionError as exc:
            raise AssertionError(f"{block}: {exc}\n{output}") from None
    return missing_tools


@pytest.mark.parametrize("doc", sorted({key[0] for key in RUN}))
def test_the_docs_blocks_run_as_written(doc: str, scene: Scene) -> None:
    missing = _run_doc(doc, scene)
    assert scene.local.receiver.callback_errors == []
    if missing:
        pytest.skip("not run for lack of a tool (the others passed): " + "; ".join(missing))


# --- make targets and CDK_ARGS examples -------------------------------------------------------


def _commands(block: Block) -> list[str]:
    """The block's command lines, with ``# or: <command>`` alternatives as commands too."""
    lines = []
    for line in block.text.splitlines():
        command, _, comment = line.partition(" #")
        lines.append(command.strip())
        if comment.strip().startswith("or:"):
            lines.append(comment.strip().removeprefix("or:").strip())
    return [line for line in lines if line]


def _make_words(command: str) -> list[str] | None:
    """The words after ``make`` when the command runs make (after NAME=value assignments)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words = words[1:]
    return words[1:] if words[:1] == ["make"] else None


def _make_commands() -> list[str]:
    return [
        command
        for block in all_blocks()
        for command in _commands(block)
        if _make_words(command) is not None
    ]


def _documented_targets() -> set[str]:
    targets = set()
    for command in _make_commands():
        words = _make_words(command) or []
        targets |= {word for word in words if "=" not in word and not word.startswith("-")}
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        targets |= set(re.findall(r"`make ([a-z-]+)`", text))
    return targets


def test_every_documented_make_target_exists() -> None:
    targets = _documented_targets()
    assert {"local", "test", "synth", "deploy", "destroy", "help", "sample"} <= targets
    for target in sorted(targets):
        result = subprocess.run(
            ["make", "--dry-run", target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"make {target}: {result.stderr}"
    listed = subprocess.run(
        ["make", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for target in ("local", "test", "synth", "deploy", "destroy", "sample"):
        assert re.search(rf"^\s+{target}\s", listed, flags=re.MULTILINE), target


def test_cdk_args_examples_are_valid_context() -> None:
    examples = [command for command in _make_commands() if "CDK_ARGS=" in command]
    assert len(examples) >= 2
    for example in examples:
        # Make hands CDK_ARGS to a shell once more: what the CDK gets is what it prints.
        status, printed = _bash(
            f'make() {{ command make --dry-run "$@"; }}\n{example}',
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
            errexit=True,
        )
        assert status == 0, printed
        (cdk,) = [line for line in printed.splitlines() if line.startswith("npx cdk ")]
        words = shlex.split(cdk)
        context = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-c")
        assert context, cdk
        config_from_context(context)  # raises ConfigError naming the key
