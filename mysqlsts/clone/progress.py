"""What the clone step is doing, for its /metrics and /readyz while the sidecar does not exist,
and how long each of its steps took, for its log.

The clone thread writes, the HTTP thread reads: plain attribute writes of immutable values
(atomic under the GIL), read as one `snapshot()`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mysqlsts.core.replay_rate import ReplayRate

log = logging.getLogger(__name__)


class ClonePhase(enum.StrEnum):
    WAITING_FOR_DONOR = "waiting_for_donor"
    STREAMING = "streaming"
    PREPARING = "preparing"
    MOVING = "moving"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ProgressSnapshot:
    phase: ClonePhase
    bytes: int
    donor_attempts: int
    failures: int  # the volume's count, including this run's if it failed
    donor: str
    # A point-in-time recovery's apply (a restore step): transactions applied of the total,
    # and their rate since the apply began (0 until one runs).
    replay_applied: int = 0
    replay_total: int = 0
    replay_rate: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "phase": str(self.phase)}


class CloneProgress:
    def __init__(self, failures: int) -> None:
        self.phase = ClonePhase.WAITING_FOR_DONOR
        self.bytes = 0
        self.donor_attempts = 0
        self.failures = failures
        self.donor = ""
        self.replay: tuple[int, int, float] = (0, 0, 0.0)

    def replayed(self, replay: ReplayRate) -> None:
        """A recovery's apply moved on (point_in_time's `on_replay`)."""
        self.replay = (replay.applied, replay.total, replay.rate())

    def snapshot(self) -> ProgressSnapshot:
        return ProgressSnapshot(self.phase, self.bytes, self.donor_attempts, self.failures,
                                self.donor, *self.replay)


class ProgressCollector(Collector):
    """The clone step's metrics (docs/metrics.md); `mysqlsts_clone_bytes_total` and
    `mysqlsts_clone_failures_total` carry on in the sidecar, from the clone record."""

    def __init__(self, progress: CloneProgress) -> None:
        self._progress = progress

    def collect(self) -> Iterator[Metric]:
        now = self._progress.snapshot()
        yield CounterMetricFamily("mysqlsts_clone_bytes",
                                  "Bytes this pod received by its clone so far.", value=now.bytes)
        phase = GaugeMetricFamily("mysqlsts_clone_phase",
                                  "1 for the clone step's current phase, 0 for the others.",
                                  labels=["phase"])
        for each in ClonePhase:
            phase.add_metric([str(each)], 1 if each is now.phase else 0)
        yield phase
        yield CounterMetricFamily("mysqlsts_clone_donor_attempts",
                                  "Connection attempts to clone donors by this clone step.",
                                  value=now.donor_attempts)
        yield CounterMetricFamily("mysqlsts_clone_failures",
                                  "Clones into this pod that failed and were rolled back.",
                                  value=now.failures)
        yield GaugeMetricFamily("mysqlsts_recovery_transactions_applied",
                                "Archived transactions a point-in-time recovery in this "
                                "restore step has applied so far.", value=now.replay_applied)
        yield GaugeMetricFamily("mysqlsts_recovery_transactions",
                                "Archived transactions the point-in-time recovery in this "
                                "restore step applies in all (0: none runs).",
                                value=now.replay_total)
        yield GaugeMetricFamily("mysqlsts_recovery_replay_rate",
                                "Transactions per second the recovery's apply has averaged "
                                "since it began.", value=now.replay_rate)


class StepTimes:
    """Seconds each step of one clone took (donor, stream, prepare, record, sync, move, marker), in
    the order they ran. Each step that completes is one log line, `clone step done step=prepare
    seconds=3.210`, so that how a step grows with the data (bytes, files) can be read from any
    clone's log (bench/scale_bench.py does)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = self._clock()
        yield  # a step that raises is not timed: the clone failed, and its log says why
        seconds = self._clock() - started
        self.seconds[name] = seconds
        log.info("clone step done step=%s seconds=%.3f", name, seconds)

    def summary(self) -> str:
        return " ".join(f"{name}={seconds:.1f}s" for name, seconds in self.seconds.items())
