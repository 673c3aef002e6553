"""Retention over manifests: a property test over random histories, and the plain cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core.backup_retention import Retained, parse_window, plan_retention
from mysqlsts.core.backup_verify import FAILED, OK
from mysqlsts.core.segment_retention import base_cutoff

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def history(ages_hours: list[int], drilled: list[str | None] | None = None) -> list[Retained]:
    results = drilled or [None] * len(ages_hours)
    return [Retained(f"b{n:03d}", NOW - timedelta(hours=age), result)
            for n, (age, result) in enumerate(zip(ages_hours, results, strict=True))]


VERDICTS = st.sampled_from([None, OK, FAILED])


@settings(max_examples=400, deadline=None)
@given(drills=st.lists(st.tuples(st.integers(min_value=0, max_value=24 * 30), VERDICTS),
                       max_size=40),
       window_hours=st.integers(min_value=1, max_value=24 * 14),
       minimum=st.integers(min_value=1, max_value=5))
def test_every_point_of_the_window_stays_restorable(drills: list[tuple[int, str | None]],
                                                    window_hours: int, minimum: int) -> None:
    backups = history([age for age, _ in drills], [result for _, result in drills])
    window = timedelta(hours=window_hours)
    plan = plan_retention(backups, NOW, window, minimum)
    kept = [b for b in backups if b.backup_id in plan.keep]
    good, kept_good = [b for b in backups if not b.bad], [b for b in kept if not b.bad]
    assert sorted(plan.keep + plan.delete) == sorted(b.backup_id for b in backups)
    assert len(kept_good) >= min(minimum, len(good))
    assert set(plan.failed_kept) == {b.backup_id for b in kept if b.bad}
    # Every point t of the window that a backup not known bad could restore before the purge
    # (one ended at or before t) still has one after it; hourly points, and the window's edge.
    for hours in range(window_hours + 1):
        point = NOW - timedelta(hours=hours)
        if any(b.end <= point for b in good):
            assert any(b.end <= point for b in kept_good), f"point {hours}h ago lost"
    # The newest `minimum` not known bad are kept whatever their age; failed ones don't count.
    newest = sorted(good, key=lambda b: (b.end, b.backup_id))[-minimum:]
    assert {b.backup_id for b in newest} <= set(plan.keep)
    # The base is never a failed backup, and the newest passed one is never deleted.
    assert plan.oldest_needed is None or not next(
        b for b in backups if b.backup_id == plan.oldest_needed).bad
    passed = sorted((b for b in backups if b.drilled == OK), key=lambda b: (b.end, b.backup_id))
    assert plan.proven == (passed[-1].backup_id if passed else None)
    assert not passed or passed[-1].backup_id in plan.keep
    # Deleted ones are only those no point of the window needs: older than its start, and a
    # kept backup not known bad stands between them and the start (or they failed).
    start = NOW - window
    for b in backups:
        if b.backup_id in plan.delete:
            assert b.end < start
            assert b.bad or any(k.end <= start and k.end >= b.end for k in kept_good)


def test_the_base_of_the_oldest_point_is_kept() -> None:
    backups = history([24 * 10, 24 * 8, 24 * 6, 24 * 1])  # window 7 days
    plan = plan_retention(backups, NOW, parse_window("7d"), 1)
    assert plan.oldest_needed == "b001"  # 8 days old: the base for the point 7 days ago
    assert plan.keep == ("b001", "b002", "b003")
    assert plan.delete == ("b000",)


def test_minimum_count_beats_the_window() -> None:
    plan = plan_retention(history([24 * 40, 24 * 30, 24 * 20]), NOW, parse_window("7d"), 2)
    assert plan.keep == ("b001", "b002")


def test_a_failed_newest_backup_is_not_the_base() -> None:
    """Window 7 days: the newest backup before its start failed its drill, so the older one
    (never drilled: unknown is not bad) is the base, kept with everything after it."""
    backups = history([24 * 10, 24 * 8, 24 * 6, 24 * 1], [None, FAILED, OK, OK])
    plan = plan_retention(backups, NOW, parse_window("7d"), 1)
    assert plan.oldest_needed == "b000"
    assert plan.keep == ("b000", "b001", "b002", "b003")
    assert plan.failed_kept == ("b001",)
    assert plan.proven == "b003"
    # The archive's segments follow the kept bases: the cutoff is the good base's position,
    # not the failed backup's after it.
    gtids = {"b000": "0-1-10", "b001": "0-1-20", "b002": "0-1-30", "b003": "0-1-40"}
    assert base_cutoff([gtids[b] for b in plan.keep]) == {0: 10}


def test_failed_backups_do_not_count_toward_the_minimum() -> None:
    backups = history([24 * 40, 24 * 30, 24 * 20, 24 * 10], [None, None, FAILED, FAILED])
    plan = plan_retention(backups, NOW, parse_window("1d"), 2)
    # b000 and b001 are the two newest not known bad; b001 is the base for the window's start,
    # so the failed ones after it stay as evidence.
    assert plan.keep == ("b000", "b001", "b002", "b003")
    assert plan.oldest_needed == "b001"


def test_failed_backups_before_the_base_go() -> None:
    backups = history([24 * 40, 24 * 30, 24 * 20, 24 * 10], [FAILED, FAILED, None, OK])
    plan = plan_retention(backups, NOW, parse_window("1d"), 1)
    assert plan.keep == ("b003",) and plan.delete == ("b000", "b001", "b002")


def test_the_last_proven_backup_outlives_a_run_of_failed_drills() -> None:
    """Only b000 ever passed; the five after it failed. Window 1 day, minimum 1: it is the
    base, the minimum and the proven one; when newer ones were never drilled, it stays as the
    last proven while they take the window's and the minimum's places."""
    failing = history([24 * 9, 24 * 5, 24 * 4, 24 * 3, 24 * 2, 12],
                      [OK, FAILED, FAILED, FAILED, FAILED, FAILED])
    plan = plan_retention(failing, NOW, parse_window("1d"), 1)
    assert plan.oldest_needed == plan.proven == "b000"
    assert plan.delete == ()
    unknown = history([24 * 9, 24 * 5, 24 * 4, 12], [OK, None, None, None])
    plan = plan_retention(unknown, NOW, parse_window("1d"), 1)
    assert plan.oldest_needed == "b002" and plan.proven == "b000"
    assert plan.keep == ("b000", "b002", "b003") and plan.delete == ("b001",)
    # A newer pass releases it.
    passed = history([24 * 9, 24 * 5, 24 * 4, 12], [OK, None, None, OK])
    assert plan_retention(passed, NOW, parse_window("1d"), 1).delete == ("b000", "b001")


def test_only_failed_backups_in_the_window() -> None:
    plan = plan_retention(history([24 * 3, 2, 1], [None, FAILED, FAILED]), NOW,
                          parse_window("1d"), 1)
    assert plan.keep == ("b000", "b001", "b002") and plan.oldest_needed == "b000"
    plan = plan_retention(history([2, 1], [FAILED, FAILED]), NOW, parse_window("1d"), 1)
    assert plan.keep == ("b000", "b001") and plan.oldest_needed is None


@pytest.mark.parametrize("text", ["7", "0d", "-1d", "7w", "d", ""])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError, match="positive number with d, h or m"):
        parse_window(text)


def test_windows() -> None:
    assert parse_window("7d") == timedelta(days=7)
    assert parse_window("36h") == timedelta(hours=36)
    assert parse_window("90m") == timedelta(minutes=90)
