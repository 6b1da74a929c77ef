"""The secret, read through SecretStore against moto's Secrets Manager."""

from __future__ import annotations

import json
from typing import Any, cast

import botocore.session
import pytest
from botocore.config import Config

from segment_raindrop.adapters.secrets import (
    RaindropKeyNotSet,
    SecretStore,
    SecretUnavailable,
    SecretValues,
)
from tests.conftest import AwsEnv


def _store(aws: AwsEnv, *, max_age: int = 300) -> SecretStore:
    return SecretStore(
        aws.resources.secret_id, max_age_seconds=max_age, client=aws.clients().secretsmanager
    )


def _put(aws: AwsEnv, **values: str) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id, SecretString=json.dumps(values)
    )


def test_the_key_is_read_and_cached(aws: AwsEnv) -> None:
    store = _store(aws)
    assert store.ready_key() == aws.raindrop_api_key
    _put(aws, raindrop_api_key="rk-new")
    assert store.ready_key() == aws.raindrop_api_key  # cached for max_age
    assert store.fresh_raindrop_key() == "rk-new"
    assert store.ready_key() == "rk-new"


@pytest.mark.parametrize("placeholder", ["", "  ", "REPLACE_ME", "changeme", "<your key>"])
def test_a_placeholder_key_is_not_ready(aws: AwsEnv, placeholder: str) -> None:
    _put(aws, raindrop_api_key=placeholder, webhook_token="wt")
    with pytest.raises(RaindropKeyNotSet):
        _store(aws).ready_key()


def test_an_unreadable_or_malformed_secret_is_unavailable(aws: AwsEnv) -> None:
    aws.secretsmanager.put_secret_value(SecretId=aws.resources.secret_id, SecretString="[1]")
    with pytest.raises(SecretUnavailable, match="not a JSON object"):
        _store(aws).get()
    missing = SecretStore("no-such-secret", client=aws.clients().secretsmanager)
    with pytest.raises(SecretUnavailable, match="ResourceNotFoundException"):
        missing.get()


def test_a_secret_that_is_not_json_is_unavailable(aws: AwsEnv) -> None:
    aws.secretsmanager.put_secret_value(SecretId=aws.resources.secret_id, SecretString="rk-1")
    with pytest.raises(SecretUnavailable, match="not a JSON object") as refused:
        _store(aws).get()
    assert "rk-1" not in str(refused.value)  # the message is logged: never the secret's text


def test_a_binary_secret_holding_json_is_read_like_a_string(aws: AwsEnv) -> None:
    aws.secretsmanager.put_secret_value(
        SecretId=aws.resources.secret_id,
        SecretBinary=json.dumps({"raindrop_api_key": "rk-binary"}).encode(),
    )
    assert _store(aws).ready_key() == "rk-binary"


def test_without_a_max_age_every_read_reaches_secrets_manager(aws: AwsEnv) -> None:
    store = _store(aws, max_age=0)
    assert store.ready_key() == aws.raindrop_api_key
    _put(aws, raindrop_api_key="rk-new")
    assert store.ready_key() == "rk-new"


def test_an_unreachable_secrets_manager_is_named_by_its_error_never_its_message() -> None:
    nobody_listens = botocore.session.get_session().create_client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # nothing listens: any stand-in will do
        config=Config(connect_timeout=1, retries={"total_max_attempts": 1}),
    )
    store = SecretStore("segment-raindrop", client=cast(Any, nobody_listens))
    with pytest.raises(SecretUnavailable) as refused:
        store.get()
    assert str(refused.value) == "the secret could not be read (EndpointConnectionError)"


def test_forced_re_reads_are_throttled(aws: AwsEnv) -> None:
    store = _store(aws)
    assert store.refresh_if_due(60) is not None
    _put(aws, raindrop_api_key="rk-new")
    assert store.refresh_if_due(60) is None  # too soon: the cached copy stands
    assert store.get().raindrop_api_key == aws.raindrop_api_key
    assert store.refresh_if_due(0) is not None


def test_the_deletion_hash_key_is_per_deployment_and_never_the_bare_token() -> None:
    with_key = SecretValues(user_hash_key="uk", webhook_token="wt")
    with_token = SecretValues(webhook_token="wt")
    other = SecretValues(webhook_token="wt-2")
    assert with_key.deletion_hash_key != with_token.deletion_hash_key
    assert with_token.deletion_hash_key != other.deletion_hash_key
    assert b"wt" not in with_token.deletion_hash_key
    assert SecretValues().deletion_hash_key == SecretValues().deletion_hash_key


def test_the_secret_never_prints_its_values() -> None:
    secret = SecretValues(raindrop_api_key="rk-123", webhook_token="wt-456")
    assert "rk-123" not in repr(secret)
    assert "wt-456" not in str(secret)


def test_the_previous_webhook_token_is_read_and_never_printed(aws: AwsEnv) -> None:
    _put(aws, raindrop_api_key="rk-1", webhook_token="wt-new", webhook_token_previous="wt-old")
    secret = _store(aws).get()
    assert (secret.webhook_token, secret.webhook_token_previous) == ("wt-new", "wt-old")
    assert "wt-old" not in repr(secret)
    assert "webhook_token_previous=set" in repr(secret)
    assert SecretValues().webhook_token_previous is None
