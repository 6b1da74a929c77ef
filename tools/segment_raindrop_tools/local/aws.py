"""The forwarder's AWS resources on a local endpoint (a moto server) for tests and local mode.

:func:`provision` creates what the deployed stack would: the secret, the retry queue and the
dead-letter queue, wired as ``docs/architecture.md`` describes, and returns the environment the
forwarder's handlers need to use them. moto is imported only when a server is started: this
module ships inside the package, and moto belongs to the ``cli`` extra, not the Lambda bundle.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = [
    "DLQ_RETENTION_SECONDS",
    "DUMMY_CREDENTIAL",
    "MAX_MESSAGE_BYTES",
    "RETRY_QUEUE_VISIBILITY_SECONDS",
    "LocalResources",
    "MotoServer",
    "drain_messages",
    "drain_queue",
    "peek_messages",
    "peek_queue",
    "provision",
    "start_moto_server",
]

DUMMY_CREDENTIAL = "testing"
MAX_MESSAGE_BYTES = 1_048_576  # SQS's maximum since 2025 (WIRE.md §4); moto 5.2.5 accepts it
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum, for time to notice and replay
# The retry queue keeps SQS's default retention; it must stay below the DLQ's, because a
# dead-lettered message's age counts from its first enqueue.
RETRY_QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
# Six times the retry worker's timeout, the AWS guidance for queues feeding Lambda.
RETRY_QUEUE_VISIBILITY_SECONDS = 360
_SECRET_KEYS = frozenset({"raindrop_api_key", "webhook_token", "segment_shared_secret"})


class MotoServer:
    """moto's threaded server on 127.0.0.1, bound to an ephemeral port unless told otherwise."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: Any = None
        self._port: int | None = None

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - see the module docstring

        if self._server is not None:
            raise RuntimeError("the moto server is already running")
        if self._requested_port:
            _ensure_port_free(self._requested_port)
        _quiet_werkzeug()
        server = ThreadedMotoServer(
            ip_address="127.0.0.1", port=self._requested_port, verbose=False
        )
        server.start()
        self._server = server
        self._port = int(server.get_host_and_port()[1])
        return self

    def stop(self) -> None:
        """Stop serving (idempotent). Takes up to half a second: werkzeug polls at 0.5 s."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def reset(self) -> None:
        """Delete every resource in every moto backend (``POST /moto-api/reset``)."""
        # No proxies: a developer's HTTP(S)_PROXY must not capture traffic meant for 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"{self.endpoint_url}/moto-api/reset"  # always http://127.0.0.1
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with opener.open(request, timeout=10) as response:
            response.read()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the moto server was never started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        # start_moto_server() hands back a running server that is then used in a with block.
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_moto_server(port: int = 0) -> MotoServer:
    """Start a moto server on 127.0.0.1 (``port=0``: an ephemeral port) and return it."""
    return MotoServer(port).start()


def _ensure_port_free(port: int) -> None:
    # moto's ThreadedMotoServer.start() waits forever when its server thread cannot bind, so a
    # busy port has to be detected before handing it over.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(f"port {port} on 127.0.0.1 is already in use") from exc


def _quiet_werkzeug() -> None:
    # moto's verbose=False only mutes its banner; werkzeug still logs one line per request to
    # stderr unless its logger already has a level, which would drown local mode's output.
    logger = logging.getLogger("werkzeug")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _client_options(endpoint_url: str | None, region: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "region_name": region,
        "config": Config(
            connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}
        ),
    }
    if endpoint_url is not None:
        # Explicit dummy keys: real credentials must never be sent to a local endpoint, and a
        # machine without any must still work.
        options |= {
            "endpoint_url": endpoint_url,
            "aws_access_key_id": DUMMY_CREDENTIAL,
            "aws_secret_access_key": DUMMY_CREDENTIAL,
        }
    return options


def sqs_client(endpoint_url: str | None, region: str) -> SQSClient:
    """An SQS client for ``endpoint_url`` (None: AWS itself, with the usual credentials)."""
    return boto3.client("sqs", **_client_options(endpoint_url, region))


def secretsmanager_client(endpoint_url: str | None, region: str) -> SecretsManagerClient:
    return boto3.client("secretsmanager", **_client_options(endpoint_url, region))


@dataclass(frozen=True)
class LocalResources:
    """What :func:`provision` created; ``secret_id`` is the secret's ARN."""

    secret_id: str
    retry_queue_url: str
    dlq_url: str
    region: str
    endpoint_url: str | None
    retry_max_receives: int = 8

    def environment(self) -> dict[str, str]:
        """The variables the forwarder's handlers need to run against these resources.

        With a local endpoint the AWS credentials are dummies; without one (real AWS) no
        endpoint or credentials are set, so the caller's own apply.
        """
        env = {
            "RAINDROP_SECRET_ID": self.secret_id,
            "RETRY_QUEUE_URL": self.retry_queue_url,
            "DLQ_URL": self.dlq_url,
            # Matches the redrive policy, as the architecture requires.
            "RETRY_MAX_ATTEMPTS": str(self.retry_max_receives),
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        if self.endpoint_url is not None:
            env |= {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
            }
        return env

    def sqs_client(self) -> SQSClient:
        return sqs_client(self.endpoint_url, self.region)

    def secretsmanager_client(self) -> SecretsManagerClient:
        return secretsmanager_client(self.endpoint_url, self.region)


def provision(
    *,
    endpoint_url: str | None,
    region: str = "us-east-1",
    secret: dict[str, str],
    secret_name: str = "segment-raindrop/forwarder",  # noqa: S107 - a name, not a secret
    retry_max_receives: int = 8,
    prefix: str = "segment-raindrop",
) -> LocalResources:
    """Create (or update, when they exist) the secret, the dead-letter and the retry queue."""
    unknown = set(secret) - _SECRET_KEYS
    if unknown:
        raise ValueError(f"unknown secret keys {sorted(unknown)}; expected {sorted(_SECRET_KEYS)}")
    if "raindrop_api_key" not in secret:
        raise ValueError("the secret needs a raindrop_api_key")
    if not 1 <= retry_max_receives <= 1000:
        raise ValueError("retry_max_receives must be between 1 and 1000 (the SQS limit)")

    secrets = secretsmanager_client(endpoint_url, region)
    secret_id = _put_secret(secrets, secret_name, json.dumps(secret))

    sqs = sqs_client(endpoint_url, region)
    dlq_url = _ensure_queue(
        sqs,
        f"{prefix}-dlq",
        {
            "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
        },
    )
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    retry_queue_url = _ensure_queue(
        sqs,
        f"{prefix}-retry",
        {
            "VisibilityTimeout": str(RETRY_QUEUE_VISIBILITY_SECONDS),
            "MessageRetentionPeriod": str(RETRY_QUEUE_RETENTION_SECONDS),
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": retry_max_receives}
            ),
        },
    )
    return LocalResources(
        secret_id=secret_id,
        retry_queue_url=retry_queue_url,
        dlq_url=dlq_url,
        region=region,
        endpoint_url=endpoint_url,
        retry_max_receives=retry_max_receives,
    )


def _put_secret(client: SecretsManagerClient, name: str, value: str) -> str:
    try:
        return client.create_secret(Name=name, SecretString=value)["ARN"]
    except client.exceptions.ResourceExistsException:
        # Local mode may run again against a moto server that still holds the secret.
        return client.put_secret_value(SecretId=name, SecretString=value)["ARN"]


def _ensure_queue(
    client: SQSClient, name: str, attributes: Mapping[QueueAttributeNameType, str]
) -> str:
    try:
        return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except client.exceptions.QueueNameExists:
        # The queue exists with other attributes (an earlier run with other settings).
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
        client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return url


def _receive(client: SQSClient, queue_url: str, visibility_timeout: int) -> list[MessageTypeDef]:
    response = client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        VisibilityTimeout=visibility_timeout,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return response.get("Messages", [])


def drain_messages(client: SQSClient, queue_url: str) -> list[MessageTypeDef]:
    """Receive and delete every visible message; returns them with all their attributes.

    Each receive counts towards a redrive policy: draining a queue that has one (the retry
    queue) moves messages already at ``maxReceiveCount`` to the dead-letter queue instead.
    """
    drained: list[MessageTypeDef] = []
    while batch := _receive(client, queue_url, visibility_timeout=30):
        result = client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(batch)
            ],
        )
        if result.get("Failed"):
            raise RuntimeError(f"could not delete drained messages: {result['Failed']}")
        drained.extend(batch)
    return drained


def peek_messages(client: SQSClient, queue_url: str) -> list[MessageTypeDef]:
    """Every visible message, left on the queue and visible again afterwards.

    SQS has no read-only peek: this receives each message (hidden meanwhile, so every one is
    seen once; repeated receives with VisibilityTimeout=0 would return the same first ten in
    moto) and then makes them visible again. Each peek therefore adds one to every message's
    ApproximateReceiveCount and counts towards a redrive policy, exactly like a real receive.
    """
    seen: list[MessageTypeDef] = []
    try:
        while batch := _receive(client, queue_url, visibility_timeout=60):
            seen.extend(batch)
    finally:
        for start in range(0, len(seen), 10):
            with contextlib.suppress(ClientError):
                client.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {
                            "Id": str(index),
                            "ReceiptHandle": message["ReceiptHandle"],
                            "VisibilityTimeout": 0,
                        }
                        for index, message in enumerate(seen[start : start + 10])
                    ],
                )
    return seen


def _body(message: MessageTypeDef) -> dict[str, Any]:
    parsed = json.loads(message["Body"])
    if not isinstance(parsed, dict):
        raise TypeError(f"message {message.get('MessageId')} is not a JSON object")
    return parsed


def drain_queue(client: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Like :func:`drain_messages`, returning the parsed JSON bodies."""
    return [_body(message) for message in drain_messages(client, queue_url)]


def peek_queue(client: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Like :func:`peek_messages`, returning the parsed JSON bodies."""
    return [_body(message) for message in peek_messages(client, queue_url)]


def queue_depth(client: SQSClient, queue_url: str) -> int:
    """Messages visible, in flight or delayed: everything still on the queue."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())
