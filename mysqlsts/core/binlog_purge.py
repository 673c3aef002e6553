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

Past a gap (`holdings`): a gap or an overlap in the archive blocks every purge until a base
backup stands at or after it. Then that backup holds every transaction up to its position and
the archive's run after it, up to its next break, the rest; the files are purged as above with
the store holding each domain from its first transaction through that run. A later break no
base stands after stops the purge at the file holding it. The same lets files go that an
archive trimmed by retention (or started late) no longer holds, once a backup is past them.

What the metrics say of the files (`backlog`, `plan_purge`): their bytes, the bytes the store
does not hold yet, and whether the purge is blocked for good (not merely waiting for the
archiver or for `keep`).

A round (`purge_round`) works out once what the archive alone lets go, and says whether the
store's base backups could change that (`needs_bases`: only when the archive alone is blocked),
so its caller reads them only then and plans with them (`PurgeRound.plan`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


def stands_after(base: str, found: Break) -> bool:
    """Whether the base backup at GTID position `base` holds every transaction `found`
    concerns (a gap's missing ones, an overlap's twice-held ones)."""
    return _seq_in(base, found.domain) >= _break_end(found)


def _run_end(ranges: Sequence[DomainRange], held: int) -> int:
    """Every transaction up to `held` being held, how far the archive holds every one on in
    a domain: through its whole ranges that follow each other from there, up to the next gap,
    torn range or overlap (an overlap's twice-held transactions are not counted as held)."""
    end, extended = held, False
    for dr in sorted(ranges, key=lambda r: (r.first_seq, r.last_seq)):
        if dr.last_seq <= held:
            continue  # inside what is held already: a break there is covered
        if not _whole(dr) or dr.first_seq > end + 1:
            break
        if extended and dr.first_seq <= end:
            return max(held, dr.first_seq - 1)
        end, extended = dr.last_seq, True
    return end


def holdings(records: Sequence[SegmentRecord], base: str = "") -> Holdings:
    """What the store holds, with the base backup at GTID position `base` ("": none) in front
    of the archive. In each domain: nothing unless the base stands at or after the domain's
    first break; then every transaction up to the base's position, and the archive's run after
    it up to its next break (a base past the archive's newest transaction counts only up to it:
    the archiver resumes there). An archive that begins after the base's position is held
    from its first transaction, through its run up to its first break."""
    position = {g.domain: g.seq for g in parse_mariadb(base)}
    by_domain: dict[int, list[DomainRange]] = {}
    for record in records:
        for dr in record.domains:
            by_domain.setdefault(dr.domain, []).append(dr)
    first_break: dict[int, int] = {}
    for found in breaks(list(records)):
        first_break[found.domain] = min(first_break.get(found.domain, _break_end(found)),
                                        _break_end(found))
    newest = archived_position(list(records))
    archived: dict[int, MariadbGtid] = {}
    begins: dict[int, int] = {}
    for domain, ranges in by_domain.items():
        at = position.get(domain, 0)
        if at < first_break.get(domain, at):
            continue
        first = min(dr.first_seq for dr in ranges)
        begins[domain] = 1 if first <= at + 1 else first
        end = min(_run_end(ranges, max(at, begins[domain] - 1)), newest[domain].seq)
        archived[domain] = MariadbGtid(domain, newest[domain].server_id, end)
    return Holdings(archived, begins)


def _first_uncovered(found: Sequence[Break], bases: Sequence[str]) -> Break | None:
    return next((one for one in found if not any(stands_after(base, one) for base in bases)),
                None)


def uncovered_break(records: Sequence[SegmentRecord], bases: Sequence[str]) -> Break | None:
    """The archive's first break no base backup at `bases` stands at or after: from the file
    holding it on, nothing goes until a person acts (or a newer base backup is taken)."""
    return _first_uncovered(breaks(list(records)), bases)


@dataclass(frozen=True)
class Footing:
    """What a purge may stand on, and what it lets go: the archive alone (`base` "") or the
    base backup at GTID position `base` in front of it."""

    base: str
    held: Holdings
    target: str | None  # the file `PURGE BINARY LOGS TO` may name now (`keep` honoured)
    reach: str | None  # the one it could name were every file old enough


def footing(files: Sequence[BinlogFile], records: Sequence[SegmentRecord], base: str,
            ages: Mapping[str, float] | None = None, keep: float = 0.0) -> Footing:
    held = holdings(records, base)
    return Footing(base, held, purge_to(files, held.archived, held.begins, ages, keep),
                   purge_to(files, held.archived, held.begins))


def _farthest(files: Sequence[BinlogFile], footings: Sequence[Footing],
              pick: Callable[[Footing], str | None]) -> Footing | None:
    """The footing whose `pick` file is the farthest in `files` (the first of equals); None
    when none lets a file go."""
    names = [f.name for f in files]
    best, at = None, -1
    for candidate in footings:
        target = pick(candidate)
        if target is not None and names.index(target) > at:
            best, at = candidate, names.index(target)
    return best


def metric_holdings(records: Sequence[SegmentRecord], best: Footing | None) -> Holdings:
    """What the metrics count as held: with the base backup a purge stands on (`best`, the
    footing that lets the most go), its holdings; without one, the archive as it is (its
    newest transaction per domain, held from where it begins), gaps and all: a break is
    reported as what blocks the purge, not hidden here."""
    if best is not None and best.base:
        return best.held
    return Holdings(dict(archived_position(list(records))),
                    archive_begins([dr.first for record in records for dr in record.domains]))


@dataclass(frozen=True)
class PurgePlan:
    """One purge round's decision, and what the metrics show after it."""

    target: str | None  # the file `PURGE BINARY LOGS TO` names; None: none goes
    base: str  # the base backup's position it stands on ("": the archive alone)
    backlog: Backlog
    uncovered: Break | None  # the first break no base backup stands after


@dataclass(frozen=True)
class PurgeRound:
    """One round's files and archive, with what the archive alone lets go worked out once
    (`purge_round`). The store's base backups can change the plan only when the archive alone
    is blocked: `needs_bases` says so, and only then need the caller read them for `plan`."""

    files: Sequence[BinlogFile]
    records: Sequence[SegmentRecord]
    ages: Mapping[str, float] | None
    keep: float
    breaks: Sequence[Break]
    alone: Footing | None  # None: the archive has a break, so alone it lets nothing go

    @property
    def needs_bases(self) -> bool:
        """Whether the archive alone is blocked: it has a break, or it would let no file go
        even were every file old enough (files from before it began)."""
        return self.alone is None or (len(self.files) > 1 and self.alone.reach is None)

    def footings(self, bases: Sequence[str]) -> list[Footing]:
        """The archive alone (unless it has a break), then each base backup in front of it."""
        return [*([self.alone] if self.alone is not None else []),
                *(footing(self.files, self.records, base, self.ages, self.keep)
                  for base in bases if base)]

    def plan(self, bases: Sequence[str]) -> PurgePlan:
        """The farthest file the archive alone or a base backup at one of `bases` lets go,
        and the figures of the files left after it. The store's holdings are counted with the
        footing that would let the most go were every file old enough, so files that only
        wait for `keep` are neither unarchived nor blocked."""
        footings = self.footings(bases)
        now = _farthest(self.files, footings, lambda f: f.target)
        held = metric_holdings(self.records, _farthest(self.files, footings, lambda f: f.reach))
        target = now.target if now is not None else None
        # What is left: the files from the one purged to (the server may keep one a moment
        # longer for its binlog checkpoint: the next round counts it).
        left = (self.files[[f.name for f in self.files].index(target):] if target is not None
                else self.files)
        uncovered = _first_uncovered(self.breaks, bases)
        broken = (f"the archive is not contiguous ({uncovered}) and no base backup stands "
                  "after it" if uncovered is not None else "")
        return PurgePlan(target, now.base if now is not None else "",
                         backlog(left, held.archived, held.begins, broken), uncovered)


def purge_round(files: Sequence[BinlogFile], records: Sequence[SegmentRecord],
                ages: Mapping[str, float] | None = None, keep: float = 0.0) -> PurgeRound:
    """`files` in the server's order, `ages` the seconds each has existed (unknown: 0)."""
    found = breaks(list(records))
    alone = None if found else footing(files, records, "", ages, keep)
    return PurgeRound(files, records, ages, keep, found, alone)


def purge_with_bases(files: Sequence[BinlogFile], records: Sequence[SegmentRecord],
                     bases: Sequence[str], ages: Mapping[str, float] | None = None,
                     keep: float = 0.0) -> tuple[str | None, str]:
    """The farthest file `PURGE BINARY LOGS TO` may name with the archive alone (only when it
    has no break) or with one of the base backups at positions `bases` in front of it, and
    the base that allows it ("": the archive alone; None: no file may go)."""
    now = _farthest(files, purge_round(files, records, ages, keep).footings(bases),
                    lambda f: f.target)
    return (now.target, now.base) if now is not None else (None, "")


def plan_purge(files: Sequence[BinlogFile], records: Sequence[SegmentRecord],
               bases: Sequence[str], ages: Mapping[str, float] | None = None,
               keep: float = 0.0) -> PurgePlan:
    """The round's plan with the base backups at `bases` (`PurgeRound.plan`)."""
    return purge_round(files, records, ages, keep).plan(bases)
