"""Point-in-time recovery over several GTID domains (pure): the archive is the primary's binlog
in order, every recovery applies a prefix of it after the backup, each domain contiguous from
the backup's own position in it, through a GTID (inclusive), before a time, or to the end of
the prefix over which every domain is contiguous; checked against a brute force over random
histories whose transactions each take a random domain."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core.binlog_segment import Transaction
from mysqlsts.core.gtid import MariadbGtid
from mysqlsts.core.pitr import (
    BaseBackup,
    RecoveryRefused,
    Target,
    binlog_order,
    cut,
    latest_of,
    plan_recovery,
    position_after,
    recoverable_span,
)
from tests.unit.test_binlog_core import txn
from tests.unit.test_pitr_plan import EPOCH, SERVER, at, make_segment, record_of


def at_position(held: list[Transaction]) -> str:
    """The position a server holding `held` (a binlog prefix, in order) is at."""
    newest: dict[int, MariadbGtid] = {}
    for t in held:
        newest[t.gtid.domain] = t.gtid
    return ",".join(str(newest[d]) for d in sorted(newest))


class Binlog:
    """Transactions in binlog order, each in its domain (sequence numbers counted per domain),
    cut into segments, some of them lost."""

    def __init__(self, domains: list[int], times: list[int], cuts: list[int],
                 lost: set[int]) -> None:
        counters: dict[int, int] = {}
        self.transactions = []
        for domain, ts in zip(domains, times, strict=True):
            counters[domain] = counters.get(domain, 0) + 1
            seq = counters[domain]
            self.transactions.append(Transaction(MariadbGtid(domain, SERVER, seq),
                                                 b"".join(txn(seq, domain, ts=ts)), ts))
        bounds = sorted({c for c in cuts if 0 < c < len(domains)} | {0, len(domains)})
        self.spans = list(zip(bounds, bounds[1:], strict=False))  # each segment's [a, b)
        self.segments = [make_segment(self.transactions[a:b]) for a, b in self.spans]
        self.kept = [n for n in range(len(self.segments)) if n not in lost]
        self.records = [record_of(self.segments[n]) for n in self.kept]
        self.by_name = {r.segment: self.segments[n] for r, n in zip(self.records, self.kept,
                                                                    strict=True)}

    def backup(self, backup_id: str, k: int, end: int) -> BaseBackup:
        """A backup of the primary after its first k transactions."""
        return BaseBackup(backup_id, at_position(self.transactions[:k]), at(end).isoformat())

    def apply(self, target: Target, backups: list[BaseBackup]) -> tuple[str, set[MariadbGtid],
                                                                        str]:
        """What a restore holds: the backup's id, every GTID, and the server's position."""
        plan = plan_recovery(backups, list(reversed(self.records)), target)
        applied = cut(plan, [self.by_name[name] for name in plan.segments])
        held = set(self.base_of(plan.base_gtid)) | {t.gtid for t in applied}
        return plan.backup_id, held, position_after(plan, applied)

    def base_of(self, position: str) -> list[MariadbGtid]:
        k = next(k for k in range(len(self.transactions) + 1)
                 if at_position(self.transactions[:k]) == position)
        return [t.gtid for t in self.transactions[:k]]


def run_after(binlog: Binlog, k: int) -> list[Transaction]:
    """Brute force: the transactions after a backup at k of the longest run of kept segments
    (binlog order) whose transactions after the backup are, per domain, exactly the next
    sequence numbers from the backup's."""
    base = {}
    for t in binlog.transactions[:k]:
        base[t.gtid.domain] = t.gtid.seq
    best: list[Transaction] = []
    for length in range(len(binlog.kept) + 1):
        after = [t for n in binlog.kept[:length]
                 for t in binlog.segments[n].transactions
                 if t.gtid.seq > base.get(t.gtid.domain, 0)]
        for domain in {t.gtid.domain for t in after}:
            seqs = [t.gtid.seq for t in after if t.gtid.domain == domain]
            if seqs != list(range(base.get(domain, 0) + 1, base.get(domain, 0) + 1 + len(seqs))):
                return best
        best = after
    return best


def oracle(binlog: Binlog, backups: list[tuple[BaseBackup, int]],
           target: Target) -> tuple[str, list[Transaction]] | None:
    """The newest backup the target is reachable from, and what the restore holds in binlog
    order; None when refused."""
    for b, k in sorted(backups, key=lambda bk: (datetime.fromisoformat(bk[0].end_time),
                                                 bk[0].backup_id), reverse=True):
        prefix, run = binlog.transactions[:k], run_after(binlog, k)
        if target.gtid:
            wanted = target.gtid
            if prefix and str(prefix[-1].gtid) == wanted and len(
                    {t.gtid.domain for t in prefix}) == 1:
                return b.backup_id, prefix
            through = [str(t.gtid) for t in run]
            if wanted in through:
                return b.backup_id, prefix + run[:through.index(wanted) + 1]
        elif target.time is not None:
            start = datetime.fromisoformat(b.end_time)
            if run and start <= target.time < at(run[-1].commit_time):
                taken = []
                for t in run:
                    if at(t.commit_time) > target.time:
                        break
                    taken.append(t)
                return b.backup_id, prefix + taken
        else:
            return b.backup_id, prefix + run
    return None


@st.composite
def binlogs(draw: st.DrawFn) -> tuple[Binlog, list[tuple[BaseBackup, int]], Target]:
    n = draw(st.integers(1, 30))
    domains = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    cuts = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=8))
    bounds = {c for c in cuts if 0 < c < n}
    # Segments sharing no domain are ordered by commit time (the index holds nothing else):
    # a segment's first transaction commits in a later second than the one before it.
    steps = [max(draw(st.integers(0, 2)), 1 if i in bounds else 0) for i in range(n)]
    times = [EPOCH + sum(steps[:i + 1]) for i in range(n)]
    lost = set(draw(st.lists(st.integers(0, len(bounds)), max_size=2)))
    binlog = Binlog(domains, times, cuts, lost)
    backups = []
    for j, k in enumerate(sorted(draw(st.lists(st.integers(0, n), max_size=4, unique=True)))):
        end = (times[k - 1] if k else EPOCH - 5) + draw(st.integers(0, 1))
        if k < n:
            end = min(end, times[k])
        backups.append((binlog.backup(f"b{j}", k, end), k))
    kind = draw(st.sampled_from(["gtid", "time", "latest"]))
    if kind == "gtid":
        target = Target(gtid=str(binlog.transactions[draw(st.integers(0, n - 1))].gtid))
    elif kind == "time":
        target = Target(time=at(draw(st.integers(EPOCH - 6, times[-1] + 2))))
    else:
        target = Target()
    return binlog, backups, target


@settings(max_examples=500, deadline=None)
@given(binlogs())
def test_several_domains_never_one_transaction_more_and_none_missing(
        case: tuple[Binlog, list[tuple[BaseBackup, int]], Target]) -> None:
    binlog, backups, target = case
    expected = oracle(binlog, backups, target)
    if expected is None:  # refused by the plan: before anything is downloaded
        with pytest.raises(RecoveryRefused):
            plan_recovery([b for b, _ in backups], binlog.records, target)
        return
    chosen, held, position = binlog.apply(target, [b for b, _ in backups])
    assert (chosen, held) == (expected[0], {t.gtid for t in expected[1]})
    assert position == at_position(expected[1])
    if not target.gtid and target.time is None:  # the latest: named as the position held
        plan = plan_recovery([b for b, _ in backups], binlog.records, target)
        assert latest_of(plan, binlog.records).gtid == position


def two_domains() -> Binlog:
    # 0-1 0-2 | 1-1 0-3 | 1-2 1-3 | 0-4 1-4: four segments, in binlog order.
    return Binlog([0, 0, 1, 0, 1, 1, 0, 1], [EPOCH + n for n in range(8)], [2, 4, 6], set())


def names(held: set[MariadbGtid]) -> list[str]:
    return sorted(str(g) for g in held)


def test_a_gtid_target_takes_the_other_domains_transactions_before_it_only() -> None:
    binlog = two_domains()
    start = [binlog.backup("b", 1, EPOCH)]
    _, held, position = binlog.apply(Target(gtid=f"1-{SERVER}-2"), start)
    assert names(held) == [f"0-{SERVER}-{n}" for n in (1, 2, 3)] + [
        f"1-{SERVER}-{n}" for n in (1, 2)]
    assert position == f"0-{SERVER}-3,1-{SERVER}-2"
    _, held, position = binlog.apply(Target(gtid=f"0-{SERVER}-3"), start)
    assert position == f"0-{SERVER}-3,1-{SERVER}-1"


def test_the_order_is_the_binlogs_whatever_the_names_say() -> None:
    binlog = two_domains()
    ordered = [r.segment for r in binlog_order(list(reversed(binlog.records)))]
    assert ordered == [r.segment for r in binlog.records]
    # Two writers a second apart: a segment sharing a domain with the one before it follows
    # it by sequence number, whatever its commit times say.
    skewed = Binlog([0, 1, 0, 1], [EPOCH + 5, EPOCH + 5, EPOCH + 4, EPOCH + 6], [2, 3],
                    set())
    ordered = [r.segment for r in binlog_order(list(reversed(skewed.records)))]
    assert ordered == [r.segment for r in skewed.records]


def test_a_break_in_one_domain_ends_the_latest_for_all() -> None:
    # 0-1 | 1-1 | 0-2 1-2 | 0-3: the second lost, so domain 1 jumps to 1-2 in the third.
    binlog = Binlog([0, 1, 0, 1, 0], [EPOCH + n for n in range(5)], [1, 2, 4], {1})
    backups = [binlog.backup("b", 0, EPOCH - 5)]
    _, held, position = binlog.apply(Target(), backups)
    assert names(held) == [f"0-{SERVER}-1"]
    latest = latest_of(plan_recovery(backups, binlog.records, Target()), binlog.records)
    assert latest.beyond == f"0-{SERVER}-2,1-{SERVER}-2"
    with pytest.raises(RecoveryRefused, match="outside the recoverable window"):
        plan_recovery(backups, binlog.records, Target(gtid=f"0-{SERVER}-3"))
    # A backup after the lost segment reaches the end in both domains.
    later = [*backups, binlog.backup("c", 2, EPOCH + 1)]
    _, held, position = binlog.apply(Target(), later)
    assert position == f"0-{SERVER}-3,1-{SERVER}-2"


def test_a_backup_ahead_in_a_domain_keeps_its_own_transactions() -> None:
    # A replica's backup need not be a binlog prefix: it holds 1-1 but not 0-3 before it.
    binlog = two_domains()
    backups = [BaseBackup("r", f"0-{SERVER}-2,1-{SERVER}-2", at(EPOCH + 4).isoformat())]
    plan = plan_recovery(backups, binlog.records, Target())
    applied = cut(plan, [binlog.by_name[n] for n in plan.segments])
    assert [str(t.gtid) for t in applied] == [f"0-{SERVER}-3", f"1-{SERVER}-3",
                                              f"0-{SERVER}-4", f"1-{SERVER}-4"]


def test_a_target_in_a_domain_never_seen_is_refused_naming_it() -> None:
    binlog = two_domains()
    with pytest.raises(RecoveryRefused, match="in domain 7; the backups and archive hold "
                       "domains 0, 1"):
        plan_recovery([binlog.backup("b", 1, EPOCH)], binlog.records,
                      Target(gtid=f"7-{SERVER}-1"))


def test_a_position_target_stops_when_every_domain_reaches_it() -> None:
    binlog = two_domains()
    start = [binlog.backup("b", 1, EPOCH)]
    _, held, position = binlog.apply(Target(gtid=f"0-{SERVER}-3,1-{SERVER}-1"), start)
    assert position == f"0-{SERVER}-3,1-{SERVER}-1" and len(held) == 4


def test_the_span_covers_several_domains() -> None:
    binlog = two_domains()
    span = recoverable_span([binlog.backup("b", 1, EPOCH)], binlog.records)
    assert (span.start, span.end, span.continuous) == (at(EPOCH), at(EPOCH + 7), True)
    assert span.end is not None and span.end.tzinfo == UTC
