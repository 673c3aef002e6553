"""Which archived binlog segments retention deletes, given the base backups it keeps (pure).

A recovery from a backup at sequence number b uses only the segments of its run whose last
transaction is after b (core/pitr.py, `_plan_from`): a segment whose every transaction is at
or before the oldest kept backup's position, in every domain it holds, is in no recovery's
plan once the older backups are gone, gap or no gap. So retention deletes that prefix of the
archive and nothing after it (segments between a kept base and later points, and those across
a gap after it, stay). The newest segment of each domain stays whatever the backups say: the
archiver resumes from it, and an emptied archive would start over elsewhere.

A segment goes index record first, then its object (a chunked segment's: all its chunks): a
record without its segment is a hole a reader sees as missing, a segment without a record is
in no reader's archive.

Orphans (a segment object or a chunk without a record: a write cut short, or a deletion cut
short; a chunk's name carries its transaction's place as a segment's does) go when
they are provably not an archiver's write in flight: the segment's first transaction (its name
says which) is inside an indexed record, or before the archive's first record and at or before
the oldest kept base, and that record's transactions committed `orphan_age` before now (an
archiver writes only past the newest record, so one whose place the index holds is done with).
An orphan in a gap, or past the newest record, stays: it may be what repairs the gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mysqlsts.core.binlog_index import SegmentRecord, segment_start
from mysqlsts.core.gtid import parse_mariadb

ORPHAN_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class SegmentPlan:
    delete: tuple[SegmentRecord, ...]  # in sequence order: record first, then segment
    orphans: tuple[str, ...]  # segment objects without a record, safe to delete
    kept: int  # records kept
    cutoff: Mapping[int, int]  # per domain: the oldest kept base's sequence number


def base_cutoff(bases: Sequence[str]) -> dict[int, int] | None:
    """Per domain, the lowest sequence number any of the kept bases (their GTID positions)
    stands at; a domain one base does not name is 0 there (it needs the domain from its
    first transaction). None without a base: nothing is known to be unneeded."""
    if not bases:
        return None
    positions = [{g.domain: g.seq for g in parse_mariadb(base)} for base in bases]
    domains = {d for position in positions for d in position}
    return {d: min(position.get(d, 0) for position in positions) for d in domains}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def plan_segments(bases: Sequence[str], records: Sequence[SegmentRecord],
                  segment_names: Sequence[str], now: datetime,
                  orphan_age: timedelta = ORPHAN_AGE) -> SegmentPlan:
    """The records (with their segments) and orphans to delete when `bases` (the GTID
    positions of the backups retention keeps) are all that remain; `segment_names`: the
    segment objects listed (before the records were read)."""
    cutoff = base_cutoff(bases)
    newest: dict[int, tuple[int, str]] = {}  # per domain: its newest record's last seq, name
    for record in records:
        for dr in record.domains:
            newest[dr.domain] = max(newest.get(dr.domain, (-1, "")), (dr.last_seq,
                                                                       record.segment))
    resume = {segment for _, segment in newest.values()}
    delete = []
    if cutoff is not None:
        for record in records:
            if record.segment in resume or not record.domains:
                continue
            if all(dr.last_seq <= cutoff.get(dr.domain, 0) for dr in record.domains):
                delete.append(record)
    delete.sort(key=lambda r: [(dr.domain, dr.first_seq) for dr in r.domains])
    indexed = {name for r in records for name in r.objects}
    orphans = tuple(name for name in sorted(segment_names) if name not in indexed
                    and _orphan_done(name, records, cutoff, now - orphan_age))
    return SegmentPlan(tuple(delete), orphans, len(records) - len(delete), cutoff or {})


def _orphan_done(name: str, records: Sequence[SegmentRecord], cutoff: Mapping[int, int] | None,
                 before: datetime) -> bool:
    start = segment_start(name)
    if start is None:
        return False  # not a name the archive writes: not ours to delete
    ranges = [(dr, r) for r in records for dr in r.domains if dr.domain == start.domain]
    if not ranges:
        return False
    inside = [r for dr, r in ranges if dr.first_seq <= start.seq <= dr.last_seq]
    if inside:
        return all(_time(r.last_commit) <= before for r in inside)
    first_dr, first = min(ranges, key=lambda pair: pair[0].first_seq)
    return (cutoff is not None and start.seq < first_dr.first_seq
            and start.seq <= cutoff.get(start.domain, 0)
            and _time(first.first_commit) <= before)
