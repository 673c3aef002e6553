"""Running the server's programs and tools: where they are, and why one failed.

Debian puts `mariadbd` in /usr/sbin, which is on root's PATH but not on an ordinary user's.
A tool that fails says why in its last words on stderr; that line is what mysqlsts reports.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from typing import IO

from mysqlsts.core.disk_full import full_disk_line
from mysqlsts.core.sql import quote_literal
from mysqlsts.errors import MysqlstsError

_SBIN = os.pathsep.join(("/usr/sbin", "/usr/local/sbin"))
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def program(name: str) -> str:
    """The program's path if it can be found; else its bare name, for the OS to report."""
    return shutil.which(name) or shutil.which(name, path=_SBIN) or name


def last_line(text: str, skip: tuple[str, ...] = ()) -> str | None:
    """The last non-empty line of a tool's output, passing over lines that contain any of
    `skip` (e.g. mariadbd's closing "Aborting", which says nothing) unless nothing else is left.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    telling = [line for line in lines if not any(word in line for word in skip)]
    chosen = telling or lines
    return chosen[-1] if chosen else None


def failure(what: str, exit_code: int, stderr: IO[bytes], skip: tuple[str, ...] = ()) -> str:
    """`<what> failed with exit code N: <its last telling line on stderr>`, from a captured
    stderr (see `last_line` for `skip`); a line saying the disk is full wins over the last."""
    stderr.seek(0)
    text = stderr.read().decode(errors="replace")
    said = full_disk_line(text) or last_line(text, skip) or "no output"
    return f"{what} failed with exit code {exit_code}: {said}"


def run_tool(
    argv: Sequence[str], what: str, *, stdin: bytes | None = None,
    error: type[MysqlstsError] = MysqlstsError, skip: tuple[str, ...] = (),
    secrets: tuple[str, ...] = (),
) -> None:
    """Run a tool to completion; `error` with its last stderr line when it fails. Its stderr
    goes to a temporary file, so a chatty tool costs no memory. `secrets` (what `stdin`
    carries) never reach the message: a server echoes the statement it failed on."""
    with tempfile.TemporaryFile() as stderr:
        code = subprocess.run(
            argv, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr, check=False,
        ).returncode
        if code != 0:
            raise error(redact(failure(what, code, stderr, skip), secrets))


def redact(message: str, secrets: tuple[str, ...]) -> str:
    """`message` without any secret, raw or quoted, and without the echo of a statement
    ("... near '<statement>'"), which may hold a cut-off piece of one."""
    if not secrets:
        return message
    message = re.split(r" near ['\"`]", message, maxsplit=1)[0]
    for secret in secrets:
        if secret:
            for form in (secret, quote_literal(secret)[1:-1]):
                message = message.replace(form, "<secret>")
    return message


def die_with_this_process() -> Callable[[], None]:
    """A `preexec_fn` that has the kernel SIGKILL the child when this process dies, even by
    SIGKILL, so that no backup tool streams on as an orphan (Linux's PR_SET_PDEATHSIG).

    The signal comes when the thread that started the child ends, so start children from a
    thread that outlives them. The child runs only the libc call, already looked up here,
    between fork and exec.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # we died before the prctl: nobody would signal it
            os._exit(1)

    return in_child


def user_args(euid: int | None = None) -> list[str]:
    """`--user=root` when running as root: mariadbd and mariadb-install-db refuse root unless
    told to. In the images we already are `mysql` (uid 999) and pass nothing."""
    return ["--user=root"] if (os.geteuid() if euid is None else euid) == 0 else []


def raise_open_files_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit, as Go's runtime does for
    every program. Silent, for use as a `preexec_fn` between fork and exec.

    mariabackup keeps every tablespace open while it backs up, one descriptor per table, so
    under a container's usual soft limit (1024) a data dir with more tables than that fails
    with "Too many open files" (docs/benchmarks.md, "How the clone's cost grows").
    The hard limit is the container runtime's to set, and far higher by default.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):  # above what the kernel allows: keep it
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
