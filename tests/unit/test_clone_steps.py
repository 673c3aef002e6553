"""The clone's per-step durations: one log line per completed step, and which steps
`fill_data_dir` times."""

from __future__ import annotations

import logging

import pytest

from mysqlsts.adapters.datadir import fill_data_dir, state_of
from mysqlsts.clone.progress import StepTimes
from mysqlsts.core.datadir import IN_PROGRESS, STAGING, DataDirState


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_completed_step_is_timed_and_logged_in_order(caplog):
    clock = FakeClock()
    steps = StepTimes(clock)
    with caplog.at_level(logging.INFO, logger="mysqlsts.clone.progress"):
        with steps.step("stream"):
            clock.now += 12.5
        with steps.step("prepare"):
            clock.now += 0.25
    assert steps.seconds == {"stream": 12.5, "prepare": 0.25}
    assert [r.getMessage() for r in caplog.records] == [
        "clone step done step=stream seconds=12.500",
        "clone step done step=prepare seconds=0.250",
    ]
    assert steps.summary() == "stream=12.5s prepare=0.2s"


def test_a_step_that_fails_is_not_timed(caplog):
    clock = FakeClock()
    steps = StepTimes(clock)
    with caplog.at_level(logging.INFO), pytest.raises(RuntimeError), steps.step("stream"):
        clock.now += 3
        raise RuntimeError("stream broke off")
    assert steps.seconds == {}
    assert "clone step done" not in caplog.text


def test_fill_times_move_then_marker_after_populate(tmp_path):
    data = tmp_path / "data"
    events: list[str] = []

    def populate(staging):
        events.append("populate")
        (staging / "mysql").mkdir()

    class Recorder(StepTimes):
        def step(self, name):  # type: ignore[override]
            events.append(f"{name} starts, marker present={(data / IN_PROGRESS).exists()}, "
                          f"moved={(data / 'mysql').exists()}")
            return super().step(name)

    steps = Recorder()
    fill_data_dir(data, populate, steps.step)
    assert events == [
        "populate",
        "sync starts, marker present=True, moved=False",
        "move starts, marker present=True, moved=False",
        "marker starts, marker present=True, moved=True",
    ]
    assert list(steps.seconds) == ["sync", "move", "marker"]
    assert state_of(data) is DataDirState.INITIALIZED


def test_a_failed_populate_times_nothing(tmp_path):
    steps = StepTimes()

    def populate(staging):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        fill_data_dir(tmp_path / "data", populate, steps.step)
    assert steps.seconds == {}


def test_the_staged_files_are_on_disk_before_they_move(tmp_path, monkeypatch):
    """A power loss after the marker went must not leave a finished-looking data dir with
    files the kernel had not written yet: the volume is synced before anything moves."""
    import mysqlsts.adapters.datadir as datadir

    data = tmp_path / "data"
    events: list[str] = []

    def populate(staging):
        (staging / "ibdata1").write_bytes(b"x" * 4096)
        events.append("populate")

    def synced(path):
        events.append(f"sync {path.name}, moved={(data / 'ibdata1').exists()}")

    monkeypatch.setattr(datadir, "sync_filesystem", synced)
    steps = StepTimes()
    fill_data_dir(data, populate, steps.step)
    assert events == ["populate", f"sync {STAGING}, moved=False"]
    assert list(steps.seconds) == ["sync", "move", "marker"]


def test_sync_filesystem_flushes_a_real_directory(tmp_path):
    from mysqlsts.adapters.fs import sync_filesystem

    (tmp_path / "f").write_bytes(b"data")
    sync_filesystem(tmp_path)  # syncfs(2) on this file system: no error
    with pytest.raises(OSError):
        sync_filesystem(tmp_path / "missing")
