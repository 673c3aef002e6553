"""The StatefulSet controller's decision, OrderedReady: observed pods and desired replicas in,
at most one action out. Pure: `now` and every observation are arguments.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from mysqlsts.core.backoff import backoff

# CrashLoopBackOff: a pod that ended is re-created after 0, 1, 2, 4 … at most 30 s; once it has
# been ready this long, the count starts over (a kubelet waits 10 minutes; a local set is small).
BACKOFF_MAX_SECONDS = 30.0
BACKOFF_RESET_SECONDS = 60.0


class Act(enum.StrEnum):
    CREATE = "create"
    TERMINATE = "terminate"
    WAIT = "wait"
    STEADY = "steady"
    DONE = "done"  # stopping and nothing is left


@dataclass(frozen=True)
class Observed:
    """One ordinal as seen in one cycle."""

    ordinal: int
    alive: bool
    ready: bool = False
    terminating: bool = False
    not_before: float = 0.0  # earliest re-creation time after a failure
    kept_down: bool = False  # by `local stop`: its node is gone until `local start`


@dataclass(frozen=True)
class Decision:
    act: Act
    ordinal: int | None
    reason: str

    def sentence(self) -> str:
        target = "" if self.ordinal is None else f" ordinal={self.ordinal}"
        return f"{self.act}{target}: {self.reason}"


def backoff_seconds(consecutive_failures: int) -> float:
    # The first failure is retried at once, as a kubelet does.
    return backoff(consecutive_failures - 1, 1.0, BACKOFF_MAX_SECONDS)


@dataclass(frozen=True)
class CrashLoop:
    """One ordinal's CrashLoopBackOff: every end nobody asked for (a failure the pod recorded,
    a crash, a kill) delays the next pod by `backoff_seconds` of the ends so far."""

    ends: int = 0
    ready_since: float | None = None
    not_before: float = 0.0

    def ended(self, now: float) -> CrashLoop:
        ends = self.ends + 1
        return CrashLoop(ends, None, now + backoff_seconds(ends))

    def seen(self, ready: bool, now: float) -> CrashLoop:
        """A cycle's look at the pod: ready long enough, it is out of the loop."""
        if not ready:
            return replace(self, ready_since=None)
        since = now if self.ready_since is None else self.ready_since
        if now - since >= BACKOFF_RESET_SECONDS:
            return CrashLoop(0, since, 0.0)
        return replace(self, ready_since=since)


def decide(
    desired: int, stopping: bool, pods: Mapping[int, Observed], now: float
) -> Decision:
    alive = sorted(o for o, pod in pods.items() if pod.alive)
    terminating = [o for o in alive if pods[o].terminating]
    if terminating:
        return Decision(Act.WAIT, terminating[-1], "waiting for the pod to terminate")
    if stopping:
        if not alive:
            return Decision(Act.DONE, None, "every pod has stopped")
        return Decision(Act.TERMINATE, alive[-1], "stopping the set, highest ordinal first")
    surplus = [o for o in alive if o >= desired]
    if surplus:
        return Decision(
            Act.TERMINATE, surplus[-1], f"scaling down to {desired}, highest ordinal first"
        )
    kept_down = [o for o in alive if pods[o].kept_down]
    if kept_down:
        return Decision(Act.TERMINATE, kept_down[-1], "`local stop` keeps the pod down")
    down = 0
    for ordinal in range(desired):
        pod = pods.get(ordinal, Observed(ordinal, alive=False))
        if pod.kept_down:
            down += 1  # not created, and not waited for: the pods after it go on
            continue
        if pod.alive:
            if not pod.ready:
                return Decision(Act.WAIT, ordinal, "waiting for the pod to be ready")
            continue
        if now < pod.not_before:
            return Decision(
                Act.WAIT, ordinal, f"backing off for {pod.not_before - now:.0f}s after a failure"
            )
        return Decision(Act.CREATE, ordinal, "every lower ordinal is ready")
    return Decision(Act.STEADY, None, f"{desired - down} pods ready" + (
        f", {down} kept down by `local stop`" if down else ""
    ))
