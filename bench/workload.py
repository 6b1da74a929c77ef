"""The request bodies every benchmark uses: realistic AI traffic from ``samples.batch``.

Prompts and answers of ~100 characters keep a 4,000-event batch (with Segment's full
``context`` on every event) at about 5.5 MiB, under Lambda's 6 MB request limit: a larger body
could never reach the function, so measuring it would flatter nothing real.
"""

from __future__ import annotations

from segment_raindrop_tools import samples

PROMPT_CHARS = 100


def body(events: int) -> bytes:
    return samples.body(samples.batch(events, seed=events, prompt_chars=PROMPT_CHARS))
