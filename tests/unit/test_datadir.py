import pytest

from mysqlsts.adapters.datadir import fill_data_dir, state_of, wipe_incomplete
from mysqlsts.core.datadir import IN_PROGRESS, DataDirState, classify, move_order


@pytest.mark.parametrize(
    ("entries", "state"),
    [
        ([], DataDirState.EMPTY),
        (["lost+found"], DataDirState.EMPTY),
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


def test_fill_moves_staged_files_and_writes_record(tmp_path):
    data = tmp_path / "data"

    def populate(staging):
        (staging / "mysql").mkdir()
        (staging / "ibdata1").write_bytes(b"x")

    fill_data_dir(data, populate, ("record.json", b"{}"))
    assert sorted(p.name for p in data.iterdir()) == ["ibdata1", "mysql", "record.json"]
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
