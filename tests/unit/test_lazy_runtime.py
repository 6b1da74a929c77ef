"""The Lambda path of LazyRuntime: built from the environment once, then frozen for the GC.

Building a runtime creates boto3 and httpx clients but sends nothing, so no server is needed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.service.runtime import LazyRuntime, build_runtime

ENVIRONMENT = {
    "RAINDROP_SECRET_ID": "segment-raindrop",
    "RETRY_QUEUE_URL": "http://127.0.0.1:9/queue/retry",
    "DLQ_URL": "http://127.0.0.1:9/queue/dlq",
}


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # what a test froze must not stay out of the collector's reach


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("unfrozen", "lambda_environment")
def test_the_runtime_built_from_the_environment_is_frozen_once() -> None:
    lazy = LazyRuntime(source="webhook")
    try:
        built = lazy.get()
        frozen = gc.get_freeze_count()
        # The modules and the runtime, not just a handful of objects.
        assert frozen > 10_000
        assert built.config.secret_id == "segment-raindrop"
        assert lazy.get() is built
        assert gc.get_freeze_count() == frozen
    finally:
        lazy.reset()


@pytest.mark.usefixtures("unfrozen")
def test_an_installed_factory_leaves_the_collector_alone() -> None:
    # Local mode, the tests and the benchmarks build many runtimes in one long process.
    config = ForwarderConfig.model_validate(ENVIRONMENT)
    lazy = LazyRuntime(source="webhook")
    lazy.use(lambda: build_runtime(config, source="webhook"))
    try:
        lazy.get()
        assert gc.get_freeze_count() == 0
    finally:
        lazy.reset()
