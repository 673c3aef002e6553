"""A recovery's replay progress (pure): how many of its archived transactions are applied, at
what rate, and when a progress line is due (at most one every `interval` seconds, so a long
apply logs a steady trickle, a short one only its summary).

The clock is the caller's (monotonic seconds), passed in, so the rules are tested without
sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROGRESS_INTERVAL = 5.0  # seconds between two progress lines


@dataclass
class ReplayRate:
    total: int  # transactions to apply
    interval: float = PROGRESS_INTERVAL
    applied: int = 0
    started: float | None = None  # the clock when the apply began (None: not yet)
    now: float = 0.0
    _said: float = field(default=0.0, repr=False)

    def update(self, applied: int, now: float) -> str | None:
        """Record `applied` transactions at `now` (the first call starts the clock); the
        progress line when one is due."""
        if self.started is None:
            self.started = self._said = now
        self.applied, self.now = max(0, min(applied, self.total)), now
        if now - self._said < self.interval:
            return None
        self._said = now
        return (f"replay progress applied={self.applied} total={self.total} "
                f"percent={self.percent():.1f} rate={self.rate():.1f}/s")

    @property
    def seconds(self) -> float:
        return 0.0 if self.started is None else max(0.0, self.now - self.started)

    def rate(self) -> float:
        """Transactions per second since the apply began (0 before any time has passed)."""
        return self.applied / self.seconds if self.seconds > 0 else 0.0

    def percent(self) -> float:
        return 100.0 * self.applied / self.total if self.total else 100.0

    def summary(self) -> str:
        """The one line a finished apply ends with."""
        return (f"replay done transactions={self.applied} seconds={self.seconds:.1f} "
                f"rate={self.rate():.1f}/s")
