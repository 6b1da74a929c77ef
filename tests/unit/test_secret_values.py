"""Which Raindrop keys count as configured: placeholders and stand-ins do not."""

from __future__ import annotations

import pytest

from segment_raindrop.adapters.secrets import RaindropKeyNotSet, SecretValues


@pytest.mark.parametrize(
    "key",
    [
        "<your Raindrop write key>",
        "  <set me>",
        "<raindrop-write-key>",
        "replace_me",
        " REPLACE_ME ",
        "changeme",
        "",
        "   ",
    ],
)
def test_placeholder_raindrop_keys_do_not_count_as_configured(key: str) -> None:
    # Sending with a placeholder would dead-letter every event as "rejected" (a 401): the
    # webhook must answer 503 instead, so Segment keeps the events until the key is set.
    secret = SecretValues(raindrop_api_key=key)
    assert not secret.raindrop_key_configured
    with pytest.raises(RaindropKeyNotSet):
        secret.require_raindrop_key()


@pytest.mark.parametrize("key", ["rk-live-1234", "todo-list-key", "key<with>brackets"])
def test_real_looking_keys_count_as_configured(key: str) -> None:
    secret = SecretValues(raindrop_api_key=key)
    assert secret.raindrop_key_configured
    assert secret.require_raindrop_key() == key
