"""The supervisor as a daemon, seen from the commands: find it, start it, stop it, and stop
the pods it left running when it died."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time

from mysqlsts.adapters.process import ProcessGroup, stop_all
from mysqlsts.errors import MysqlstsError
from mysqlsts.local.procs import last_line, running_pods
from mysqlsts.local.spec import SetLayout
from mysqlsts.local.store import read_supervisor_pid

# Pods no supervisor watches get this long to stop gracefully before their groups are killed.
ORPHAN_GRACE_SECONDS = 90.0


def supervisor_pid(layout: SetLayout) -> int | None:
    """The running supervisor's pid: it holds the lock for as long as it lives."""
    if not layout.supervisor_lock.exists():
        return None
    with layout.supervisor_lock.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(lock, fcntl.LOCK_UN)
            return None
    for _ in range(50):  # the lock is taken just before the pid file is written
        pid = read_supervisor_pid(layout)
        if pid is not None:
            return pid
        time.sleep(0.1)
    return None


def supervisor_gone(layout: SetLayout) -> MysqlstsError | None:
    """Why waiting for the supervisor is pointless, when it no longer runs: its last words."""
    if supervisor_pid(layout) is not None:
        return None
    tail = last_line(layout.supervisor_log) or "no output"
    return MysqlstsError(f"the supervisor is not running: {tail}")


def start_supervisor(layout: SetLayout, tool: tuple[str, ...]) -> int:
    running = supervisor_pid(layout)
    if running is not None:
        return running
    with layout.supervisor_log.open("ab") as handle:
        # A daemon: its own session outlives `up` and is immune to the terminal's signals.
        ProcessGroup.start(
            [*tool, "local", "_supervise", "--dir", str(layout.root)], new_session=True,
            stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid = supervisor_pid(layout)
        if pid is not None:
            return pid
        time.sleep(0.1)
    tail = last_line(layout.supervisor_log) or "no output"
    raise MysqlstsError(f"the supervisor did not start: {tail}")


def stop_supervisor(layout: SetLayout, timeout: float) -> None:
    """SIGTERM: it stops its pods in order, highest ordinal first, then itself."""
    pid = supervisor_pid(layout)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while supervisor_pid(layout) is not None:
        if time.monotonic() > deadline:
            raise MysqlstsError(f"the supervisor (pid {pid}) did not stop within {timeout:.0f}s")
        time.sleep(0.2)


def stop_orphans(layout: SetLayout, grace: float = ORPHAN_GRACE_SECONDS) -> list[int]:
    """Stop pods no supervisor watches (it crashed): SIGTERM to each pod's leader, which stops
    its server and sidecar in order, then SIGKILL their groups. Returns their ordinals."""
    orphans = running_pods(layout)
    stop_all(orphans.values(), grace, leader_only=True)
    return sorted(orphans)
