"""Point-in-time recovery, planned and cut (pure): which base backup, which archived segments,
and exactly which of their transactions to apply for a target.

A target is a GTID (inclusive), a time (the last transaction committed at or before it), or
the latest the archive holds. The plan is made from the catalog's manifests and the archive's
index records alone, so a target outside the recoverable window is refused, naming the window,
before anything is downloaded.

This first version handles one GTID domain (a set's primaries all write domain 0); an archive
or a backup naming several domains is refused in a sentence.

Times are the server's binlog timestamps, whole seconds: "committed at or before T" is "the
commit event's timestamp is at or before T". Applying stops before the first transaction after
the backup whose timestamp is later than T (binlog order is commit order; a timestamp is when
the committing statement started, so with concurrent writers two neighbours can be out of
order by a second: what is applied is always a prefix of the binlog, never a transaction
after one left out).

A backup stands at its manifest's `gtid` and at its `end_time` (every transaction of its
position committed before the backup ended). From a backup at sequence number b, the points
recoverable are b .. e, where e is the end of the archive's contiguous run holding b + 1 (or b
itself when the archive holds nothing after it).

A backup whose last restore drill failed (core/backup_verify.py) is no recovery point while
another will do: of the backups that reach a target, the newest whose last drill did not fail
is the base (never drilled is not failed), and the plan's `note` names the failed ones passed
over; only when every backup that reaches the target failed is the newest of them used, and the
note says so.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.core.binlog_segment import Grouper, Segment, Transaction
from mysqlsts.core.gtid import MariadbGtid, parse_mariadb
from mysqlsts.errors import MysqlstsError


class RecoveryRefused(MysqlstsError):
    """A target that cannot be recovered to exactly: outside the window, or the archive does
    not hold what it needs."""


class SeveralDomains(RecoveryRefused):
    """The backups and archive hold more than one GTID domain: not handled yet."""


@dataclass(frozen=True)
class BaseBackup:
    backup_id: str
    gtid: str  # the manifest's position ("" for a server with no transaction yet)
    end_time: str  # ISO-8601 UTC
    drill_failed: bool = False  # its last restore drill failed


@dataclass(frozen=True)
class Target:
    gtid: str = ""  # one MariaDB GTID, inclusive
    time: datetime | None = None  # aware; the last transaction committed at or before it

    def __post_init__(self) -> None:
        if self.gtid and self.time is not None:
            raise ValueError("a target is a GTID or a time, not both")
        if self.time is not None and self.time.tzinfo is None:
            raise ValueError("a target time names its zone")

    def __str__(self) -> str:
        if self.gtid:
            return f"GTID {self.gtid}"
        if self.time is not None:
            return f"time {_iso(self.time)}"
        return "the latest"


@dataclass(frozen=True)
class Window:
    """What can be recovered from one backup: every GTID from `first` (the backup itself) to
    `last`; by time, from `start` (the backup's end) to just before `end`, the second the
    archive's last transaction there committed in (a transaction after it, not archived or
    lost in a gap, may have committed in that same second, so a time in it is not exact).
    `end` is None when no time is recoverable (nothing archived after the backup)."""

    backup_id: str
    first: str
    last: str
    start: datetime
    end: datetime | None

    def __str__(self) -> str:
        first = self.first or "(no transaction)"
        times = (f"from {_iso(self.start)} to before {_iso(self.end)}"
                 if self.end is not None and self.end > self.start else "none")
        return f"{first} .. {self.last or first} (by time: {times})"


@dataclass(frozen=True)
class Plan:
    backup_id: str
    base_gtid: str
    domain: int
    base_seq: int  # the backup's sequence number in `domain` (0: none)
    segments: tuple[str, ...]  # segment object names, in apply order
    stop_seq: int | None  # apply through this sequence number (a GTID target, the latest)
    stop_gtid: str  # that transaction's GTID, checked as it is applied ("" for a time)
    stop_time: datetime | None  # a time target: apply while commits are at or before it
    note: str = ""  # the backups whose last drill failed, passed over (or used), in words


def parse_time(text: str) -> datetime:
    """An ISO-8601 time with its zone (Z or an offset), or ValueError in a sentence."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z",
                                                                                  "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} names no zone: add Z (UTC) or an offset")
    return value.astimezone(UTC)


def parse_target_gtid(text: str) -> str:
    gtids = parse_mariadb(text)  # ValueError names a malformed item
    if len(gtids) != 1:
        raise ValueError(f"a GTID target is one GTID (domain-server-seq), not {text!r}")
    return str(gtids[0])


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class _Run:
    first: int
    last: int
    records: tuple[SegmentRecord, ...]


def _domains(backups: Sequence[BaseBackup], records: Sequence[SegmentRecord]) -> set[int]:
    found = {g.domain for b in backups for g in parse_mariadb(b.gtid)}
    found |= {d.domain for r in records for d in r.domains}
    return found


def _runs(records: Sequence[SegmentRecord]) -> list[_Run]:
    """The archive's contiguous runs (one domain): a record whose own count disagrees with its
    range, or that overlaps another, is a run of its own that nothing continues through."""
    ordered = sorted(records, key=lambda r: (r.domains[0].first_seq, r.domains[0].last_seq))
    runs: list[_Run] = []
    for record in ordered:
        dr = record.domains[0]
        whole = dr.last_seq - dr.first_seq + 1 == dr.count
        last = runs[-1] if runs else None
        if whole and last is not None and last.last + 1 == dr.first_seq and last.last >= 0:
            runs[-1] = _Run(last.first, dr.last_seq, (*last.records, record))
        elif whole and (last is None or dr.first_seq > last.last):
            runs.append(_Run(dr.first_seq, dr.last_seq, (record,)))
        else:
            # Torn inside or overlapping: it ends the run before it and starts none.
            runs.append(_Run(dr.first_seq, -1, ()))
    return runs


def _seq(gtid: str, domain: int) -> tuple[int, int | None]:
    """(sequence number, server id) of `gtid`'s entry in `domain`; (0, None) without one."""
    for g in parse_mariadb(gtid):
        if g.domain == domain:
            return g.seq, g.server_id
    return 0, None


def _windows(backups: Sequence[BaseBackup], runs: list[_Run],
             domain: int) -> list[tuple[BaseBackup, Window, _Run | None]]:
    result = []
    for backup in sorted(backups, key=lambda b: (_time(b.end_time), b.backup_id),
                         reverse=True):
        base, _ = _seq(backup.gtid, domain)
        run = next((r for r in runs if r.last >= 0 and r.first <= base + 1 <= r.last), None)
        start = _time(backup.end_time)
        if run is None:
            window = Window(backup.backup_id, backup.gtid, backup.gtid, start, None)
        else:
            end_record = run.records[-1]
            window = Window(backup.backup_id, backup.gtid, end_record.domains[0].last, start,
                            _time(end_record.last_commit))
        result.append((backup, window, run))
    return result


def _in(records: Sequence[SegmentRecord], domain: int) -> list[SegmentRecord]:
    return [r for r in records if r.domains and r.domains[0].domain == domain]


def describe_windows(found: Sequence[Window]) -> str:
    if not found:
        return "none (the store holds no backup)"
    return "; ".join(f"from backup {w.backup_id}: {w}" for w in found)


@dataclass(frozen=True)
class Span:
    """What `backup list` reports: from the oldest backup's end to the commit time of the
    newest transaction reachable (the last archived one, through an unbroken run after a
    backup; a backup's own end where none follows), and whether every time between is covered.
    A time in the second of the last archived commit is refused by a recovery until a later
    transaction is archived (`Window`): `to` names that commit, as issue 18 asks."""

    start: datetime | None
    end: datetime | None
    continuous: bool


def recoverable_span(backups: Sequence[BaseBackup], records: Sequence[SegmentRecord]) -> Span:
    if not backups:
        return Span(None, None, False)
    domains = _domains(backups, records)
    if len(domains) > 1:  # recovery handles one domain: the backups' own points only
        ends = sorted(_time(b.end_time) for b in backups)
        return Span(ends[0], ends[-1], False)
    domain = next(iter(domains)) if domains else 0
    windows = sorted((w for _, w, _ in _windows(backups, _runs(_in(records, domain)), domain)),
                     key=lambda w: w.start)
    start = windows[0].start
    covered, continuous = start, True
    for window in windows:
        if window.start > covered:
            continuous = False  # a stretch no backup's archive reaches
        covered = max(covered, window.end or window.start)
    return Span(start, covered, continuous and any(w.end is not None for w in windows))


def plan_recovery(backups: Sequence[BaseBackup], records: Sequence[SegmentRecord],
                  target: Target) -> Plan:
    """The newest backup the target can be reached from through a contiguous archive, and the
    segments after it up to the target; RecoveryRefused naming the window otherwise."""
    domains = _domains(backups, records)
    if len(domains) > 1:
        raise SeveralDomains("point-in-time recovery handles one GTID domain; the backups "
                              f"and archive hold domains {', '.join(map(str, sorted(domains)))}")
    domain = next(iter(domains)) if domains else 0
    if target.gtid:
        wanted = parse_mariadb(target.gtid)[0]
        if domains and wanted.domain != domain:
            raise RecoveryRefused(f"target {target} is in domain {wanted.domain}; the backups "
                                  f"and archive hold domain {domain}")
    runs = _runs(_in(records, domain))
    found = _windows(backups, runs, domain)
    if not found:
        raise RecoveryRefused(f"cannot recover to {target}: the store holds no backup")
    reach = [(backup, plan) for backup, window, run in found
             if (plan := _plan_from(backup, window, run, domain, target)) is not None]
    if reach:
        index, note = prefer_drilled([(b.backup_id, b.drill_failed) for b, _ in reach])
        return replace(reach[index][1], note=note)
    raise RecoveryRefused(f"cannot recover to {target}: outside the recoverable window, "
                          f"{describe_windows([w for _, w, _ in found])}")


def prefer_drilled(candidates: Sequence[tuple[str, bool]]) -> tuple[int, str]:
    """Which of `candidates` (backup id, its last drill failed), newest first, each able to
    serve, a restore takes: the first whose last drill did not fail, else the first; and the
    note naming the failed ones passed over, or the failed one used ("" for neither)."""
    index = next((i for i, (_, failed) in enumerate(candidates) if not failed), 0)
    skipped = [backup for backup, _ in candidates[:index]]
    if skipped:
        many = "s" if len(skipped) > 1 else ""
        return index, f"skipped backup{many} {', '.join(skipped)}: last drill failed"
    if candidates and candidates[0][1]:
        return 0, (f"backup {candidates[0][0]}'s last drill failed; no other backup will "
                   "do")
    return 0, ""


def _plan_from(backup: BaseBackup, window: Window, run: _Run | None, domain: int,
               target: Target) -> Plan | None:
    base, _ = _seq(backup.gtid, domain)
    last = run.last if run is not None else base
    after = [r for r in run.records if r.domains[0].last_seq > base] if run else []
    if target.gtid:
        wanted = parse_mariadb(target.gtid)[0]
        if not base <= wanted.seq <= last:
            return None
        if wanted.seq == base and _seq(backup.gtid, domain)[1] != wanted.server_id:
            return None
        chosen = tuple(r.segment for r in after if r.domains[0].first_seq <= wanted.seq)
        return Plan(backup.backup_id, backup.gtid, domain, base, chosen, wanted.seq,
                    str(wanted), None)
    if target.time is not None:
        when = target.time.astimezone(UTC)
        if window.end is None or not window.start <= when < window.end:
            return None
        chosen_records = []
        for record in after:
            chosen_records.append(record.segment)
            if _time(record.last_commit) > when:
                break  # the stop is inside this one
        return Plan(backup.backup_id, backup.gtid, domain, base, tuple(chosen_records), None,
                    "", when)
    return Plan(backup.backup_id, backup.gtid, domain, base,
                tuple(r.segment for r in after), last,
                after[-1].domains[0].last if after else backup.gtid, None)


@dataclass(frozen=True)
class Latest:
    """Where a recovery with no target stops: the end of the archive's contiguous run after
    the chosen backup (its own position when nothing archived follows it), and the first
    archived transaction past that end, when the archive holds more than it can reach (a gap:
    those are recoverable only from a base backup taken after it)."""

    backup_id: str
    gtid: str  # the latest recoverable transaction ("" for a server with no transaction)
    commit: datetime | None  # its commit time; None when it is the backup's own position
    transactions: int  # archived transactions applied after the backup
    beyond: str  # the first archived GTID past the run's end, unreachable ("" when none)

    def __str__(self) -> str:
        where = self.gtid or "(no transaction)"
        if self.commit is None:
            said = (f"{where}, backup {self.backup_id}'s own position (the archive holds "
                    "nothing after it)")
        else:
            said = (f"{where}, committed {_iso(self.commit)}: backup {self.backup_id} and "
                    f"{self.transactions} archived transactions, where the archive's "
                    "contiguous run ends")
        if self.beyond:
            said += (f"; a gap follows, the archive resumes at {self.beyond}, which no "
                     "backup reaches until one is taken after it")
        return said


def latest_of(plan: Plan, records: Sequence[SegmentRecord]) -> Latest:
    """The point a plan for `Target()` (the latest) reaches, from the records it was made
    from."""
    by_name = {r.segment: r for r in records}
    stop = plan.base_seq if plan.stop_seq is None else plan.stop_seq
    chosen = [by_name[name] for name in plan.segments]
    after = [r.domains[0] for r in _in(records, plan.domain) if r.domains[0].last_seq > stop]
    beyond = min(after, key=lambda d: d.first_seq).first if after else ""
    if not chosen:
        return Latest(plan.backup_id, plan.base_gtid, None, 0, beyond)
    return Latest(plan.backup_id, plan.stop_gtid, _time(chosen[-1].last_commit),
                  stop - plan.base_seq, beyond)


def transactions_of(content: bytes, name: str = "segment") -> Segment:
    """A segment's binary log file back as its transactions (magic, FORMAT_DESCRIPTION, whole
    transactions), or EventError naming it."""
    if not content.startswith(ev.MAGIC):
        raise ev.EventError(f"{name} is not a binary log file")
    grouper = Grouper()
    transactions: list[Transaction] = []
    pos, checksum = len(ev.MAGIC), False
    while pos < len(content):
        if len(content) - pos < ev.HEADER:
            raise ev.EventError(f"{name} ends inside an event header at byte {pos}")
        size = int.from_bytes(content[pos + 9:pos + 13], "little")
        if size < ev.HEADER or pos + size > len(content):
            raise ev.EventError(f"{name} holds a torn event at byte {pos}")
        event = ev.parse_event(content[pos:pos + size], checksum)
        if event.type == ev.FORMAT_DESCRIPTION:
            checksum = event.checksum
        done = grouper.feed(event)
        if done is not None:
            transactions.append(done)
        pos += size
    if grouper.in_transaction:
        raise ev.EventError(f"{name} ends inside a transaction")
    if grouper.description is None:
        raise ev.EventError(f"{name} has no FORMAT_DESCRIPTION event")
    return Segment(grouper.description, tuple(transactions))


def relay_log(segment: Segment, number: int) -> bytes:
    """The segment as a relay log file for the server's SQL thread: its FORMAT_DESCRIPTION, an
    artificial ROTATE naming a master binlog (`archive-bin.<number>`: parallel apply compares
    master log names, and a relay log without one crashes MariaDB 10.11's parallel workers),
    then its transactions."""
    description = segment.description
    rotate = ev.make_event(ev.ROTATE, struct.pack("<Q", 4) + f"archive-bin.{number:06d}".encode(),
                           server_id=description.server_id, flags=ev.ARTIFICIAL,
                           checksum=description.checksum)
    return ev.file_header(description) + rotate + b"".join(t.data for t in segment.transactions)


def cut(plan: Plan, segments: Sequence[Segment]) -> tuple[Transaction, ...]:
    """Exactly the transactions to apply: after the backup's position, through the target;
    RecoveryRefused when the segments do not hold them contiguously (or the target GTID is
    not the transaction at its sequence number)."""
    chosen: list[Transaction] = []
    expected = plan.base_seq + 1
    for segment in segments:
        for transaction in segment.transactions:
            gtid = transaction.gtid
            if gtid.domain != plan.domain or gtid.seq <= plan.base_seq:
                continue
            if plan.stop_seq is not None and gtid.seq > plan.stop_seq:
                return _checked(plan, chosen)
            if plan.stop_time is not None and _commit(transaction) > plan.stop_time:
                return _checked(plan, chosen)
            if gtid.seq != expected:
                raise RecoveryRefused(f"the archive's segments jump from sequence number "
                                      f"{expected - 1} to {gtid} in domain {plan.domain}")
            chosen.append(transaction)
            expected += 1
    return _checked(plan, chosen)


def _commit(transaction: Transaction) -> datetime:
    return datetime.fromtimestamp(transaction.commit_time, UTC)


def _checked(plan: Plan, chosen: list[Transaction]) -> tuple[Transaction, ...]:
    if plan.stop_seq is not None:
        reached = chosen[-1].gtid if chosen else None
        if plan.stop_seq != plan.base_seq and (reached is None or reached.seq != plan.stop_seq):
            raise RecoveryRefused(f"the archive's segments end before {plan.stop_gtid}")
        if plan.stop_gtid and reached is not None and str(reached) != plan.stop_gtid:
            raise RecoveryRefused(f"target GTID {plan.stop_gtid} is not in the archive: "
                                  f"sequence number {reached.seq} is {reached}")
    return tuple(chosen)


def position_after(plan: Plan, applied: Sequence[Transaction]) -> str:
    """The server's GTID position once `applied` is: the last one's, else the backup's."""
    if applied:
        last: MariadbGtid = applied[-1].gtid
        return str(last)
    return plan.base_gtid
