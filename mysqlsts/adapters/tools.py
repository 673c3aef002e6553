"""Where the server's programs are: Debian puts `mariadbd` in /usr/sbin, which is on root's
PATH but not on an ordinary user's."""

from __future__ import annotations

import os
import shutil

_SBIN = os.pathsep.join(("/usr/sbin", "/usr/local/sbin"))


def program(name: str) -> str:
    """The program's path if it can be found; else its bare name, for the OS to report."""
    return shutil.which(name) or shutil.which(name, path=_SBIN) or name


def user_args(euid: int | None = None) -> list[str]:
    """`--user=root` when running as root: mariadbd and mariadb-install-db refuse root unless
    told to. In the images we already are `mysql` (uid 999) and pass nothing."""
    return ["--user=root"] if (os.geteuid() if euid is None else euid) == 0 else []
