"""bench/scale_bench.py's arithmetic: it reads the clone's own step lines, and its growth check
flags a step that grows faster than the files and only such a step."""

from __future__ import annotations

import logging

import pytest

from bench import scale_bench
from bench.scale_bench import STEPS, CloneRun, growth_check, parse_steps, within_hard_limit
from mysqlsts.clone.progress import StepTimes


def run(files: int, **seconds: float) -> CloneRun:
    steps = {name: seconds.get(name, 0.0) for name in STEPS}
    return CloneRun(f"{files} files", 10**9, files, sum(steps.values()) + 0.5, steps, 10**9,
                    1.0, "0 / 0 / 0")


def test_the_steps_are_read_from_the_clones_own_log_lines(caplog):
    steps = StepTimes()
    with caplog.at_level(logging.INFO):
        for name in STEPS:
            with steps.step(name):
                pass
    assert list(parse_steps(caplog.text)) == list(STEPS)
    with pytest.raises(SystemExit, match="marker"):
        parse_steps(caplog.text.replace("step=marker", "step=other"))


def test_a_step_quadratic_in_files_is_flagged_and_a_linear_one_is_not():
    runs = [run(1000, stream=1.0, prepare=1.0), run(10_000, stream=10.0, prepare=100.0),
            run(20_000, stream=20.0, prepare=400.0)]
    table, flagged = growth_check(runs, lambda r: r.files, "files")
    assert [f.split(" ")[0] for f in flagged] == ["prepare", "prepare", "wall", "wall"]
    assert "| stream | ×10.00 | ×2.00 |" in table


def test_times_below_the_floor_are_not_flagged():
    runs = [run(1000, marker=0.001), run(2000, marker=scale_bench.FLOOR_SECONDS)]
    _, flagged = growth_check(runs, lambda r: r.files, "files")
    assert flagged == []


def test_counts_above_the_hard_limit_are_lowered_to_fit():
    assert within_hard_limit([1, 1000, 10_000], 20_000) == ([1, 1000, 10_000], "")
    counts, why = within_hard_limit([1, 1000, 10_000, 50_000], 20_000)
    assert counts == [1, 1000, 10_000, 19_000]
    assert "19000 instead of 50000" in why and "20000" in why
