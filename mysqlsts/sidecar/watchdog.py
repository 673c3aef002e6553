"""The sidecar's side of the watchdog: rewrite the heartbeat file while the server may run.

`beat()` is called by the round that vouches for the server: on a replica (and on a primary
without a lease worker) the control loop's, on a primary with a lease worker that worker's,
only while its guard does not say FENCE (sidecar/app.py wires which). The content changes every
call (a counter and this process's monotonic stamp) and is written atomically, so `mysqlsts
server` sees a change, never a torn file. A write that fails is logged once, never raised: the
watchdog then stops the server, which is right when the sidecar cannot vouch for it.

`WatchdogBound` reads the stop bound `mysqlsts server` states beside the heartbeat (the
primary's lease worker calls it every renew, for the self-fence time it claims): absent or
unreadable, there is no bound to claim, said once in the log until it changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mysqlsts.adapters.fs import atomic_write
from mysqlsts.core.watchdog import parse_bound

log = logging.getLogger(__name__)


class WatchdogHeartbeat:
    def __init__(self, path: Path | None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._monotonic = monotonic
        self._count = 0
        self._failing = ""
        self._lock = threading.Lock()  # one writer at a time (its temp file is shared)

    def beat(self) -> None:
        if self.path is None:
            return
        with self._lock:
            self._count += 1
            content = f"{os.getpid()} {self._count} {self._monotonic():.3f}\n"
            try:
                atomic_write(self.path, content)
            except OSError as exc:
                problem = exc.strerror or str(exc)
                if problem != self._failing:
                    log.warning("cannot write the watchdog heartbeat %s: %s", self.path,
                                problem)
                    self._failing = problem
                return
            if self._failing:
                log.info("watchdog heartbeat %s written again", self.path)
                self._failing = ""


class WatchdogBound:
    """The server's watchdog's stop bound in seconds, read from `path` at every call; None when
    there is none (no watchdog file configured, the file absent or unreadable)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._said: str | None = None  # what the log said last (no warning repeated each round)

    def __call__(self) -> float | None:
        if self.path is None:
            self._say("no watchdog (--watchdog-file is empty): claiming no self-fence")
            return None
        try:
            bound = parse_bound(self.path.read_bytes())
        except OSError as exc:
            self._say(f"no watchdog bound at {self.path}: claiming no self-fence "
                      f"({exc.strerror or exc})")
            return None
        except ValueError as exc:
            self._say(f"no watchdog bound at {self.path}: claiming no self-fence ({exc})")
            return None
        self._say(f"watchdog bound at {self.path}: {bound:g}s", warning=False)
        return bound

    def _say(self, line: str, *, warning: bool = True) -> None:
        if line != self._said:
            log.log(logging.WARNING if warning else logging.INFO, "%s", line)
            self._said = line
