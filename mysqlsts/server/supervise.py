"""The mysql container's main process: mariadbd as its child, signals passed on, and the
watchdog that stops the server when the sidecar's heartbeat goes stale (core/watchdog.py).

Signals are blocked and taken with sigtimedwait(2) in one loop (no handler runs anywhere):
SIGTERM, SIGINT, SIGQUIT and SIGHUP go to mariadbd as they came, SIGCHLD wakes the loop when a
child ends. As PID 1 of its container it reaps every child; when mariadbd ends it exits with
mariadbd's status (128 + N for a signal, as a shell reports it). When the watchdog says STOP:
one line, SIGTERM, SIGKILL after the grace, exit 3 (WATCHDOG_EXIT), and the kubelet, if it
lives, restarts the container. After a stop signal was passed on the watchdog no longer
judges: the server is already going, within the kubelet's grace period, and the sidecar's own
stop must not turn a clean shutdown into a SIGKILL.

Before mariadbd starts, `core.watchdog.may_start` may say WAIT (the lease fence's marker in the
data dir; a heartbeat file left from before a container restart that has not changed yet): one
line, a read every poll, and a stop signal then ends it with 0, having started nothing.

With a watchdog, before all that, it writes the stop bound it enforces (poll + timeout + grace,
core.watchdog.stop_bound) atomically to `bound_file`, beside the heartbeat: the primary's
sidecar claims its self-fence time from that file, not from its own settings. A write that fails
is one line and nothing more: the sidecar then claims no self-fence, which is safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mysqlsts.adapters.fs import atomic_write
from mysqlsts.adapters.tools import die_with_this_process
from mysqlsts.core.watchdog import (
    WATCHDOG_EXIT,
    Beats,
    Verdict,
    WatchdogTimings,
    begin,
    decide,
    format_bound,
    launched,
    may_start,
    next_check,
    seen,
    stop_bound,
)
from mysqlsts.errors import MysqlstsError

log = logging.getLogger(__name__)

PASSED_ON = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP})
STOPPING = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})  # not SIGHUP: a reload
_TAKEN = (*PASSED_ON, signal.SIGCHLD)
_IDLE = 1.0  # seconds between reaps with no watchdog (SIGCHLD wakes the loop anyway)


def read_heartbeat(path: Path) -> bytes | None:
    """The file's content; None when it is missing or cannot be read."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def exit_code(status: int) -> int:
    """A wait status as the shell reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _child_setup(dies_with_us: Callable[[], None]) -> Callable[[], None]:
    def in_child() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TAKEN)  # the mask survives exec
        dies_with_us()

    return in_child


class ServerSupervisor:
    """Runs `argv` (mariadbd and its arguments) to its end; `heartbeat` None: no watchdog;
    `bound_file`: where it states its stop bound (with a watchdog); `fence`: the primary lease
    fence's marker (in the data dir), None: none to obey."""

    def __init__(self, argv: Sequence[str], heartbeat: Path | None, timings: WatchdogTimings,
                 *, grace: float, poll: float, bound_file: Path | None = None,
                 fence: Path | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.argv = list(argv)
        self.heartbeat = heartbeat
        self.bound_file = bound_file
        self.fence = fence
        self.timings = timings
        self.grace = grace
        self.poll = poll
        self._monotonic = monotonic
        self._process: subprocess.Popen[bytes] | None = None
        self._bound_stated = ""  # for the start's log line

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _TAKEN)
        pending = signal.sigpending() & STOPPING
        if pending:  # stopped before the server started (e.g. during the bootstrap)
            log.info("server: %s before mariadbd started; not starting it",
                     signal.Signals(min(pending)).name)
            return 0
        self._state_bound()
        beats = self._wait_to_start()
        if beats is None:
            return 0
        try:
            self._process = process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup(die_with_this_process()),  # noqa: PLW1509 (no threads)
            )
        except OSError as exc:
            raise MysqlstsError(f"cannot start {self.argv[0]}: {exc.strerror or exc}") from exc
        log.info("server: started %s pid=%d watchdog=%s", self.argv[0], process.pid,
                 f"{self.heartbeat} timeout={self.timings.timeout:g}s grace={self.grace:g}s "
                 f"startup={self.timings.startup:g}s{self._bound_stated}" if self.heartbeat
                 else "off")
        beats = launched(beats, self._monotonic())
        stopping = False
        while True:
            code = self._reap()
            if code is not None:
                return code
            wait = _IDLE
            if self.heartbeat is not None and not stopping:
                now = self._monotonic()
                beats = seen(beats, self._read(), now)
                verdict, why = decide(beats, now, self.timings)
                if verdict is Verdict.STOP:
                    return self._stop(why)
                wait = next_check(beats, now, self.timings, self.poll)
            taken = signal.sigtimedwait(_TAKEN, wait)
            if taken is not None and taken.si_signo in PASSED_ON:
                sig = signal.Signals(taken.si_signo)
                log.info("server: passing %s to %s", sig.name, self.argv[0])
                self._signal(sig)
                stopping = stopping or sig in STOPPING

    def _state_bound(self) -> None:
        if self.heartbeat is None or self.bound_file is None:
            return
        bound = stop_bound(self.timings.timeout, poll=self.poll, grace=self.grace)
        try:
            atomic_write(self.bound_file, format_bound(bound))
        except OSError as exc:
            log.warning("server: cannot write the watchdog bound %s: %s (the sidecar then "
                        "claims no self-fence)", self.bound_file, exc.strerror or exc)
            return
        self._bound_stated = f" bound={bound:g}s in {self.bound_file}"

    def _wait_to_start(self) -> Beats | None:
        """Wait while `may_start` says so; what the watchdog saw meanwhile, or None when a stop
        signal came first (nothing started)."""
        beats = begin(self._monotonic(), self._read())
        said = ""
        while True:
            fence = self.fence if self.fence is not None and self.fence.exists() else None
            ok, why = may_start(beats, fence=None if fence is None else str(fence))
            if ok:
                if said:
                    log.info("server: starting %s: %s", self.argv[0], why)
                return beats
            if why != said:
                log.warning("server: not starting: %s", why)
                said = why
            taken = signal.sigtimedwait(_TAKEN, self.poll)
            if taken is not None and taken.si_signo in STOPPING:
                log.info("server: %s while waiting to start; not starting %s",
                         signal.Signals(taken.si_signo).name, self.argv[0])
                return None
            beats = seen(beats, self._read(), self._monotonic())

    def _signal(self, sig: signal.Signals) -> None:
        """By pid, not Popen.send_signal, whose poll() would reap the server behind `_reap`'s
        back; unreaped, its pid cannot name another process."""
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._process.pid, sig)

    def _read(self) -> bytes | None:
        return None if self.heartbeat is None else read_heartbeat(self.heartbeat)

    def _reap(self, block: bool = False) -> int | None:
        """Reap every ended child (PID 1 adopts orphans); mariadbd's exit code once it ended."""
        process = self._process
        assert process is not None
        while True:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return process.returncode
            if pid == 0:
                return None
            if pid == process.pid:
                process.returncode = exit_code(status)
                return process.returncode

    def _stop(self, why: str) -> int:
        log.error("server: watchdog stopping %s (SIGTERM, SIGKILL after %gs): %s",
                  self.argv[0], self.grace, why)
        self._signal(signal.SIGTERM)
        deadline = self._monotonic() + self.grace
        while (left := deadline - self._monotonic()) > 0:
            if self._reap() is not None:
                return WATCHDOG_EXIT
            signal.sigtimedwait([signal.SIGCHLD], min(left, 0.1))
        if self._reap() is None:
            log.error("server: %s still runs %gs after SIGTERM; SIGKILL", self.argv[0],
                      self.grace)
            self._signal(signal.SIGKILL)
            self._reap(block=True)
        return WATCHDOG_EXIT
