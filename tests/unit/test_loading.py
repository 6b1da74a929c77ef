"""handler_loading: in Lambda the collector pauses for a handler's import, then what was loaded
is frozen and the collector resumes; anywhere else nothing changes.

The import itself, from the real bundle in a fresh interpreter, is tested in
tests/infra/test_infra_bundling.py.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from segment_raindrop.handlers.loading import handler_loading, in_lambda

LAMBDA = {"LAMBDA_TASK_ROOT": "/var/task"}


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    gc.unfreeze()
    gc.enable()
    try:
        yield
    finally:
        # Whatever a test froze or switched off must not stay so for the rest of the run.
        gc.unfreeze()
        gc.enable()


def test_in_lambda_the_collector_pauses_then_resumes_with_what_loaded_frozen(
    freezes: list[int],
) -> None:
    with handler_loading(LAMBDA):
        assert not gc.isenabled()
        assert freezes == []
    assert gc.isenabled()
    assert len(freezes) == 1


def test_outside_lambda_nothing_changes(freezes: list[int]) -> None:
    with handler_loading({"LAMBDA_TASK_ROOT": ""}):
        assert gc.isenabled()
    assert gc.isenabled()
    assert freezes == []


def test_a_collector_already_off_is_left_off_and_nothing_is_frozen(freezes: list[int]) -> None:
    gc.disable()
    with handler_loading(LAMBDA):
        assert not gc.isenabled()
    assert not gc.isenabled()
    assert freezes == []


def test_a_failed_import_still_resumes_the_collector() -> None:
    with pytest.raises(ImportError), handler_loading(LAMBDA):
        raise ImportError("a module that cannot load")
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [(LAMBDA, True), ({"LAMBDA_TASK_ROOT": ""}, False), ({}, False)],
)
def test_lambda_is_recognised_by_its_task_root(environ: dict[str, str], expected: bool) -> None:
    assert in_lambda(environ) is expected
