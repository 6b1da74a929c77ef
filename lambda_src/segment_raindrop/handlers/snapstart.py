"""What a function restored from a SnapStart snapshot must not share with its siblings.

With `-c snapStart=true` (docs/deploy.md) Lambda runs a version's initialisation once, snapshots
the memory, and resumes every new execution environment of that version from the snapshot. What
the import created is then the same in all of them. The handlers keep that small on purpose:
the runtime (AWS and HTTP clients, their connections and credentials, the secret's cache) is
built on the first invocation (`LazyRuntime`), which happens after the restore, so no secret,
token or connection is ever in a snapshot. What remains is state seeded at import:

- the `random` module's generator, seeded once per process: botocore's retry back-off and
  Powertools' log sampling draw from it, and identical draws in every restored environment
  would retry in lock step. It is reseeded from the operating system. (The forwarder's own
  jitter, `core/timing.py`, and every id and key it generates come from `os.urandom`, which
  Lambda keeps unique per environment.)
- the handler's runtime, dropped in case one was built before the snapshot, so it is rebuilt.

The hooks go through `snapshot_restore_py`, which Lambda's Python runtimes carry; where it is
missing (tests, local mode, a bundle run outside Lambda) nothing is registered. A function
without SnapStart never calls them.
"""

from __future__ import annotations

import random

from segment_raindrop.adapters.observability import logger
from segment_raindrop.service.runtime import LazyRuntime


def refresh_after_restore(*runtimes: LazyRuntime) -> None:
    """Lambda's after-restore hook: fresh randomness, no runtime built before the snapshot."""
    random.seed()
    for runtime in runtimes:
        runtime.reset()
    logger.info("restored from a snapshot", extra={"runtimes_reset": len(runtimes)})


def register_restore_hooks(*runtimes: LazyRuntime) -> bool:
    """Have Lambda call :func:`refresh_after_restore` after each restore; False where the
    runtime hooks library is missing (outside Lambda)."""
    try:
        # Untyped (no py.typed), and imported only here: Lambda provides it, the bundle does not.
        from snapshot_restore_py import (  # type: ignore[import-untyped]  # noqa: PLC0415
            register_after_restore,
        )
    except ImportError:
        return False
    register_after_restore(refresh_after_restore, *runtimes)
    return True
