"""docs/deploy.md's batch-size figures are what ``python -m bench.capacity`` computes today."""

from __future__ import annotations

from bench import capacity


def test_deploy_md_holds_the_capacity_figures_as_computed() -> None:
    doc = capacity.DOC.read_text()
    block = doc.partition(capacity.BEGIN + "\n")[2].partition(capacity.END)[0]
    assert block == capacity.render(), "run: python -m bench.capacity --write"
