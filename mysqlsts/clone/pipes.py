"""Small I/O helpers shared by donor and receiver: pipe sizing and progress lines."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time

from mysqlsts.core.clone_protocol import CHUNK

log = logging.getLogger(__name__)

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def widen_pipe(fd: int, size: int = CHUNK) -> None:
    """Bigger pipe buffers mean fewer, larger reads and frames (Linux; best effort)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, size)


class Progress:
    """Logs `<what> bytes=… mb_per_s=… elapsed=…` at most every `interval` seconds."""

    def __init__(self, what: str, peer: str, interval: float) -> None:
        self.what, self.peer, self.interval = what, peer, interval
        self.started = time.monotonic()
        self.next_at = self.started + interval

    def maybe_log(self, total: int) -> None:
        now = time.monotonic()
        if now >= self.next_at:
            self.next_at = now + self.interval
            elapsed = now - self.started
            log.info("%s bytes=%d mb_per_s=%.1f elapsed=%.0fs peer=%s", self.what, total,
                     total / 1e6 / max(elapsed, 1e-9), elapsed, self.peer)
