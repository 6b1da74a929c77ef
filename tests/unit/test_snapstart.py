"""SnapStart's after-restore hook: registered with Lambda's own hooks library (the one its
Python runtimes carry), it reseeds `random` and drops a runtime built before the snapshot.

Building a runtime creates botocore and httpx clients but sends nothing, so no server is needed.
"""

from __future__ import annotations

import random

import snapshot_restore_py

from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.handlers import raindrop_sdk, webhook
from segment_raindrop.handlers.snapstart import refresh_after_restore, register_restore_hooks
from segment_raindrop.service.runtime import LazyRuntime, build_runtime

CONFIG = ForwarderConfig.model_validate(
    {
        "RAINDROP_SECRET_ID": "segment-raindrop",
        "RETRY_QUEUE_URL": "http://127.0.0.1:9/queue/retry",
        "DLQ_URL": "http://127.0.0.1:9/queue/dlq",
    }
)


def _registered() -> list[tuple[object, tuple[object, ...], dict[str, object]]]:
    hooks: list[tuple[object, tuple[object, ...], dict[str, object]]] = list(
        snapshot_restore_py.get_after_restore()
    )
    return hooks


def test_the_api_handlers_register_the_hook_for_their_runtime() -> None:
    # Importing the handlers registered them (the functions SnapStart is offered for).
    hooks = _registered()
    assert (refresh_after_restore, (webhook.runtime,), {}) in hooks
    assert (refresh_after_restore, (raindrop_sdk.runtime,), {}) in hooks


def test_registering_hands_lambda_the_hook_and_its_runtimes() -> None:
    lazy = LazyRuntime(source="webhook")
    before = len(_registered())
    assert register_restore_hooks(lazy) is True
    assert _registered()[before:] == [(refresh_after_restore, (lazy,), {})]


def test_after_restore_the_random_generator_is_reseeded() -> None:
    # Every environment restored from one snapshot starts with the same generator state.
    random.seed(1234)
    snapshot_state = random.getstate()
    refresh_after_restore()
    first = random.random()
    random.setstate(snapshot_state)
    assert random.random() != first


def test_after_restore_a_runtime_built_before_the_snapshot_is_rebuilt() -> None:
    lazy = LazyRuntime(source="webhook")
    lazy.use(lambda: build_runtime(CONFIG, source="webhook"))
    try:
        before = lazy.get()
        refresh_after_restore(lazy)
        after = lazy.get()
        assert after is not before
        assert after.config == before.config
    finally:
        lazy.reset()
