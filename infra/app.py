"""CDK entry point (`cdk.json`: `python -m infra.app`).

`build_app` is also what the tests call, so they check exactly what `cdk synth` produces,
including the cdk-nag AwsSolutions checks, which make synthesis fail on any finding that is
not acknowledged at its resource.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError, config_from_context
from infra.stack import SegmentRaindropStack

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent


def stack_name(stage: str) -> str:
    return f"segment-raindrop-{stage}"


def build_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None
) -> tuple[cdk.App, SegmentRaindropStack]:
    """The app with its one stack; raises ConfigError for invalid context."""
    app = cdk.App(context=dict(context) if context is not None else None, outdir=outdir)
    config = config_from_context(app.node.get_all_context())
    stack = SegmentRaindropStack(
        app,
        stack_name(config.stage),
        config=config,
        project_root=PROJECT_ROOT,
        description="segment-raindrop: Segment webhook events forwarded to Raindrop",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    try:
        app, _ = build_app()
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
