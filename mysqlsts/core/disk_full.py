"""A full disk, told from an OS error number or a tool's words, as one sentence (pure).

The tools that fill a data dir (mbstream, xbstream, mariabackup --prepare, mariadbd) say a
full disk in their own words, seldom on their last line ("my_write() failed.", even an
"out-of-order chunk" after it), so the line that says it is looked for by name.
"""

from __future__ import annotations

import errno
import os
import re

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

# strerror(ENOSPC / EDQUOT) as the tools print it, and MySQL's "Errcode: N" form of them.
_SAYS_FULL = ("No space left on device", "Disk quota exceeded",
              f"Errcode: {errno.ENOSPC} ", f"Errcode: {errno.EDQUOT} ")
# "Error writing file './app/t.ibd' (Errcode: 28 ...)": the file, as the tool names it.
_FILE = re.compile(r"file '([^']+)'")


def full_disk_line(text: str) -> str | None:
    """The first line of a tool's output that says the disk is full, stripped; or None."""
    return next((line.strip() for line in text.splitlines()
                 if any(words in line for words in _SAYS_FULL)), None)


def file_named(line: str, cwd: str) -> str | None:
    """The file a tool's line names (relative names resolved against `cwd`, the directory
    the tool wrote in), or None."""
    found = _FILE.search(line)
    return os.path.normpath(os.path.join(cwd, found.group(1))) if found else None


def disk_full(data_dir: str, path: str | None) -> str:
    """The sentence for a fill of `data_dir` stopped by a full disk while writing `path`."""
    where = f", writing {path}" if path and path != data_dir else ""
    return (f"the disk is full (ENOSPC) under data dir {data_dir}{where}: give the volume "
            "room and run again (the next run wipes what this one left and redoes it)")
