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

Past a gap (`holdings`): a gap in the archive blocks every purge until a base backup stands at
or after it. Then that backup holds every transaction up to its position, the archive's run
after the last break holds the rest, and the files are purged as above with the store holding
each domain from its first transaction: everything up to the backup's position in the backup,
what follows in the archive. The same lets files go that an archive trimmed by retention (or
started late) no longer holds, once a backup is past them.

What the metrics say of the files (`backlog`): their bytes, the bytes not archived yet, and
whether the purge is blocked for good (not merely waiting for the archiver or for `keep`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mysqlsts.core.binlog_index import Break, DomainRange, SegmentRecord, archived_position, breaks
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


@dataclass(frozen=True)
class Holdings:
    """What the store holds of each domain, for `purge_to`: its newest transaction, and the
    sequence number from which it holds every one (a domain missing: held not at all)."""

    archived: dict[int, MariadbGtid]
    begins: dict[int, int]


def _break_end(found: Break) -> int:
    """The last sequence number a break concerns (what a backup must stand at or after)."""
    if found.kind == "gap" and found.after:
        return parse_mariadb(found.before)[0].seq - 1
    return parse_mariadb(found.after or found.before)[0].seq


def _whole(dr: DomainRange) -> bool:
    return dr.last_seq - dr.first_seq + 1 == dr.count


def _tail(ranges: list[DomainRange]) -> tuple[int, DomainRange] | None:
    """The archive's contiguous run at its end in one domain: its first sequence number and
    last range; None when the newest range is torn or overlapped."""
    ranges = sorted(ranges, key=lambda r: (r.first_seq, r.last_seq))
    last = ranges[-1]
    if not _whole(last) or last.last_seq != max(r.last_seq for r in ranges):
        return None
    first = last.first_seq
    for dr in reversed(ranges[:-1]):
        if not _whole(dr) or dr.last_seq + 1 != first:
            break
        first = dr.first_seq
    return first, last


def holdings(records: Sequence[SegmentRecord], base: str = "") -> Holdings:
    """What the archive holds, with the base backup at GTID position `base` ("": none) in
    front of it. A domain whose every break is at or before the base's position and whose
    run after them begins at most one after it is held from its first transaction; a domain
    without a break, from where the archive begins; any other domain not at all."""
    position = {g.domain: g.seq for g in parse_mariadb(base)}
    by_domain: dict[int, list[DomainRange]] = {}
    for record in records:
        for dr in record.domains:
            by_domain.setdefault(dr.domain, []).append(dr)
    ends: dict[int, int] = {}
    for found in breaks(list(records)):
        ends[found.domain] = max(ends.get(found.domain, 0), _break_end(found))
    archived: dict[int, MariadbGtid] = {}
    begins: dict[int, int] = {}
    for domain, ranges in by_domain.items():
        tail = _tail(ranges)
        at = position.get(domain, 0)
        if tail is None or (domain in ends and (ends[domain] > at or tail[0] > at + 1)):
            continue
        archived[domain] = parse_mariadb(tail[1].last)[0]
        begins[domain] = 1 if tail[0] <= at + 1 else tail[0]
    return Holdings(archived, begins)


def covers_breaks(records: Sequence[SegmentRecord], base: str) -> bool:
    """Whether the base backup at `base` stands at or after every break of the archive (so
    the purge goes on past them, as far as the archive after them reaches)."""
    held = holdings(records, base)
    return all(found.domain in held.archived for found in breaks(list(records)))


def purge_with_bases(files: Sequence[BinlogFile], records: Sequence[SegmentRecord],
                     bases: Sequence[str], ages: Mapping[str, float] | None = None,
                     keep: float = 0.0) -> tuple[str | None, str]:
    """The farthest file `PURGE BINARY LOGS TO` may name with the archive alone (only when it
    has no break) or with one of the base backups at positions `bases` in front of it, and
    the base that allows it ("": the archive alone; None: no file may go)."""
    names = [f.name for f in files]
    best: tuple[int, str | None, str] = (-1, None, "")
    candidates = ([""] if not breaks(list(records)) else []) + [b for b in bases if b]
    for base in candidates:
        held = holdings(records, base)
        target = purge_to(files, held.archived, held.begins, ages, keep)
        if target is not None and names.index(target) > best[0]:
            best = (names.index(target), target, base)
    return best[1], best[2]


def metric_holdings(records: Sequence[SegmentRecord], base: str) -> Holdings:
    """What the metrics count as held: with the base backup a purge stood on, `holdings`;
    without one, the archive as it is (its newest transaction per domain, held from where it
    begins), gaps and all: a break is reported as what blocks the purge, not hidden here."""
    if base:
        return holdings(records, base)
    return Holdings(dict(archived_position(list(records))),
                    archive_begins([dr.first for record in records for dr in record.domains]))
