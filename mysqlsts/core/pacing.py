"""A token bucket that paces a byte stream to a rate: pure arithmetic on the `now` it is given.

The donor asks `delay(now, size)` before sending each frame and sleeps that long. Tokens (bytes)
accrue at `rate` per second up to `burst`; a frame larger than the bucket may drive it into
debt, which the next frames wait off, so any frame size works and the long-run rate is exact
(within one frame of the target over any window). `burst` bounds how far above the rate a
short window may go after an idle spell.
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def delay(self, now: float, size: int) -> float:
        """Seconds to wait before sending `size` bytes (0 when the bucket has them); the
        bytes count as sent."""
        # A clock that steps back earns nothing, now or later.
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = max(self._last, now)
        self._tokens -= size
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


def burst_for(rate: float) -> float:
    """A tenth of a second of traffic, and never less than 64 KiB: small enough that the cap
    holds over any second, large enough that slow rates are not a trickle of tiny waits."""
    return max(rate / 10, 64 * 1024)
