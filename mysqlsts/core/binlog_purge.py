"""Which of the primary's binary logs may be purged: only those whose every transaction is in
the archive (pure).

A binary log file's start position is the server's GTID position when the file began (the
last GTID of each domain written before it). Every file before file k is archived when, in
every domain of file k's start position, the archive reaches that GTID's sequence number *and
begins no later than the first transaction the oldest file holds* (the oldest file's start
plus one; 1 for a domain the oldest file's start does not name): an archive added to a running
set starts at the primary's position then, and the files from before it hold transactions only
the binary log has. A domain the archive does not hold blocks the purge, and so does a start
position the server cannot tell (None). The newest file is never purged (the server writes it).
And a file goes only once the file after it has existed for `keep` seconds (as seen by the
purger), so a replica that was down, or is being cloned from a copy a little behind, still finds
the binary logs it resumes from on the primary.

What the metrics say of the files (`backlog`): their bytes, the bytes not archived yet, and
whether the purge is blocked for good (not merely waiting for the archiver or for `keep`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mysqlsts.core.gtid import MariadbGtid, parse_mariadb


@dataclass(frozen=True)
class BinlogFile:
    name: str
    start: str | None  # MariaDB GTID position when the file began; None: the server cannot say
    size: int = 0  # bytes, as SHOW BINARY LOGS says


def _seq_in(position: str, domain: int) -> int:
    """`position`'s sequence number in `domain`; 0 when it names none (nothing written)."""
    return next((g.seq for g in parse_mariadb(position) if g.domain == domain), 0)


BEHIND = "behind"  # not archived yet: the archiver has still to reach it


def not_covered(start: str | None, oldest_start: str | None,
                archived: Mapping[int, MariadbGtid], begins: Mapping[int, int]) -> str | None:
    """Why not everything from the oldest file up to a file starting at `start` is archived
    (`archived` the archive's newest GTID per domain, `begins` its first sequence number):
    None when it is; BEHIND when the archive has not reached it yet; else the sentence of what
    blocks the purge until a person acts."""
    if start is None or oldest_start is None:
        return "the server cannot tell where a binary log began (BINLOG_GTID_POS is NULL)"
    for gtid in parse_mariadb(start):
        have = archived.get(gtid.domain)
        if have is None:
            # An archive that holds nothing yet is only behind; one that holds other domains
            # but never this one cannot cover it.
            return BEHIND if not archived else (f"the archive holds no transaction of domain "
                                                f"{gtid.domain}")
        if have.seq < gtid.seq:
            return BEHIND
        first_held = _seq_in(oldest_start, gtid.domain) + 1
        if gtid.seq >= first_held and begins.get(gtid.domain, first_held + 1) > first_held:
            # The oldest file holds transactions from before the archive began.
            return (f"the archive begins after the oldest binary log's first transaction in "
                    f"domain {gtid.domain}")
    return None


def covered(start: str | None, oldest_start: str | None, archived: Mapping[int, MariadbGtid],
            begins: Mapping[int, int]) -> bool:
    """Whether everything from the oldest file up to a file starting at `start` is archived."""
    return not_covered(start, oldest_start, archived, begins) is None


def purge_to(files: Sequence[BinlogFile], archived: Mapping[int, MariadbGtid],
             begins: Mapping[int, int], ages: Mapping[str, float] | None = None,
             keep: float = 0.0) -> str | None:
    """The file `PURGE BINARY LOGS TO` names (every file before it goes), or None when no
    file may go. Files in the server's order; `begins`: the archive's first sequence number
    per domain; `ages`: seconds each file has existed (unknown: 0); the first file not
    covered, or younger than `keep`, stops the search."""
    target = None
    for index in range(1, len(files)):
        if not covered(files[index].start, files[0].start, archived, begins):
            break
        if keep > 0 and (ages or {}).get(files[index].name, 0.0) < keep:
            break
        target = files[index].name
    return target


def archive_begins(first_gtids: Sequence[str]) -> dict[int, int]:
    """The archive's first sequence number per domain, from its records' first GTIDs."""
    begins: dict[int, int] = {}
    for text in first_gtids:
        for gtid in parse_mariadb(text):
            begins[gtid.domain] = min(begins.get(gtid.domain, gtid.seq), gtid.seq)
    return begins


@dataclass(frozen=True)
class Backlog:
    """The primary's binary logs as the metrics show them."""

    total: int  # bytes of every binary log file
    # Bytes of the files from the first one holding a transaction the archive does not hold
    # (or may not: the newest file always counts) to the newest: whole files.
    unarchived: int
    blocked: str  # why no archived file can be purged until a person acts; "" when none


def backlog(files: Sequence[BinlogFile], archived: Mapping[int, MariadbGtid],
            begins: Mapping[int, int], broken: str = "") -> Backlog:
    """`files` in the server's order; `broken`: the archive's first break ("" when it is
    contiguous), which blocks every purge."""
    first_unarchived, blocked = len(files) - 1, broken
    for index in range(1, len(files)):
        why = not_covered(files[index].start, files[0].start, archived, begins)
        if why is not None:
            first_unarchived = index - 1
            blocked = blocked or ("" if why == BEHIND else why)
            break
    return Backlog(total=sum(f.size for f in files),
                   unarchived=sum(f.size for f in files[max(first_unarchived, 0):]),
                   blocked=blocked)
