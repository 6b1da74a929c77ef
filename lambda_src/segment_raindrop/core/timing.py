"""Time budgets and back-off: the arithmetic every entry point shares.

All instants are ``time.monotonic()`` values; durations are seconds.
"""

from __future__ import annotations

import random

_random = random.SystemRandom()
# 2**40 seconds is far past any cap; larger exponents would only overflow.
_MAX_EXPONENT = 40


def deadline_within(start: float, *, budget: float, remaining: float, reserve: float) -> float:
    """The instant delivery must stop: ``budget`` after ``start``, but never later than the
    invocation's ``remaining`` time less the ``reserve`` kept for queueing and answering, and
    never before ``start``."""
    return start + max(min(budget, remaining - reserve), 0.0)


def backoff_seconds(base: float, attempt: int, cap: float, *, jitter: str = "full") -> float:
    """Exponential back-off ``base * 2**(attempt - 1)``, capped at ``cap``, with jitter.

    ``full`` jitter (anywhere from 0 to the ceiling) spreads retries inside one delivery;
    ``equal`` jitter (half to all of it) keeps a queued message's delay growing with its
    receives while still spreading a backlog out.
    """
    ceiling = min(float(cap), base * 2 ** min(max(attempt - 1, 0), _MAX_EXPONENT))
    low = ceiling / 2 if jitter == "equal" else 0.0
    return _random.uniform(low, ceiling)
