"""The Lambda path of LazyRuntime: built from the environment once, then frozen for the GC.

Building a runtime creates boto3 and httpx clients but sends nothing, so no server is needed.
"""

from __future__ import annotations

import pytest

from segment_raindrop.core.config import ForwarderConfig
from segment_raindrop.service.runtime import LazyRuntime, build_runtime

ENVIRONMENT = {
    "RAINDROP_SECRET_ID": "segment-raindrop",
    "RETRY_QUEUE_URL": "http://127.0.0.1:9/queue/retry",
    "DLQ_URL": "http://127.0.0.1:9/queue/dlq",
}


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("lambda_environment")
def test_the_runtime_built_from_the_environment_is_frozen_once(freezes: list[int]) -> None:
    lazy = LazyRuntime(source="webhook")
    try:
        built = lazy.get()
        assert len(freezes) == 1
        # The modules and the runtime, not just a handful of objects.
        assert freezes[0] > 10_000
        assert built.config.secret_id == "segment-raindrop"
        assert lazy.get() is built
        assert len(freezes) == 1
    finally:
        lazy.reset()


def test_an_installed_factory_leaves_the_collector_alone(freezes: list[int]) -> None:
    # Local mode, the tests and the benchmarks build many runtimes in one long process.
    config = ForwarderConfig.model_validate(ENVIRONMENT)
    lazy = LazyRuntime(source="webhook")
    lazy.use(lambda: build_runtime(config, source="webhook"))
    try:
        lazy.get()
        assert freezes == []
    finally:
        lazy.reset()
