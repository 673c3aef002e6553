"""Server flavor and version, parsed from `SELECT VERSION()`."""

from __future__ import annotations

import re
from dataclasses import dataclass


class Flavor:
    """Server families: they differ in backup tool and SQL dialect."""

    MARIADB = "mariadb"
    MYSQL = "mysql"
    ALL = (MARIADB, MYSQL)


_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True, order=True)
class ServerVersion:
    flavor: str
    number: tuple[int, int, int]

    def at_least(self, major: int, minor: int = 0, patch: int = 0) -> bool:
        return self.number >= (major, minor, patch)

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == Flavor.MARIADB

    def __str__(self) -> str:
        return ".".join(map(str, self.number))


def parse_version(version: str) -> ServerVersion:
    """`10.11.19-MariaDB-0+deb12u1` → mariadb 10.11.19; `8.4.3` → mysql 8.4.3."""
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"unrecognised server version {version!r}")
    number = (int(match[1]), int(match[2]), int(match[3]))
    flavor = Flavor.MARIADB if "mariadb" in version.lower() else Flavor.MYSQL
    return ServerVersion(flavor, number)
