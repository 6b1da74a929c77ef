"""Handlers' runtimes built with clients a test chooses."""

from __future__ import annotations

from typing import Any

from segment_raindrop.adapters.aws import AwsClients
from segment_raindrop.handlers import webhook
from segment_raindrop.service.runtime import build_runtime
from tests.conftest import AwsEnv


def use_webhook_clients(aws: AwsEnv, *, sqs: Any = None, secretsmanager: Any = None) -> None:
    """The webhook's runtime, built as usual from ``aws.config`` but with these clients."""
    default = aws.clients()
    clients = AwsClients(
        sqs=sqs if sqs is not None else default.sqs,
        secretsmanager=secretsmanager if secretsmanager is not None else default.secretsmanager,
    )
    webhook.runtime.use(lambda: build_runtime(aws.config, source="webhook", aws=clients))
