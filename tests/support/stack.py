"""A deployed stack as `--stack` finds it, in moto: the outputs the tools read, and the replay
function holding the settings the stack gave it."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import Any

import boto3

from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.core.contract import StackOutput
from segment_raindrop.core.environment import to_environment

REGION = "us-east-1"


def _client(endpoint_url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_replay_function(endpoint_url: str, name: str, variables: dict[str, str]) -> str:
    """A Lambda function named ``name`` holding ``variables``, as the stack's replay function
    holds its settings (its code is never run); returns its name."""
    # IAM is global, in moto as in AWS, and outlives a test's other resources: a name of its own.
    iam = _client(endpoint_url, "iam")
    role_name = f"{name}-{secrets.token_hex(4)}"
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")
    _client(endpoint_url, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="segment_raindrop.handlers.replay.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": variables},
    )
    return name


def deploy_stack(aws: Any, name: str, config: ForwarderConfig | None = None) -> str:
    """A stack named ``name`` whose replay function has ``config``'s variables (the aws
    fixture's configuration by default); returns the function's name."""
    variables = to_environment(config or aws.config)
    function = create_replay_function(aws.endpoint_url, f"{name}-replay", variables)
    outputs = {
        StackOutput.DEAD_LETTER_QUEUE_URL: aws.resources.dlq_url,
        StackOutput.RETRY_QUEUE_URL: aws.resources.retry_queue_url,
        StackOutput.SECRET_ARN: aws.resources.secret_id,
        StackOutput.REPLAY_FUNCTION_NAME: function,
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}},
        "Outputs": {output.value: {"Value": value} for output, value in outputs.items()},
    }
    cloudformation = _client(aws.endpoint_url, "cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return function
