"""A full disk as one sentence: told from a tool's words or an OS error, through the fill."""

import errno
import sys

import pytest

from mysqlsts.adapters.datadir import fill_data_dir, state_of
from mysqlsts.adapters.tools import run_tool
from mysqlsts.core.datadir import IN_PROGRESS, DataDirState
from mysqlsts.core.disk_full import disk_full, file_named, full_disk_line
from mysqlsts.errors import CloneError

# mbstream's words on a full tmpfs (its last line says nothing of the disk).
FIRST = """mbstream: Error writing file './app/rows.ibd' (Errcode: 28 "No space left on device")"""
MBSTREAM = f"{FIRST}\n[00] 2026-12-05 02:15:37 mbstream: my_write() failed.\n"


@pytest.mark.parametrize(("text", "line"), [
    (MBSTREAM, FIRST),
    ("[ERROR] InnoDB: Error number 28 means 'No space left on device'\n[ERROR] Aborting",
     "[ERROR] InnoDB: Error number 28 means 'No space left on device'"),
    ("Error writing file 'x' (Errcode: 122 \"Disk quota exceeded\")",
     "Error writing file 'x' (Errcode: 122 \"Disk quota exceeded\")"),
    ("Can't lock aria control file (Errcode: 11 \"Resource temporarily unavailable\")", None),
    ("Errcode: 280 something else", None),
    ("", None),
])
def test_full_disk_line(text, line):
    assert full_disk_line(text) == line


def test_file_named_resolves_against_the_tools_directory():
    line = full_disk_line(MBSTREAM)
    assert line is not None
    assert file_named(line, "/data/.staging") == "/data/.staging/app/rows.ibd"
    assert file_named("Error writing file '/abs/f' (Errcode: 28)", "/x") == "/abs/f"
    assert file_named("No space left on device", "/x") is None


def test_the_sentence_names_the_disk_and_the_path():
    assert disk_full("/data", "/data/.staging/ibdata1") == (
        "the disk is full (ENOSPC) under data dir /data, writing /data/.staging/ibdata1: give "
        "the volume room and run again (the next run wipes what this one left and redoes it)")
    assert disk_full("/data", None).startswith("the disk is full (ENOSPC) under data dir /data:")


def test_a_tool_failure_reports_the_line_that_says_the_disk_is_full():
    script = f"import sys; sys.stderr.write({MBSTREAM!r}); sys.exit(1)"
    with pytest.raises(CloneError) as caught:
        run_tool([sys.executable, "-c", script], "mbstream", error=CloneError)
    assert str(caught.value) == f"mbstream failed with exit code 1: {FIRST}"


def test_a_fill_stopped_by_a_tool_on_a_full_disk_is_one_sentence_and_stays_incomplete(tmp_path):
    data = tmp_path / "data"

    def populate(staging):
        (staging / "mysql").mkdir()
        run_tool([sys.executable, "-c", f"import sys; sys.stderr.write({MBSTREAM!r}); "
                  "sys.exit(1)"], "mbstream", error=CloneError)

    with pytest.raises(CloneError) as caught:
        fill_data_dir(data, populate)
    assert str(caught.value) == disk_full(str(data), f"{data}/.mysqlsts-staging/app/rows.ibd")
    assert (data / IN_PROGRESS).exists()
    assert state_of(data) is DataDirState.INCOMPLETE


def test_a_fill_stopped_by_enospc_of_our_own_write_is_one_sentence(tmp_path):
    data = tmp_path / "data"

    def populate(staging):
        raise OSError(errno.ENOSPC, "No space left on device", str(staging / "record.json"))

    with pytest.raises(CloneError) as caught:
        fill_data_dir(data, populate)
    assert str(caught.value) == disk_full(str(data), f"{data}/.mysqlsts-staging/record.json")
    assert (data / IN_PROGRESS).exists()


def test_other_failures_of_a_fill_pass_unchanged(tmp_path):
    def denied(staging):
        raise OSError(errno.EACCES, "Permission denied", str(staging))

    def failed(staging):
        raise CloneError("mbstream failed with exit code 1: out-of-order chunk")

    with pytest.raises(PermissionError):
        fill_data_dir(tmp_path / "a", denied)
    with pytest.raises(CloneError, match="^mbstream failed with exit code 1: out-of-order"):
        fill_data_dir(tmp_path / "b", failed)
