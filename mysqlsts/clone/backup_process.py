"""The donor's backup tool as a child process, from start to stop (docs/clone.md, "The donor's
own processes and files").

It leads its own process group, so a stop reaches it whole; it dies with the donor, even a
SIGKILLed one, instead of streaming on as an orphan; it may open as many files as the hard
limit allows. Its stdout is the stream; its stderr is kept (the last lines) to say why it
failed in the trailer.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import subprocess
import threading
from collections.abc import Callable, Sequence

from mysqlsts.adapters.process import ProcessGroup
from mysqlsts.adapters.tools import die_with_this_process, raise_open_files_limit

log = logging.getLogger(__name__)

# SIGTERM first: the tool may still clean up after itself; then its group is killed.
STOP_GRACE_SECONDS = 10.0
_STDERR_LINES = 40


class BackupProcess:
    """One running backup tool, owned by the thread that streams it: that thread `close()`s it;
    any other (the donor's shutdown) may `stop()` it, which ends the stream's reads."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self._group = ProcessGroup.start(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, preexec_fn=_backup_child(),
        )
        assert self._group.process is not None
        self._process = self._group.process
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._drain = threading.Thread(target=self._read_stderr, name="backup-stderr",
                                       daemon=True)
        self._drain.start()

    @property
    def stdout_fd(self) -> int:
        assert self._process.stdout is not None
        return self._process.stdout.fileno()

    def wait(self) -> int:
        """Its exit code, once it has ended and said all it had to say on stderr."""
        code = self._process.wait()
        self._drain.join(timeout=10)
        return code

    def failure_tail(self) -> str:
        """The lines that say why: errors first, else the last few; bounded for the trailer."""
        lines = list(self._stderr)
        wanted = [line for line in lines if "error" in line.lower() or "fail" in line.lower()]
        return " | ".join((wanted or lines)[-5:])[-2000:]

    def stop(self) -> None:
        """End it if it runs: SIGTERM to its group, a grace, SIGKILL."""
        self._group.stop(STOP_GRACE_SECONDS)

    def close(self) -> None:
        """Stop it and close its pipes (not from another thread: they may be in a read)."""
        self.stop()
        self._drain.join(timeout=5)
        for pipe in (self._process.stdout, self._process.stderr):
            if pipe is not None:
                pipe.close()

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us at shutdown
            for raw in self._process.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    self._stderr.append(line)
                    log.debug("backup tool: %s", line)


def _backup_child() -> Callable[[], None]:
    """The backup tool's `preexec_fn`: it dies with us, and may open as many files as the hard
    limit allows, since it keeps every tablespace open at once."""
    dies_with_us = die_with_this_process()

    def in_child() -> None:
        dies_with_us()
        raise_open_files_limit()

    return in_child
