"""Raindrop projects: which slugs a request may route to (docs/wire.md §2.5).

Raindrop creates a project for any well-formed slug it has not seen (up to an org limit), so a
typo in a Segment destination's URL would quietly start a new project. The forwarder refuses a
malformed slug, and, when an allow-list is configured, any slug not on it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

# Raindrop's own rule for X-Raindrop-Project-Id; it answers 400 to anything else.
PROJECT_SLUG: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PROJECT_HEADER: Final = "X-Raindrop-Project-Id"
# Raindrop's Production project: what no header, an empty one or this slug all mean.
PRODUCTION_PROJECT: Final = "default"


def resolved(project: str | None, configured: str | None) -> str:
    """The project a request's events go to: its own, else the configured one, else
    Production. Written into every queue message, so a retry or a replay sends them there
    whatever the settings of whoever delivers them."""
    return project or configured or PRODUCTION_PROJECT


def is_project_slug(value: str) -> bool:
    return PROJECT_SLUG.fullmatch(value) is not None


def check_slugs(values: Collection[str]) -> None:
    """Raise ``ValueError`` naming the first value that is not a project slug."""
    for value in values:
        if not is_project_slug(value):
            raise ValueError(f"{value!r} is not a Raindrop project slug ({PROJECT_SLUG.pattern})")


def admits(project: str, allowed: Collection[str] | None) -> bool:
    """Whether a request may route to ``project``: a slug, and on the allow-list if one is set."""
    return is_project_slug(project) and (allowed is None or project in allowed)
