import pytest

from mysqlsts.adapters.datadir import fill_data_dir, state_of, wipe_incomplete
from mysqlsts.core.datadir import (
    IN_PROGRESS,
    PITR_RELAY,
    DataDirState,
    Fill,
    classify,
    move_order,
    plan_fill,
)
from mysqlsts.errors import ConfigError


@pytest.mark.parametrize(
    ("entries", "state"),
    [
        ([], DataDirState.EMPTY),
        (["lost+found"], DataDirState.EMPTY),
        ([PITR_RELAY], DataDirState.EMPTY),  # a recovery's relay files, before its restore
        ([PITR_RELAY, IN_PROGRESS, "ibdata1"], DataDirState.INCOMPLETE),
        (["mysql", "ibdata1"], DataDirState.INITIALIZED),
        (["mysql", "ibdata1", IN_PROGRESS], DataDirState.INCOMPLETE),
        (["ibdata1", IN_PROGRESS], DataDirState.INCOMPLETE),
        (["ibdata1"], DataDirState.UNKNOWN),
        (["notes.txt", "lost+found"], DataDirState.UNKNOWN),
    ],
)
def test_classify(entries, state):
    assert classify(entries) is state


def test_system_schema_moves_last():
    assert move_order(["mysql", "ibdata1", "zz", "aria_log_control"]) == [
        "aria_log_control", "ibdata1", "zz", "mysql",
    ]


@pytest.mark.parametrize(("state", "fill"), [
    (DataDirState.EMPTY, Fill.FILL), (DataDirState.INCOMPLETE, Fill.REDO),
    (DataDirState.INITIALIZED, Fill.SKIP)])
def test_plan_fill(state, fill):
    assert plan_fill(state, "clone") is fill


def test_someone_elses_files_are_never_filled_over():
    with pytest.raises(ConfigError, match="refusing to initialise over them"):
        plan_fill(DataDirState.UNKNOWN, "initialise")


def test_fill_moves_staged_files(tmp_path):
    data = tmp_path / "data"

    def populate(staging):
        (staging / "mysql").mkdir()
        (staging / "ibdata1").write_bytes(b"x")

    fill_data_dir(data, populate)
    assert sorted(p.name for p in data.iterdir()) == ["ibdata1", "mysql"]
    assert state_of(data) is DataDirState.INITIALIZED


def test_failure_while_populating_leaves_incomplete_and_wipe_recovers(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "lost+found").mkdir()

    def populate(staging):
        (staging / "mysql").mkdir()
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        fill_data_dir(data, populate)
    assert state_of(data) is DataDirState.INCOMPLETE
    wipe_incomplete(data)
    assert sorted(p.name for p in data.iterdir()) == ["lost+found"]
    assert state_of(data) is DataDirState.EMPTY


def test_clone_failure_count_survives_the_wipe_and_does_not_make_the_dir_unknown(tmp_path):
    from mysqlsts.adapters.datadir import count_clone_failure, read_clone_failures

    data = tmp_path / "data"
    data.mkdir()
    assert read_clone_failures(data) == 0
    assert count_clone_failure(data) == 1
    assert state_of(data) is DataDirState.EMPTY
    fill_failed = data / IN_PROGRESS
    fill_failed.write_bytes(b"")
    assert count_clone_failure(data) == 2
    wipe_incomplete(data)
    assert read_clone_failures(data) == 2
    assert state_of(data) is DataDirState.EMPTY


@pytest.mark.parametrize(("text", "count"), [("3\n", 3), ("", 0), ("junk", 0), ("-4", 0)])
def test_failure_count_parsing(text, count):
    from mysqlsts.core.datadir import parse_failure_count

    assert parse_failure_count(text) == count


@pytest.mark.parametrize("write", ["marker", "failure count"])
def test_a_kill_between_temp_file_and_rename_leaves_no_unknown_dir(tmp_path, monkeypatch, write):
    from mysqlsts.adapters import fs
    from mysqlsts.adapters.datadir import count_clone_failure

    data = tmp_path / "data"
    data.mkdir()

    def killed(src, dst):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(fs.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        if write == "marker":
            fill_data_dir(data, lambda staging: None)
        else:
            count_clone_failure(data)
    monkeypatch.undo()
    assert [p.name for p in data.iterdir()] != []  # the temp file is there
    assert state_of(data) is DataDirState.EMPTY
    assert classify([".someone-elses.tmp"]) is DataDirState.UNKNOWN
