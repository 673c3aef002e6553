"""Which of the primary's binary logs may be purged: only those whose every transaction is in
the archive (pure).

A binary log file's start position is the server's GTID position when the file began (the
last GTID of each domain written before it). Every file before file k is archived when, in
every domain of file k's start position, the archive holds that GTID's sequence number: a
domain the archive does not hold blocks the purge (it may hold writes from before the archive
began, which only the binary log has). The newest file is never purged (the server writes it).
And a file goes only once the file after it has existed for `keep` seconds (as seen by the
purger), so a replica that was down, or is being cloned from a copy a little behind, still finds
the binary logs it resumes from on the primary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mysqlsts.core.gtid import MariadbGtid, parse_mariadb


@dataclass(frozen=True)
class BinlogFile:
    name: str
    start: str  # MariaDB GTID position when the file began ("" for the very first)


def covered(start: str, archived: Mapping[int, MariadbGtid]) -> bool:
    """Whether everything before a file starting at `start` is archived."""
    for gtid in parse_mariadb(start):
        have = archived.get(gtid.domain)
        if have is None or have.seq < gtid.seq:
            return False
    return True


def purge_to(files: Sequence[BinlogFile], archived: Mapping[int, MariadbGtid],
             ages: Mapping[str, float] | None = None, keep: float = 0.0) -> str | None:
    """The file `PURGE BINARY LOGS TO` names (every file before it goes), or None when no
    file may go. Files in the server's order; `ages`: seconds each file has existed (unknown:
    0); the first file not covered, or younger than `keep`, stops the search."""
    target = None
    for index in range(1, len(files)):
        if not covered(files[index].start, archived):
            break
        if keep > 0 and (ages or {}).get(files[index].name, 0.0) < keep:
            break
        target = files[index].name
    return target
