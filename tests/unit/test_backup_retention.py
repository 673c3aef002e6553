"""Retention over manifests: a property test over random histories, and the plain cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core.backup_retention import Retained, parse_window, plan_retention

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def history(ages_hours: list[int]) -> list[Retained]:
    return [Retained(f"b{n:03d}", NOW - timedelta(hours=age))
            for n, age in enumerate(ages_hours)]


@settings(max_examples=400, deadline=None)
@given(ages=st.lists(st.integers(min_value=0, max_value=24 * 30), max_size=40),
       window_hours=st.integers(min_value=1, max_value=24 * 14),
       minimum=st.integers(min_value=1, max_value=5))
def test_every_point_of_the_window_stays_restorable(ages: list[int], window_hours: int,
                                                    minimum: int) -> None:
    backups = history(ages)
    window = timedelta(hours=window_hours)
    plan = plan_retention(backups, NOW, window, minimum)
    kept = [b for b in backups if b.backup_id in plan.keep]
    assert sorted(plan.keep + plan.delete) == sorted(b.backup_id for b in backups)
    assert len(kept) >= min(minimum, len(backups))
    # Every point t of the window that some backup could restore before the purge (a backup
    # ended at or before t) still has one after it; hourly points, and the window's edge.
    for hours in range(window_hours + 1):
        point = NOW - timedelta(hours=hours)
        if any(b.end <= point for b in backups):
            assert any(b.end <= point for b in kept), f"point {hours}h ago lost"
    # The newest `minimum` are kept whatever their age.
    newest = sorted(backups, key=lambda b: (b.end, b.backup_id))[-minimum:]
    assert {b.backup_id for b in newest} <= set(plan.keep)
    # Deleted ones are only those no point of the window needs.
    start = NOW - window
    for b in backups:
        if b.backup_id in plan.delete:
            assert b.end < start
            assert any(k.end <= start and k.end >= b.end for k in kept)


def test_the_base_of_the_oldest_point_is_kept() -> None:
    backups = history([24 * 10, 24 * 8, 24 * 6, 24 * 1])  # window 7 days
    plan = plan_retention(backups, NOW, parse_window("7d"), 1)
    assert plan.oldest_needed == "b001"  # 8 days old: the base for the point 7 days ago
    assert plan.keep == ("b001", "b002", "b003")
    assert plan.delete == ("b000",)


def test_minimum_count_beats_the_window() -> None:
    plan = plan_retention(history([24 * 40, 24 * 30, 24 * 20]), NOW, parse_window("7d"), 2)
    assert plan.keep == ("b001", "b002")


@pytest.mark.parametrize("text", ["7", "0d", "-1d", "7w", "d", ""])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError, match="positive number with d, h or m"):
        parse_window(text)


def test_windows() -> None:
    assert parse_window("7d") == timedelta(days=7)
    assert parse_window("36h") == timedelta(hours=36)
    assert parse_window("90m") == timedelta(minutes=90)
