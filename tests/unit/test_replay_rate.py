"""A recovery's replay progress: a line at most every few seconds, the rate since the apply
began, and one summary line."""

from __future__ import annotations

from mysqlsts.core.replay_rate import ReplayRate


def test_a_progress_line_is_due_at_most_every_interval_and_names_the_rate() -> None:
    replay = ReplayRate(total=1000, interval=5.0)
    assert replay.update(0, 100.0) is None  # the first poll starts the clock
    assert replay.update(200, 102.0) is None
    line = replay.update(500, 105.0)
    assert line == "replay progress applied=500 total=1000 percent=50.0 rate=100.0/s"
    assert replay.update(600, 109.9) is None  # 4.9 s after the last line
    assert replay.update(1000, 110.0) is not None
    assert replay.summary() == "replay done transactions=1000 seconds=10.0 rate=100.0/s"


def test_counts_stay_within_the_total_and_nothing_applied_is_a_zero_rate() -> None:
    replay = ReplayRate(total=10)
    assert replay.summary() == "replay done transactions=0 seconds=0.0 rate=0.0/s"
    replay.update(-3, 1.0)
    assert replay.applied == 0 and replay.rate() == 0.0
    replay.update(15, 3.0)
    assert replay.applied == 10 and replay.rate() == 5.0 and replay.percent() == 100.0
    assert ReplayRate(total=0).percent() == 100.0
