"""Retention over the binlog archive: over random histories of backups, segments (some lost:
gaps) and purges at random times, every point of the window recoverable before the purge is
recoverable after it, to the same transactions (core/pitr.py's plan is the oracle); and which
orphans go."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core.backup_layout import BINLOG_SEGMENTS
from mysqlsts.core.backup_retention import Retained, plan_retention
from mysqlsts.core.binlog_index import SegmentRecord, segment_start
from mysqlsts.core.binlog_segment import Segment
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.core.pitr import BaseBackup, Plan, RecoveryRefused, Target, cut, plan_recovery
from mysqlsts.core.segment_retention import base_cutoff, plan_segments
from tests.unit.test_pitr_plan import EPOCH, SERVER, History, at

HOUR = timedelta(hours=1)


def held(backups: list[BaseBackup], records: list[SegmentRecord],
         by_name: dict[str, Segment], target: Target) -> frozenset[int] | None:
    """The sequence numbers a recovery to `target` holds; None when it is refused."""
    try:
        plan = plan_recovery(backups, records, target)
        applied = cut(plan, [by_name[name] for name in plan.segments])
    except RecoveryRefused:
        return None
    return frozenset(range(1, _base_seq(plan) + 1)) | {t.gtid.seq for t in applied}


def _base_seq(plan: Plan) -> int:
    return max((g.seq for g in parse_mariadb(plan.base_gtid)), default=0)


@st.composite
def purges(draw: st.DrawFn) -> tuple[History, list[BaseBackup], datetime, timedelta, int]:
    n = draw(st.integers(1, 40))
    steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    times, ts = [], EPOCH
    for step in steps:
        ts += step
        times.append(ts)
    cuts = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=10))
    segments = len({c for c in cuts if 0 < c < n}) + 1
    lost = set(draw(st.lists(st.integers(0, segments - 1), max_size=3)))
    history = History(times, cuts, lost)
    # Backups at increasing positions, each ending after its position's last commit (half a
    # second into a second: the window's start is a whole second).
    positions = sorted(draw(st.lists(st.integers(0, n), min_size=1, max_size=6)))
    backups, end = [], float(EPOCH - 5)
    for number, seq in enumerate(positions):
        end = max(end, history.commit(seq) if seq else EPOCH - 5) + draw(st.integers(0, 3))
        backups.append(BaseBackup(f"b{number}", f"0-{SERVER}-{seq}" if seq else "",
                                  at(int(end)).isoformat().replace("+00:00", ".5+00:00")))
    now = at(times[-1] + draw(st.integers(0, 10)))
    window = timedelta(seconds=draw(st.integers(1, times[-1] - EPOCH + 15)))
    return history, backups, now, window, draw(st.integers(1, 3))


@settings(max_examples=400, deadline=None)
@given(purges())
def test_every_point_of_the_window_stays_recoverable(
        case: tuple[History, list[BaseBackup], datetime, timedelta, int]) -> None:
    history, backups, now, window, minimum = case
    ends = {b.backup_id: datetime.fromisoformat(b.end_time) for b in backups}
    plan = plan_retention([Retained(b.backup_id, ends[b.backup_id]) for b in backups], now,
                          window, minimum)
    kept = [b for b in backups if b.backup_id in plan.keep]
    names = [r.segment for r in history.records]
    segments = plan_segments([b.gtid for b in kept], history.records, names, now)
    gone = {r.segment for r in segments.delete}
    after = [r for r in history.records if r.segment not in gone]
    assert len(after) == segments.kept and segments.orphans == ()
    start = now - window
    points: list[Target] = [Target(time=start)]
    points += [Target(time=at(s)) for s in range(int(start.timestamp()) + 1,
                                                int(now.timestamp()) + 1)]
    points += [Target(gtid=f"0-{SERVER}-{seq}") for seq in range(1, len(history.times) + 1)
               if at(history.commit(seq)) >= start]
    points += [Target()]
    for target in points:
        before = held(backups, history.records, history.by_name, target)
        if before is not None:
            assert held(kept, after, history.by_name, target) == before, f"{target} lost"
    # Only a prefix goes, at or before the oldest kept base, and never the newest record.
    cutoff = base_cutoff([b.gtid for b in kept]) or {}
    for record in segments.delete:
        assert record.domains[0].last_seq <= cutoff.get(0, 0)
    if history.records:
        assert after, "the archive's newest record was deleted"
        newest = max(r.domains[0].last_seq for r in history.records)
        assert max(r.domains[0].last_seq for r in after) == newest


# -- plain cases -----------------------------------------------------------------------------

def _history() -> History:
    return History([EPOCH + n for n in range(20)], [5, 10, 15], {2})  # 11..15 lost


def test_segments_before_the_oldest_kept_base_go_gap_and_all() -> None:
    history = _history()
    names = [r.segment for r in history.records]
    now = at(EPOCH + 20 + 7200)
    plan = plan_segments([f"0-{SERVER}-17"], history.records, names, now)
    # 1..5 and 6..10 are before 17 (across the gap); 16..20 is the newest: it stays.
    assert [r.domains[0].first_seq for r in plan.delete] == [1, 6]
    assert plan.kept == 1 and plan.cutoff == {0: 17}
    # A base inside a segment keeps it; no base keeps everything.
    plan = plan_segments([f"0-{SERVER}-8", f"0-{SERVER}-17"], history.records, names, now)
    assert [r.domains[0].first_seq for r in plan.delete] == [1]
    assert plan_segments([], history.records, names, now).delete == ()
    assert plan_segments([""], history.records, names, now).delete == ()


def test_the_newest_record_stays_even_behind_every_base() -> None:
    history = _history()
    plan = plan_segments([f"0-{SERVER}-40"], history.records, [], at(EPOCH))
    assert [r.domains[0].first_seq for r in plan.delete] == [1, 6]


def _orphan(seq: int, server: int = SERVER) -> str:
    return f"{BINLOG_SEGMENTS}{0:010d}-{seq:020d}-{server:010d}-{'ab' * 8}"


def test_orphans_go_only_where_the_index_is_an_hour_past_them() -> None:
    history = _history()
    names = [r.segment for r in history.records]
    assert segment_start(_orphan(7)) is not None and segment_start(_orphan(7)).seq == 7
    orphans = [_orphan(7), _orphan(12), _orphan(21), _orphan(3), "binlog/segments/junk"]
    late = at(EPOCH + 20) + 2 * HOUR
    plan = plan_segments([f"0-{SERVER}-2"], history.records, names + orphans, late)
    # 7: inside 6..10, committed two hours ago; 3: inside 1..5. 12: in the gap (it may be
    # what repairs it); 21: past the newest record (an archiver's write in flight).
    assert plan.orphans == (_orphan(3), _orphan(7))
    # Within the hour nothing goes.
    assert plan_segments([f"0-{SERVER}-2"], history.records, orphans,
                         at(EPOCH + 20) + HOUR / 2).orphans == ()


def test_an_orphan_before_the_archive_goes_once_a_kept_base_is_past_it() -> None:
    history = History([EPOCH + n for n in range(20)], [5, 10, 15], {0})  # 1..5's record gone
    late = at(EPOCH + 20) + 2 * HOUR
    orphan = _orphan(1)
    assert plan_segments([f"0-{SERVER}-12"], history.records, [orphan], late).orphans == (
        orphan,)
    # No base past it: it may be the only copy of transactions some backup still needs.
    assert plan_segments([""], history.records, [orphan], late).orphans == ()
    assert plan_segments([], history.records, [orphan], late).orphans == ()
