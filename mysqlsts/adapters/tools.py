"""Where the server's programs are: Debian puts `mariadbd` in /usr/sbin, which is on root's
PATH but not on an ordinary user's."""

from __future__ import annotations

import os
import shutil

_SBIN = os.pathsep.join(("/usr/sbin", "/usr/local/sbin"))


def program(name: str) -> str:
    """The program's path if it can be found; else its bare name, for the OS to report."""
    return shutil.which(name) or shutil.which(name, path=_SBIN) or name
