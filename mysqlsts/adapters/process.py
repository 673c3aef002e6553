"""Child processes that lead their own process group, and stopping them: SIGTERM, a grace,
SIGKILL to the whole group (Patroni's `CancellableSubprocess`).

A child started here gets a new process group, so a stop reaches everything it started (a
pod's server and sidecar, a backup tool's helpers). A group can also be adopted by pid (a pod
an earlier supervisor started): it is then not our child, and /proc tells whether it runs.
While an ended leader of ours is not reaped its pid keeps naming the group, so a SIGKILL sent
before `reap()` cannot reach a stranger that was given the pid again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_POLL_SECONDS = 0.05
# After SIGKILL a leader ends at once unless the kernel holds it (uninterruptible I/O).
_REAP_SECONDS = 10.0


def process_alive(pid: int, marker: str) -> bool:
    """True when `pid` runs (not a zombie) and its command line mentions `marker`, which guards
    against a pid given to another process since."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and marker in cmdline


class ProcessGroup:
    """One process group, by its leader's pid: a child started here, or one adopted by pid."""

    def __init__(self, pid: int, process: subprocess.Popen[bytes] | None = None,
                 marker: str = "") -> None:
        self.pid = pid
        self.process = process
        self._marker = marker

    @classmethod
    def start(cls, argv: Sequence[str], *, new_session: bool = False,
              **popen: Any) -> ProcessGroup:
        """Start `argv` leading a new process group; `new_session`: also a new session, for a
        daemon that outlives us and the terminal's signals. `popen`: Popen's other keywords."""
        if new_session:
            process = subprocess.Popen(argv, start_new_session=True, **popen)
        else:
            process = subprocess.Popen(argv, process_group=0, **popen)
        return cls(process.pid, process)

    @classmethod
    def adopt(cls, pid: int, marker: str) -> ProcessGroup:
        """A group some other process started; `marker` is in its leader's command line."""
        return cls(pid, marker=marker)

    @property
    def returncode(self) -> int | None:
        """The leader's exit status once reaped (ours only)."""
        return self.process.returncode if self.process is not None else None

    def running(self) -> bool:
        """Whether the leader runs; an ended leader of ours stays unreaped (see `reap`)."""
        if self.process is None:
            return process_alive(self.pid, self._marker)
        if self.process.returncode is not None:
            return False
        try:
            ended = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped by someone else's wait
            return self.process.poll() is None
        return ended is None

    def terminate(self, *, leader_only: bool = False) -> None:
        """Ask to stop: SIGTERM to the group, or to the leader alone when it stops its own
        children in order (a pod)."""
        with contextlib.suppress(ProcessLookupError):
            if leader_only:
                os.kill(self.pid, signal.SIGTERM)
            else:
                os.killpg(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole group, whatever is left of it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def reap(self, timeout: float | None = None) -> int | None:
        """Wait for our leader's exit status (None for an adopted group)."""
        if self.process is None:
            return None
        return self.process.wait(timeout)

    def stop(self, grace: float, *, leader_only: bool = False) -> None:
        """SIGTERM, up to `grace` seconds to end, then SIGKILL the group; reaped after."""
        stop_all([self], grace, leader_only=leader_only)


def wait_ended(groups: Iterable[ProcessGroup], timeout: float) -> bool:
    """Until every leader has ended or `timeout` passed; True when they all ended."""
    deadline = time.monotonic() + timeout
    pending = list(groups)
    while True:
        pending = [group for group in pending if group.running()]
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def stop_all(groups: Iterable[ProcessGroup], grace: float, *, leader_only: bool = False,
             ) -> list[ProcessGroup]:
    """Stop several groups at once, sharing one grace: SIGTERM each running one, wait, then
    SIGKILL each of those groups (the survivors, and what an ended leader left behind), and
    reap every leader of ours. Returns the groups that were running."""
    groups = list(groups)
    running = [group for group in groups if group.running()]
    for group in running:
        group.terminate(leader_only=leader_only)
    wait_ended(running, grace)
    for group in running:
        group.kill()
    for group in groups:
        with contextlib.suppress(subprocess.TimeoutExpired):
            group.reap(_REAP_SECONDS)
    return running
