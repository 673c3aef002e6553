"""Replication coordinates from the files a physical backup carries.

The backup tool writes, at the instant the backup is consistent:
- `<prefix>_binlog_info`: the donor's own binary log position, `file<TAB>pos[<TAB>gtid]`.
  MariaDB's GTID is a list (`0-100-12,1-101-3`); MySQL's is a GTID set that xtrabackup 8
  writes over several lines (`uuid:1-5,\\nuuid2:1-3`).
- `<prefix>_slave_info` (only with --slave-info on a replica): the statements that would point
  a new replica at the donor's own primary, e.g. MariaDB's
  `SET GLOBAL gtid_slave_pos = '0-100-5'; CHANGE MASTER TO master_use_gtid = slave_pos;`, or
  `CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=n;`, or xtrabackup 8's
  `SET GLOBAL gtid_purged='…'; CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION=1;`.

The prefix is `xtrabackup` for MariaDB 10.x and xtrabackup, `mariadb_backup` for MariaDB ≥ 11.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mysqlsts.core.coordinates import Coordinates
from mysqlsts.errors import CloneError

BINLOG_INFO_NAMES = ("mariadb_backup_binlog_info", "xtrabackup_binlog_info")
SLAVE_INFO_NAMES = ("mariadb_backup_slave_info", "xtrabackup_slave_info")

_GTID_SET = re.compile(r"gtid_(?:slave_pos|purged)\s*=\s*'([^']*)'", re.IGNORECASE)
_LOG_FILE = re.compile(r"\b(?:MASTER|SOURCE)_LOG_FILE\s*=\s*'([^']*)'", re.IGNORECASE)
_LOG_POS = re.compile(r"\b(?:MASTER|SOURCE)_LOG_POS\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class BackupCoordinates:
    """Where a backup stands: in the donor's binlog, and relative to the donor's primary."""

    donor_binlog: Coordinates | None
    # Present when the donor was a replica: the point in its primary's stream.
    source: Coordinates | None

    @property
    def for_replication(self) -> Coordinates | None:
        """What a new replica of the primary should start from.

        The donor's slave_info when it was a replica (coordinates in the primary's own
        binlog); otherwise the donor's binlog, since the donor was the primary.
        """
        return self.source if self.source is not None else self.donor_binlog

    @property
    def origin(self) -> str:
        return "slave_info" if self.source is not None else "binlog_info"


def _normalise_gtid(text: str) -> str | None:
    # xtrabackup breaks long MySQL GTID sets over lines; whitespace is never part of a GTID.
    gtid = "".join(text.split())
    return gtid or None


def parse_binlog_info(text: str) -> Coordinates:
    fields = text.strip().split("\t", 2)
    if len(fields) < 2 or not fields[0].strip() or not fields[1].strip().isdigit():
        raise CloneError(f"backup binlog info is malformed: {text.strip()[:120]!r}")
    gtid = _normalise_gtid(fields[2]) if len(fields) == 3 else None
    return Coordinates(gtid=gtid, binlog_file=fields[0].strip(),
                       binlog_position=int(fields[1]))


def parse_slave_info(text: str) -> Coordinates:
    gtids = set(_GTID_SET.findall(text))
    files = set(_LOG_FILE.findall(text))
    positions = set(_LOG_POS.findall(text))
    if len(gtids) > 1 or len(files) > 1 or len(positions) > 1:
        raise CloneError(
            "the donor replicates from several sources (multi-source slave info); "
            "mysqlsts supports one primary"
        )
    if len(files) != len(positions):
        raise CloneError(f"backup slave info has a log file without a position: {text[:160]!r}")
    coordinates = Coordinates(
        gtid=_normalise_gtid(gtids.pop()) if gtids else None,
        binlog_file=files.pop() if files else None,
        binlog_position=int(positions.pop()) if positions else None,
    )
    # MariaDB writes MASTER_LOG_FILE='' for a replica that never connected: no coordinates.
    if coordinates.binlog_file == "":
        coordinates = Coordinates(gtid=coordinates.gtid)
    return coordinates


def _first(files: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in files:
            return files[name]
    return None


def coordinates_from_files(files: Mapping[str, str]) -> BackupCoordinates:
    """Coordinates from backup-info files, given as {file name: content}."""
    binlog_text = _first(files, BINLOG_INFO_NAMES)
    slave_text = _first(files, SLAVE_INFO_NAMES)
    donor = parse_binlog_info(binlog_text) if binlog_text and binlog_text.strip() else None
    source = parse_slave_info(slave_text) if slave_text and slave_text.strip() else None
    if source is not None and source.empty:
        source = None
    return BackupCoordinates(donor_binlog=donor, source=source)


def flavor_of_version(version: str) -> str | None:
    """The flavor a server version string names ("10.11.6-MariaDB-log" → mariadb, "8.4.3" →
    mysql), None when it names none (empty). MariaDB's majors are 10 and up, MySQL's below."""
    if not version:
        return None
    if "mariadb" in version.lower():
        return "mariadb"
    major = version.split(".", 1)[0]
    if not major.isdigit():
        return None
    return "mariadb" if int(major) >= 10 else "mysql"
