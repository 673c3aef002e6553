"""Running the server's programs and tools: where they are, and why one failed.

Debian puts `mariadbd` in /usr/sbin, which is on root's PATH but not on an ordinary user's.
A tool that fails says why in its last words on stderr; that line is what mysqlsts reports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from typing import IO

from mysqlsts.errors import MysqlstsError

_SBIN = os.pathsep.join(("/usr/sbin", "/usr/local/sbin"))


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


def failure(what: str, exit_code: int, stderr: IO[bytes]) -> str:
    """`<what> failed with exit code N: <its last line on stderr>`, from a captured stderr."""
    stderr.seek(0)
    said = last_line(stderr.read().decode(errors="replace")) or "no output"
    return f"{what} failed with exit code {exit_code}: {said}"


def run_tool(
    argv: Sequence[str], what: str, *, stdin: bytes | None = None,
    error: type[MysqlstsError] = MysqlstsError,
) -> None:
    """Run a tool to completion; `error` with its last stderr line when it fails. Its stderr
    goes to a temporary file, so a chatty tool costs no memory."""
    with tempfile.TemporaryFile() as stderr:
        code = subprocess.run(
            argv, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr, check=False,
        ).returncode
        if code != 0:
            raise error(failure(what, code, stderr))
