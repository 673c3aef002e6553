"""Fill an empty data dir atomically enough that no crash leaves a half-filled one looking done.

Protocol: marker → stage on the same volume → sync the volume → move entries into place (system
schema last) → remove marker. Every fill starts by removing what a killed run left beside the
data: its staging dir, and a point-in-time recovery's relay directory (PITR_RELAY: a recovery
killed while it read the archive leaves it, possibly GiBs, with no marker), unless the fill is
that recovery's own. The sync is what makes "no marker" mean "on disk": the tools that
fill the staging dir write thousands of files and fsync none of them, so without it a power
loss after the marker went could leave a data dir that looks finished with files still empty.
`classify` reads the result; `wipe_incomplete` undoes a run that was cut short.
The files mysqlsts itself keeps there (the clone record, the set record, the clone-failure
count) are read and written here too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from mysqlsts.adapters.fs import atomic_write, fsync_dir, read_back, sync_filesystem
from mysqlsts.core.clone_record import CLONE_RECORD, CloneRecord
from mysqlsts.core.datadir import (
    CLONE_FAILURES,
    FOREIGN_HARMLESS,
    IN_PROGRESS,
    PITR_RELAY,
    STAGING,
    DataDirState,
    classify,
    move_order,
    parse_failure_count,
)
from mysqlsts.core.disk_full import FULL_ERRNOS, disk_full, file_named, full_disk_line
from mysqlsts.core.records import RecordError
from mysqlsts.core.set_record import SET_RECORD, parse_set_record, render_set_record
from mysqlsts.errors import CloneError, MysqlstsError


def state_of(data_dir: Path) -> DataDirState:
    return classify(os.listdir(data_dir)) if data_dir.exists() else DataDirState.EMPTY


def wipe_incomplete(data_dir: Path) -> None:
    """Remove what an interrupted run left; the marker goes last so a crash here is retried."""
    for name in sorted(os.listdir(data_dir)):
        if name in FOREIGN_HARMLESS or name in (IN_PROGRESS, CLONE_FAILURES):
            continue
        path = data_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    (data_dir / IN_PROGRESS).unlink(missing_ok=True)
    fsync_dir(data_dir)


# Times one named step of a fill (the clone's log lines); by default nothing is timed.
StepTimer = Callable[[str], AbstractContextManager[object]]


def _untimed(_step: str) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


def fill_data_dir(data_dir: Path, populate: Callable[[Path], None],
                  step: StepTimer = _untimed, *, relay_in_use: bool = False) -> None:
    """Run `populate(staging_dir)`, then move its result into the (empty) data dir.

    The caller has checked that `data_dir` is EMPTY. A relay directory in it is removed
    first, unless `relay_in_use` (a point-in-time recovery filling it, whose relay files
    are there). `step("sync")`, `step("move")` and
    `step("marker")` wrap the three steps after `populate`, for a caller that times them.
    A full disk, met by us (OSError ENOSPC) or said by a tool (its MysqlstsError), is one
    sentence naming it and the path; the marker stays, as after any failure.
    """
    staging = data_dir / STAGING
    try:
        _fill(data_dir, staging, populate, step, relay_in_use)
    except OSError as error:
        if error.errno not in FULL_ERRNOS:
            raise
        raise CloneError(disk_full(str(data_dir), error.filename or str(staging))) from None
    except MysqlstsError as error:
        line = full_disk_line(str(error))
        if line is None:
            raise
        raise type(error)(disk_full(str(data_dir), file_named(line, str(staging)))) from None


def _fill(data_dir: Path, staging: Path, populate: Callable[[Path], None],
          step: StepTimer, relay_in_use: bool) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(data_dir / IN_PROGRESS, b"")
    leftovers = (staging,) if relay_in_use else (staging, data_dir / PITR_RELAY)
    for leftover in leftovers:
        if leftover.exists():
            shutil.rmtree(leftover)
    staging.mkdir()
    populate(staging)
    with step("sync"):
        sync_filesystem(staging)
    with step("move"):
        for name in move_order(os.listdir(staging)):
            os.rename(staging / name, data_dir / name)
        fsync_dir(data_dir)
    with step("marker"):
        staging.rmdir()
        (data_dir / IN_PROGRESS).unlink()
        fsync_dir(data_dir)


def read_clone_failures(data_dir: Path) -> int:
    """The volume's clone-failure count; a damaged counter is one CloneError, never a traceback."""
    try:
        count = read_back(data_dir / CLONE_FAILURES, _parse_count)
    except RecordError as exc:
        raise CloneError(str(exc)) from exc
    return count or 0


def count_clone_failure(data_dir: Path) -> int:
    """Add one to the volume's clone-failure count; returns the new count."""
    count = read_clone_failures(data_dir) + 1
    atomic_write(data_dir / CLONE_FAILURES, f"{count}\n")
    return count


def write_clone_record(directory: Path, record: CloneRecord) -> None:
    """Into the staging dir, so that it moves into place with the data, before the marker goes."""
    atomic_write(directory / CLONE_RECORD, record.to_json())


def write_set_record(directory: Path, name: str) -> None:
    """Into the staging dir, with the clone record: the set whose data this is."""
    atomic_write(directory / SET_RECORD, render_set_record(name))


def read_set_record(data_dir: Path) -> str | None:
    """The set recorded in the data dir, None without a record; an unreadable one is one
    CloneError naming the file."""
    try:
        return read_back(data_dir / SET_RECORD, _parse_set)
    except RecordError as exc:
        raise CloneError(f"set record unreadable: {exc}") from exc


def read_clone_record(data_dir: Path) -> CloneRecord | None:
    """The record, or None when this data dir was not made by a clone (e.g. ordinal 0). An
    unreadable, undecodable or malformed record is one CloneError naming the file."""
    try:
        return read_back(data_dir / CLONE_RECORD, _parse_record)
    except RecordError as exc:
        raise CloneError(f"clone record unreadable: {exc}") from exc


def _parse_count(data: bytes, _name: str) -> int:
    return parse_failure_count(data.decode())


def _parse_set(data: bytes, _name: str) -> str:
    return parse_set_record(data.decode())


def _parse_record(data: bytes, _name: str) -> CloneRecord:
    return CloneRecord.from_json(data.decode())
