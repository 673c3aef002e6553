"""The records a local set keeps on disk, typed: each pod's own record (`pods/NAME/pod.json`,
written by the pod process) and the supervisor's state (`state.json`, written every cycle).

Pure: text in, records out (`mysqlsts.core.records` checks every field); `store` reads and
writes the files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mysqlsts.core.records import decode, encode
from mysqlsts.local.reconcile import Act


class Phase(enum.StrEnum):
    """Where a pod is in its life, as `local status` shows it."""

    # Written by the pod process: its init containers by name, then the server and sidecar.
    INIT = "init"
    CLONE = "clone"
    BOOTSTRAP = "bootstrap"
    STARTING = "starting"
    RUNNING = "running"
    TERMINATING = "terminating"
    STOPPED = "stopped"
    FAILED = "failed"
    # Seen from outside only: a pod process without a record yet, no pod process at all, and a
    # pod the supervisor holds back after it ended (kubelet's CrashLoopBackOff).
    CREATING = "creating"
    ABSENT = "absent"
    BACK_OFF = "back-off"


@dataclass(frozen=True)
class PodRecord:
    """What the pod process says of itself; its pid leads the pod's process group."""

    pid: int
    ordinal: int
    phase: Phase
    reason: str | None = None
    started_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self) -> str:
        return encode(self)

    @classmethod
    def from_json(cls, data: bytes | str, what: str = "pod record") -> PodRecord:
        return decode(cls, data, what)


@dataclass(frozen=True)
class SupervisorPodState:
    """One ordinal as the supervisor last published it in state.json: a snapshot of its memory
    of that ordinal across the pod processes it created."""

    alive: bool
    pid: int | None
    ready: bool
    restarts: int = 0
    failures: int = 0  # ends in a row without becoming ready
    last_end: str | None = None  # why the last pod process ended
    not_ready: str | None = None  # why the live pod is not ready: its readiness answer
    failed_at: float | None = None
    terminating: bool = False
    back_off_until: float | None = None  # not re-created before then
    kept_down: bool = False  # by `local stop`, until `local start`


@dataclass(frozen=True)
class SupervisorState:
    """One supervisor cycle: what it wanted, saw and decided."""

    supervisor_pid: int
    desired: int
    stopping: bool
    decision: str
    act: Act
    updated_at: float
    pods: dict[int, SupervisorPodState] = field(default_factory=dict)

    def to_json(self) -> str:
        return encode(self)

    @classmethod
    def from_json(cls, data: bytes | str, what: str = "supervisor state") -> SupervisorState:
        return decode(cls, data, what)
