"""Point-in-time recovery, planned and cut (pure): which base backup, which archived segments,
and exactly which of their transactions to apply for a target.

A target is a GTID (inclusive), a time (the last transaction committed at or before it), or
the latest the archive holds. The plan is made from the catalog's manifests and the archive's
index records alone, so a target outside the recoverable window is refused, naming the window,
before anything is downloaded.

Several GTID domains (docs/backup.md, "Several GTID domains"): the archive is the primary's
binlog in order (`binlog_order`); what is applied is always a prefix of it after the backup,
every domain contiguous from the backup's own position in it. A transaction at or before the
backup's position in its own domain is the backup's and is passed over (as the server's
gtid_strict_mode would). A GTID target is the prefix through that transaction (other domains'
transactions before it in the binlog are applied, after it not); a position target (one GTID
per domain, how the latest point is pinned) the prefix through the last of them. The latest is
the end of the prefix over which every domain is contiguous: from a backup, the archive's
records in binlog order through the last one before the first break in any domain. With one
domain all of this is what it always was.

Times are the server's binlog timestamps, whole seconds: "committed at or before T" is "the
commit event's timestamp is at or before T". Applying stops before the first transaction after
the backup whose timestamp is later than T (binlog order is commit order; a timestamp is when
the committing statement started, so with concurrent writers two neighbours can be out of
order by a second: what is applied is always a prefix of the binlog, never a transaction
after one left out).

A backup stands at its manifest's `gtid` and at its `end_time` (every transaction of its
position committed before the backup ended). From a backup, the points recoverable are its own
through the end of the archive's contiguous run after it (`Window`).

A backup whose last restore drill failed (core/backup_verify.py) is no recovery point while
another will do: of the backups that reach a target, the newest whose last drill did not fail
is the base (never drilled is not failed), and the plan's `note` names the failed ones passed
over; only when every backup that reaches the target failed is the newest of them used, and the
note says so.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_index import DomainRange, SegmentRecord
from mysqlsts.core.binlog_segment import Grouper, Segment, Transaction
from mysqlsts.core.gtid import MariadbGtid, parse_mariadb
from mysqlsts.errors import MysqlstsError


class RecoveryRefused(MysqlstsError):
    """A target that cannot be recovered to exactly: outside the window, or the archive does
    not hold what it needs."""


@dataclass(frozen=True)
class BaseBackup:
    backup_id: str
    gtid: str  # the manifest's position ("" for a server with no transaction yet)
    end_time: str  # ISO-8601 UTC
    drill_failed: bool = False  # its last restore drill failed


@dataclass(frozen=True)
class Target:
    gtid: str = ""  # one MariaDB GTID (or one per domain, a position), inclusive
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
    `last` (a position: per domain, where the archive's contiguous run after the backup ends);
    by time, from `start` (the backup's end) to just before `end`, the second the run's last
    transaction committed in (a transaction after it, not archived or lost in a gap, may have
    committed in that same second, so a time in it is not exact). `end` is None when no time
    is recoverable (nothing archived after the backup)."""

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
    segments: tuple[str, ...]  # segment object names, in apply (binlog) order
    # A GTID target, or the latest's position (one GTID per domain): apply until every domain
    # it names reaches its GTID, checked as they are applied; "" for a time.
    stop_gtid: str
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
    """One GTID, or a position (one GTID per domain: the binlog prefix through the last of
    them, as the latest point is pinned), or ValueError."""
    gtids = parse_mariadb(text)  # ValueError names a malformed item
    if not gtids or len({g.domain for g in gtids}) != len(gtids):
        raise ValueError(f"a GTID target is one GTID (domain-server-seq), or one per domain, "
                         f"not {text!r}")
    return ",".join(str(g) for g in sorted(gtids))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _position(text: str) -> dict[int, MariadbGtid]:
    return {g.domain: g for g in parse_mariadb(text)}


def _seqs(text: str) -> dict[int, int]:
    return {d: g.seq for d, g in _position(text).items()}


def _domains(backups: Sequence[BaseBackup], records: Sequence[SegmentRecord]) -> set[int]:
    found = {g.domain for b in backups for g in parse_mariadb(b.gtid)}
    found |= {d.domain for r in records for d in r.domains}
    return found


def binlog_order(records: Sequence[SegmentRecord]) -> list[SegmentRecord]:
    """The records in the primary's binlog order: within a domain by sequence number (each
    segment is a stretch of the one binlog, so two sharing a domain are ordered by it); two
    sharing none by their commit times, then name. One domain: by sequence number."""
    def key(r: SegmentRecord) -> tuple[str, str, str]:
        return (r.first_commit, r.last_commit, r.segment)

    held = [r for r in records if r.domains]
    chains: dict[int, list[int]] = {}
    for n, record in enumerate(held):
        for dr in record.domains:
            chains.setdefault(dr.domain, []).append(n)
    before = [0] * len(held)
    after: list[list[int]] = [[] for _ in held]
    for domain, chain in chains.items():
        def in_domain(n: int, d: int = domain) -> tuple[int, int, str]:
            dr = next(x for x in held[n].domains if x.domain == d)
            return (dr.first_seq, dr.last_seq, held[n].segment)
        chain.sort(key=in_domain)
        for a, b in zip(chain, chain[1:], strict=False):
            after[a].append(b)
            before[b] += 1
    ready = [(key(held[n]), n) for n in range(len(held)) if before[n] == 0]
    heapq.heapify(ready)
    done = [False] * len(held)
    ordered: list[SegmentRecord] = []
    while len(ordered) < len(held):
        if not ready:  # domains disagree on the order (a broken archive): by time
            n = min((n for n in range(len(held)) if not done[n]), key=lambda n: key(held[n]))
            before[n] = 0
            heapq.heappush(ready, (key(held[n]), n))
        _, n = heapq.heappop(ready)
        if done[n]:
            continue
        done[n] = True
        ordered.append(held[n])
        for m in after[n]:
            before[m] -= 1
            if before[m] == 0 and not done[m]:
                heapq.heappush(ready, (key(held[m]), m))
    return ordered


@dataclass(frozen=True)
class _Run:
    """The archive's records after a backup, in binlog order, through the last one before
    the first break in any domain, and the position they reach (the backup's where a domain
    has nothing after it)."""

    records: tuple[SegmentRecord, ...]
    end: dict[int, MariadbGtid]


def _run_after(base: str, ordered: Sequence[SegmentRecord]) -> _Run:
    """Records holding only transactions at or before the backup's position in their domains
    are passed over; every other one must continue each of its domains exactly (whole: its
    count agrees with its range; no hole after what came before it, no overlap with any
    record before it): the first that does not ends the run."""
    held = _seqs(base)
    end = _position(base)
    seen: dict[int, int] = {}  # per domain, the newest sequence number of any record so far
    started: set[int] = set()
    run: list[SegmentRecord] = []
    for record in ordered:
        after = [dr for dr in record.domains
                 if dr.domain in started or dr.last_seq > held.get(dr.domain, 0)]
        for dr in after:
            expected = (end[dr.domain].seq if dr.domain in end else 0) + 1
            whole = dr.last_seq - dr.first_seq + 1 == dr.count
            if not (whole and seen.get(dr.domain, 0) < dr.first_seq <= expected):
                return _Run(tuple(run), end)
        for dr in record.domains:
            seen[dr.domain] = max(seen.get(dr.domain, 0), dr.last_seq)
        if after:
            run.append(record)
            for dr in after:
                end[dr.domain] = parse_mariadb(dr.last)[0]
                started.add(dr.domain)
    return _Run(tuple(run), end)


def _text(position: dict[int, MariadbGtid]) -> str:
    return ",".join(str(position[d]) for d in sorted(position))


def _windows(backups: Sequence[BaseBackup], ordered: list[SegmentRecord]
             ) -> list[tuple[BaseBackup, Window, _Run]]:
    result = []
    for backup in sorted(backups, key=lambda b: (_time(b.end_time), b.backup_id),
                         reverse=True):
        run = _run_after(backup.gtid, ordered)
        start = _time(backup.end_time)
        if not run.records:
            window = Window(backup.backup_id, backup.gtid, backup.gtid, start, None)
        else:
            window = Window(backup.backup_id, backup.gtid, _text(run.end), start,
                            _time(run.records[-1].last_commit))
        result.append((backup, window, run))
    return result


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
    windows = sorted((w for _, w, _ in _windows(backups, binlog_order(records))),
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
    if target.gtid:
        for wanted in parse_mariadb(target.gtid):
            if domains and wanted.domain not in domains:
                held = ", ".join(map(str, sorted(domains)))
                raise RecoveryRefused(f"target {target} is in domain {wanted.domain}; the "
                                      f"backups and archive hold domain"
                                      f"{'s' if len(domains) > 1 else ''} {held}")
    found = _windows(backups, binlog_order(records))
    if not found:
        raise RecoveryRefused(f"cannot recover to {target}: the store holds no backup")
    reach = [(backup, plan) for backup, window, run in found
             if (plan := _plan_from(backup, window, run, target)) is not None]
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


def _plan_from(backup: BaseBackup, window: Window, run: _Run, target: Target) -> Plan | None:
    base = _position(backup.gtid)
    if target.gtid:
        wanted = _position(target.gtid)
        for d, gtid in wanted.items():
            held = base[d].seq if d in base else 0
            if not held <= gtid.seq <= (run.end[d].seq if d in run.end else 0):
                return None
            if gtid.seq == held and (d not in base or base[d] != gtid):
                return None
        if all(base.get(d) == g for d, g in wanted.items()) and set(base) - set(wanted):
            # The backup's own position in these domains, yet it holds other domains: it may
            # hold transactions after the target in the binlog; an older backup may not.
            return None
        chosen: list[str] = []
        pending = {d: g.seq for d, g in wanted.items() if g.seq > (base[d].seq if d in base
                                                                    else 0)}
        for record in run.records:
            if not pending:
                break
            chosen.append(record.segment)
            for dr in record.domains:
                if dr.domain in pending and dr.last_seq >= pending[dr.domain]:
                    del pending[dr.domain]
        return Plan(backup.backup_id, backup.gtid, tuple(chosen), _text(wanted), None)
    if target.time is not None:
        when = target.time.astimezone(UTC)
        if window.end is None or not window.start <= when < window.end:
            return None
        chosen = []
        for record in run.records:
            chosen.append(record.segment)
            if _time(record.last_commit) > when:
                break  # the stop is inside this one
        return Plan(backup.backup_id, backup.gtid, tuple(chosen), "", when)
    return Plan(backup.backup_id, backup.gtid, tuple(r.segment for r in run.records),
                _text(run.end) if run.records else backup.gtid, None)


@dataclass(frozen=True)
class Latest:
    """Where a recovery with no target stops: the end of the archive's contiguous run after
    the chosen backup (its own position when nothing archived follows it), and the first
    archived transaction past that end, per domain, when the archive holds more than it can
    reach (a gap: those are recoverable only from a base backup taken after it)."""

    backup_id: str
    gtid: str  # the latest recoverable position ("" for a server with no transaction)
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
    stop = _seqs(plan.stop_gtid or plan.base_gtid)
    chosen = [by_name[name] for name in plan.segments]
    beyond: dict[int, DomainRange] = {}
    for record in records:
        for dr in record.domains:
            if dr.last_seq > stop.get(dr.domain, 0) and (
                    dr.domain not in beyond or dr.first_seq < beyond[dr.domain].first_seq):
                beyond[dr.domain] = dr
    past = ",".join(beyond[d].first for d in sorted(beyond))
    if not chosen:
        return Latest(plan.backup_id, plan.base_gtid, None, 0, past)
    return Latest(plan.backup_id, plan.stop_gtid, _time(chosen[-1].last_commit),
                  applied_since(plan.base_gtid, plan.stop_gtid), past)


def applied_since(base: str, reached: str) -> int:
    """How many transactions lie between two positions (each domain contiguous)."""
    held = _seqs(base)
    return sum(max(0, seq - held.get(d, 0)) for d, seq in _seqs(reached).items())


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
        if isinstance(done, Transaction):  # a Grouper without `large` holds every one whole
            transactions.append(done)
        pos += size
    if grouper.in_transaction:
        raise ev.EventError(f"{name} ends inside a transaction")
    if grouper.description is None:
        raise ev.EventError(f"{name} has no FORMAT_DESCRIPTION event")
    return Segment(grouper.description, tuple(transactions))


def file_description(content: bytes, name: str = "segment") -> ev.Event:
    """The FORMAT_DESCRIPTION event a binary log file's content opens with (its start is
    enough: a chunked segment's chunk 0), or EventError naming it."""
    start = len(ev.MAGIC)
    if not content.startswith(ev.MAGIC) or len(content) < start + ev.HEADER:
        raise ev.EventError(f"{name} is not a binary log file")
    size = int.from_bytes(content[start + 9:start + 13], "little")
    if size < ev.HEADER or start + size > len(content):
        raise ev.EventError(f"{name} holds a torn event at byte {start}")
    event = ev.parse_event(content[start:start + size], False)
    if event.type != ev.FORMAT_DESCRIPTION:
        raise ev.EventError(f"{name} does not open with a FORMAT_DESCRIPTION event")
    return event


def relay_log(segment: Segment, number: int) -> bytes:
    """The segment as a relay log file for the server's SQL thread (`relay_log_header`, then
    its transactions)."""
    return (relay_log_header(segment.description, number)
            + b"".join(t.data for t in segment.transactions))


def relay_log_header(description: ev.Event, number: int) -> bytes:
    """How relay log file `number` opens: its FORMAT_DESCRIPTION and an artificial ROTATE
    naming a master binlog (`archive-bin.<number>`: parallel apply compares master log names,
    and a relay log without one crashes MariaDB 10.11's parallel workers); its transactions
    follow."""
    rotate = ev.make_event(ev.ROTATE, struct.pack("<Q", 4) + f"archive-bin.{number:06d}".encode(),
                           server_id=description.server_id, flags=ev.ARTIFICIAL,
                           checksum=description.checksum)
    return ev.file_header(description) + rotate


class Cutter:
    """Exactly the transactions to apply, chosen segment by segment as the segments are read
    (so only one is held at a time): the binlog's after the backup's position (a transaction
    at or before it in its own domain is the backup's, passed over, as the server's
    gtid_strict_mode would), through the target. RecoveryRefused when the segments do not hold
    them contiguously in each domain (or a target GTID is not the transaction at its sequence
    number), as soon as the segment that shows it is fed, and from `finish` when they end
    before the target."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.done = False  # the target is reached: nothing more is chosen
        self.chosen = 0  # transactions chosen so far
        self._base = _seqs(plan.base_gtid)
        self._reached = dict(self._base)
        self._position = _position(plan.base_gtid)
        self._stop = _position(plan.stop_gtid)

    def feed(self, segment: Segment) -> Segment:
        """The segment's transactions to apply, under its own FORMAT_DESCRIPTION (none after
        the target)."""
        chosen = tuple(t for t in segment.transactions if self._take(t))
        self.chosen += len(chosen)
        return Segment(segment.description, chosen)

    def take(self, record: SegmentRecord) -> bool:
        """Whether a chunked segment's one transaction is applied, decided from its record
        (its GTID and commit time) before any of its chunks is read."""
        taken = self._take(large_transaction(record))
        self.chosen += taken
        return taken

    def _take(self, transaction: Transaction) -> bool:
        if self.done:
            return False
        stop, reached, gtid = self._stop, self._reached, transaction.gtid
        if stop and all(reached.get(d, 0) >= g.seq for d, g in stop.items()):
            self.done = True
            return False
        if gtid.seq <= self._base.get(gtid.domain, 0):
            return False
        held = reached.get(gtid.domain, 0)
        if (gtid.domain in stop and gtid.seq > stop[gtid.domain].seq) or (
                self.plan.stop_time is not None and _commit(transaction) > self.plan.stop_time):
            self.done = True
            return False
        if gtid.seq != held + 1:
            raise RecoveryRefused(f"the archive's segments jump from sequence number "
                                  f"{held} to {gtid} in domain {gtid.domain}")
        if gtid.domain in stop and gtid.seq == stop[gtid.domain].seq and (
                gtid != stop[gtid.domain]):
            raise RecoveryRefused(f"target GTID {stop[gtid.domain]} is not in the "
                                  f"archive: sequence number {gtid.seq} is {gtid}")
        reached[gtid.domain] = gtid.seq
        self._position[gtid.domain] = gtid
        return True

    def finish(self) -> str:
        """The server's GTID position once the chosen transactions are applied (per domain
        the last one chosen in it, else the backup's); RecoveryRefused when the segments
        ended before the target."""
        if any(self._reached.get(d, 0) < g.seq for d, g in self._stop.items()):
            raise RecoveryRefused(f"the archive's segments end before {self.plan.stop_gtid}")
        return _text(self._position) if self.chosen else self.plan.base_gtid


def cut(plan: Plan, segments: Sequence[Segment]) -> tuple[Transaction, ...]:
    """`Cutter` over the whole list: exactly the transactions to apply, or RecoveryRefused."""
    cutter = Cutter(plan)
    chosen = tuple(t for segment in segments for t in cutter.feed(segment).transactions)
    cutter.finish()
    return chosen


def large_transaction(record: SegmentRecord) -> Transaction:
    """A chunked segment's one transaction as its record names it (its events left out: they
    are read chunk by chunk)."""
    if not record.chunks or record.transactions != 1 or len(record.domains) != 1:
        raise ValueError(f"{record.segment} is not a chunked segment's record")
    when = int(datetime.fromisoformat(record.last_commit).timestamp())
    return Transaction(parse_mariadb(record.domains[0].first)[0], b"", when)


def _commit(transaction: Transaction) -> datetime:
    return datetime.fromtimestamp(transaction.commit_time, UTC)


def position_after(plan: Plan, applied: Sequence[Transaction]) -> str:
    """The server's GTID position once `applied` is: per domain the last one applied in it,
    else the backup's."""
    if not applied:
        return plan.base_gtid
    position = _position(plan.base_gtid)
    for transaction in applied:
        position[transaction.gtid.domain] = transaction.gtid
    return _text(position)
