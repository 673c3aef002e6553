"""Point-in-time recovery's pure planning and cut: the base backup and segments chosen from
manifests and index records, exactly the transactions through the target applied (never one
more, none missing), and a target outside the window refused naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_index import SegmentRecord, make_record, segment_name
from mysqlsts.core.binlog_segment import Segment, Transaction
from mysqlsts.core.pitr import (
    BaseBackup,
    RecoveryRefused,
    Span,
    Target,
    cut,
    latest_of,
    parse_target_gtid,
    parse_time,
    plan_recovery,
    position_after,
    recoverable_span,
    relay_log,
    transactions_of,
)
from tests.unit.test_binlog_core import fde, txn

EPOCH = 1_800_000_000
SERVER = 100


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def transaction(seq: int, ts: int) -> Transaction:
    from mysqlsts.core.gtid import MariadbGtid
    return Transaction(MariadbGtid(0, SERVER, seq), b"".join(txn(seq, ts=ts)), ts)


def make_segment(transactions: list[Transaction]) -> Segment:
    return Segment(ev.parse_event(fde(), checksum=True), tuple(transactions))


def record_of(segment: Segment) -> SegmentRecord:
    content = segment.content()
    name = segment_name(segment.transactions[0].gtid, content)
    return make_record(segment, name, content, len(content), "")


def _seq(gtid: str) -> int:
    return int(gtid.rsplit("-", 1)[1]) if gtid else 0


def backup(backup_id: str, seq: int, end: int) -> BaseBackup:
    return BaseBackup(backup_id, f"0-{SERVER}-{seq}" if seq else "", at(end).isoformat())


class History:
    """Transactions 1..n at `times`, cut into segments, some of them lost."""

    def __init__(self, times: list[int], cuts: list[int], lost: set[int]) -> None:
        self.times = times
        self.transactions = [transaction(n + 1, ts) for n, ts in enumerate(times)]
        bounds = sorted({c for c in cuts if 0 < c < len(times)} | {0, len(times)})
        self.segments = [make_segment(self.transactions[a:b])
                         for a, b in zip(bounds, bounds[1:], strict=False)]
        self.kept = [s for n, s in enumerate(self.segments) if n not in lost]
        self.records = [record_of(s) for s in self.kept]
        self.by_name = {r.segment: s for r, s in zip(self.records, self.kept, strict=True)}

    def commit(self, seq: int) -> int:
        return self.times[seq - 1]

    def archived(self) -> set[int]:
        return {t.gtid.seq for s in self.kept for t in s.transactions}

    def apply(self, target: Target, backups: list[BaseBackup]) -> tuple[str, set[int]]:
        """What a restore would hold: the chosen backup's id and every sequence number."""
        plan = plan_recovery(backups, self.records, target)
        applied = cut(plan, [self.by_name[name] for name in plan.segments])
        held = set(range(1, _seq(plan.base_gtid) + 1)) | {t.gtid.seq for t in applied}
        return plan.backup_id, held


def test_a_gtid_target_applies_exactly_through_it_from_the_newest_backup() -> None:
    history = History([EPOCH + n for n in range(20)], [5, 10, 15], set())
    backups = [backup("b1", 3, EPOCH + 3), backup("b2", 8, EPOCH + 8)]
    chosen, held = history.apply(Target(gtid=f"0-{SERVER}-12"), backups)
    assert chosen == "b2" and held == set(range(1, 13))
    # Before the newer backup: the older one.
    chosen, held = history.apply(Target(gtid=f"0-{SERVER}-5"), backups)
    assert chosen == "b1" and held == set(range(1, 6))
    # The backup's own position: nothing applied.
    plan = plan_recovery(backups, history.records, Target(gtid=f"0-{SERVER}-8"))
    assert plan.backup_id == "b2" and cut(plan, [history.by_name[n] for n in plan.segments]) == ()
    assert position_after(plan, ()) == f"0-{SERVER}-8"


def test_a_time_target_stops_before_the_first_later_commit() -> None:
    times = [EPOCH, EPOCH, EPOCH + 1, EPOCH + 1, EPOCH + 3, EPOCH + 3, EPOCH + 7]
    history = History(times, [2, 5], set())
    backups = [backup("b", 1, EPOCH)]
    _, held = history.apply(Target(time=at(EPOCH + 1)), backups)
    assert held == {1, 2, 3, 4}
    _, held = history.apply(Target(time=at(EPOCH + 2) + timedelta(milliseconds=999)), backups)
    assert held == {1, 2, 3, 4}
    _, held = history.apply(Target(time=at(EPOCH + 6)), backups)
    assert held == set(range(1, 7))
    # The second of the archive's last commit is not exact: a transaction after it, not
    # archived yet, may have committed in that same second.
    with pytest.raises(RecoveryRefused, match="to before 2027-01-15T08:00:07Z"):
        plan_recovery(backups, history.records, Target(time=at(EPOCH + 7)))


def test_the_latest_is_the_end_of_the_contiguous_archive() -> None:
    history = History([EPOCH + n for n in range(12)], [4, 8], {2})  # 9..12 lost
    chosen, held = history.apply(Target(), [backup("b", 2, EPOCH + 2)])
    assert held == set(range(1, 9))


def test_the_latest_from_the_newest_backup_names_where_the_run_ends() -> None:
    history = History([EPOCH + n for n in range(20)], [5, 10, 15], set())
    backups = [backup("b1", 3, EPOCH + 3), backup("b2", 8, EPOCH + 8)]
    plan = plan_recovery(backups, history.records, Target())
    latest = latest_of(plan, history.records)
    assert (plan.backup_id, plan.stop_gtid) == ("b2", f"0-{SERVER}-20")
    assert (latest.gtid, latest.commit, latest.transactions, latest.beyond) == (
        f"0-{SERVER}-20", at(EPOCH + 19), 12, "")
    assert str(latest) == (f"0-{SERVER}-20, committed 2027-01-15T08:00:19Z: backup b2 and 12 "
                           "archived transactions, where the archive's contiguous run ends")


def test_a_gap_after_the_newest_backup_ends_the_latest_there_and_names_it() -> None:
    # Segments 1..5, 6..10, 11..15, 16..20; 11..15 lost: from b (at 8) the run ends at 10.
    history = History([EPOCH + n for n in range(20)], [5, 10, 15], {2})
    backups = [backup("a", 2, EPOCH + 2), backup("b", 8, EPOCH + 8)]
    chosen, held = history.apply(Target(), backups)
    assert chosen == "b" and held == set(range(1, 11))
    latest = latest_of(plan_recovery(backups, history.records, Target()), history.records)
    assert (latest.gtid, latest.transactions, latest.beyond) == (
        f"0-{SERVER}-10", 2, f"0-{SERVER}-16")
    assert f"the archive resumes at 0-{SERVER}-16, which no backup reaches" in str(latest)
    # A backup after the gap reaches the archive's end.
    chosen, held = history.apply(Target(), [*backups, backup("c", 15, EPOCH + 15)])
    assert chosen == "c" and held == set(range(1, 21))


def test_with_nothing_archived_after_it_the_latest_is_the_backup_alone() -> None:
    history = History([EPOCH + n for n in range(10)], [5], {1})  # 6..10 lost
    backups = [backup("a", 2, EPOCH + 2), backup("b", 5, EPOCH + 5)]
    plan = plan_recovery(backups, history.records, Target())
    assert (plan.backup_id, plan.segments) == ("b", ())
    latest = latest_of(plan, history.records)
    assert (latest.gtid, latest.commit, latest.beyond) == (f"0-{SERVER}-5", None, "")
    assert str(latest) == (f"0-{SERVER}-5, backup b's own position (the archive holds nothing "
                           "after it)")
    # No archive at all: the same.
    assert latest_of(plan_recovery(backups, [], Target()), []).gtid == f"0-{SERVER}-5"


def test_a_target_outside_the_window_is_refused_naming_it() -> None:
    history = History([EPOCH + n for n in range(12)], [4, 8], set())
    backups = [backup("20261204T100000Z", 4, EPOCH + 4)]
    with pytest.raises(RecoveryRefused) as refused:
        plan_recovery(backups, history.records, Target(gtid=f"0-{SERVER}-2"))
    assert "outside the recoverable window" in str(refused.value)
    assert f"0-{SERVER}-4 .. 0-{SERVER}-12" in str(refused.value)
    with pytest.raises(RecoveryRefused, match="outside the recoverable window"):
        plan_recovery(backups, history.records, Target(time=at(EPOCH + 13)))
    with pytest.raises(RecoveryRefused, match="outside the recoverable window"):
        plan_recovery(backups, history.records, Target(time=at(EPOCH + 3)))
    with pytest.raises(RecoveryRefused, match="no backup"):
        plan_recovery([], history.records, Target())


def test_a_lost_segment_ends_the_window_and_a_target_past_it_is_refused() -> None:
    history = History([EPOCH + n for n in range(12)], [4, 8], {1})  # 5..8 lost
    with pytest.raises(RecoveryRefused) as refused:
        plan_recovery([backup("b", 2, EPOCH + 2)], history.records,
                      Target(gtid=f"0-{SERVER}-10"))
    assert f"0-{SERVER}-2 .. 0-{SERVER}-4" in str(refused.value)
    # A backup after the gap reaches it.
    chosen, held = history.apply(Target(gtid=f"0-{SERVER}-10"),
                                 [backup("b", 2, EPOCH + 2), backup("c", 8, EPOCH + 8)])
    assert chosen == "c" and held == set(range(1, 11))


def test_another_server_id_at_the_targets_sequence_number_is_refused() -> None:
    history = History([EPOCH + n for n in range(6)], [3], set())
    plan = plan_recovery([backup("b", 1, EPOCH)], history.records, Target(gtid="0-7-4"))
    with pytest.raises(RecoveryRefused, match="0-7-4 is not in the archive"):
        cut(plan, [history.by_name[n] for n in plan.segments])


def test_segments_round_trip_through_their_file_and_a_torn_file_is_refused() -> None:
    segment = make_segment([transaction(1, EPOCH), transaction(2, EPOCH + 1)])
    back = transactions_of(segment.content())
    assert back.transactions == segment.transactions
    with pytest.raises(ev.EventError, match="torn|inside"):
        transactions_of(segment.content()[:-10])
    with pytest.raises(ev.EventError, match="not a binary log"):
        transactions_of(b"garbage")


def test_a_relay_log_holds_the_transactions_after_a_rotate_naming_a_master_log() -> None:
    segment = make_segment([transaction(1, EPOCH), transaction(2, EPOCH + 1)])
    data = relay_log(segment, 3)
    assert transactions_of(data).transactions == segment.transactions
    rotate_at = len(ev.MAGIC) + len(segment.description.data)
    size = int.from_bytes(data[rotate_at + 9:rotate_at + 13], "little")
    rotate = ev.parse_event(data[rotate_at:rotate_at + size], checksum=True)
    assert rotate.type == ev.ROTATE and rotate.body.endswith(b"archive-bin.000003")


def test_targets_parse_or_say_why() -> None:
    assert parse_target_gtid(" 0-1-5 ") == "0-1-5"
    assert parse_target_gtid("1-1-2, 0-1-5") == "0-1-5,1-1-2"  # a position: one per domain
    with pytest.raises(ValueError, match="one GTID"):
        parse_target_gtid("0-1-5,0-1-2")
    assert parse_time("2026-12-04T10:00:00Z") == datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert parse_time("2026-12-04T12:00:00+02:00") == datetime(2026, 12, 4, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="names no zone"):
        parse_time("2026-12-04T10:00:00")
    with pytest.raises(ValueError, match="not an ISO-8601"):
        parse_time("yesterday")


# -- exactness over random histories -------------------------------------------------------

@st.composite
def histories(draw: st.DrawFn) -> tuple[History, list[BaseBackup], Target]:
    n = draw(st.integers(1, 30))
    steps = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    times = [EPOCH + sum(steps[:i + 1]) for i in range(n)]
    cuts = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=8))
    segment_count = len({c for c in cuts if 0 < c < n}) + 1
    lost = set(draw(st.lists(st.integers(0, segment_count - 1), max_size=2)))
    history = History(times, cuts, lost)
    positions = draw(st.lists(st.integers(0, n), min_size=0, max_size=4, unique=True))
    backups = []
    for k, seq in enumerate(sorted(positions)):
        end = (times[seq - 1] if seq else EPOCH - 5) + draw(st.integers(0, 1))
        if seq < n:
            end = min(end, times[seq])  # the backup ended before the next commit's second
        backups.append(backup(f"b{k}", seq, end))
    kind = draw(st.sampled_from(["gtid", "time", "latest"]))
    if kind == "gtid":
        target = Target(gtid=f"0-{SERVER}-{draw(st.integers(1, n))}")
    elif kind == "time":
        target = Target(time=at(draw(st.integers(EPOCH - 6, times[-1] + 2))))
    else:
        target = Target()
    return history, backups, target


def _oracle(history: History, backups: list[BaseBackup],
            target: Target) -> tuple[set[str], set[int] | None]:
    """Brute force: the backups the target is recoverable from, and what the restore holds."""
    archived = history.archived()
    ok, want = [], None
    for b in backups:
        base = int(b.gtid.rsplit("-", 1)[1]) if b.gtid else 0
        end = base
        while end + 1 in archived:
            end += 1
        start_time = datetime.fromisoformat(b.end_time)
        # By time: up to, not into, the second of the last archived commit (a transaction
        # after it may share that second).
        end_time = at(history.commit(end)) if end > base else None
        if target.gtid:
            seq = int(target.gtid.rsplit("-", 1)[1])
            if base <= seq <= end:
                ok.append((b, set(range(1, seq + 1))))
        elif target.time is not None:
            if end_time is not None and start_time <= target.time < end_time:
                ok.append((b, {s for s in range(1, len(history.times) + 1)
                               if at(history.commit(s)) <= target.time}))
        else:
            ok.append((b, set(range(1, end + 1))))
    if not ok:
        return set(), None
    if not target.gtid and target.time is None:
        want = max(len(h) for _, h in ok)
        return {b.backup_id for b, h in ok if len(h) == want}, {s for s in range(1, want + 1)}
    newest = max(datetime.fromisoformat(b.end_time) for b, _ in ok)
    return ({b.backup_id for b, _ in ok if datetime.fromisoformat(b.end_time) == newest},
            ok[0][1])


@settings(max_examples=400, deadline=None)
@given(histories())
def test_never_one_transaction_more_and_none_missing(
        case: tuple[History, list[BaseBackup], Target]) -> None:
    history, backups, target = case
    allowed, expected = _oracle(history, backups, target)
    if expected is None:  # refused by the plan: before anything is downloaded
        with pytest.raises(RecoveryRefused):
            plan_recovery(backups, history.records, target)
        return
    chosen, held = history.apply(target, backups)
    assert held == expected
    assert chosen in allowed
    if not target.gtid and target.time is None:  # the latest: named as what is held
        latest = latest_of(plan_recovery(backups, history.records, target), history.records)
        assert latest.gtid == (f"0-{SERVER}-{max(held)}" if held else "")
        archived_after = {s for s in history.archived() if s > max(held, default=0)}
        assert latest.beyond == (f"0-{SERVER}-{min(archived_after)}" if archived_after else "")


def test_the_listed_span_ends_at_the_last_archived_commit_and_names_holes() -> None:
    history = History([EPOCH + n for n in range(20)], [5, 10, 15], set())
    span = recoverable_span([backup("b1", 3, EPOCH + 3)], history.records)
    assert (span.start, span.end, span.continuous) == (at(EPOCH + 3), at(EPOCH + 19), True)
    # A lost segment: the archive's run from b1 ends before it; b2 after the hole starts again.
    lost = History([EPOCH + n for n in range(20)], [5, 10, 15], {1})
    span = recoverable_span([backup("b1", 3, EPOCH + 3), backup("b2", 12, EPOCH + 12)],
                            lost.records)
    assert (span.start, span.end, span.continuous) == (at(EPOCH + 3), at(EPOCH + 19), False)
    # No archive: the backups' own points, not continuous.
    span = recoverable_span([backup("b1", 3, EPOCH + 3)], [])
    assert (span.start, span.end, span.continuous) == (at(EPOCH + 3), at(EPOCH + 3), False)
    assert recoverable_span([], history.records) == Span(None, None, False)
