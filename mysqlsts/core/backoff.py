"""How long to wait after consecutive failures: the one backoff rule (pure)."""

from __future__ import annotations


def backoff(failures: int, first: float, cap: float) -> float:
    """Seconds to wait after the `failures`-th failure in a row: `first`, doubling with each
    further failure, at most `cap`; 0 before any failure."""
    if failures < 1:
        return 0.0
    # The exponent is bounded so that a long outage never overflows a float.
    return min(cap, first * 2.0 ** min(failures - 1, 64))
