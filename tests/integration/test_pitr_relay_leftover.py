# ruff: noqa: F401, F811 (test_pitr's `history` and test_backup_faults' `small_disk` fixtures are parameters here)
"""A point-in-time recovery's relay files, on real MariaDB over test_pitr's history (a
primary under a client ledger, archived to a file:// store, one base backup), through the
real CLIs:

- a relay directory a recovery killed while reading the archive left (real relay files, no
  marker: the data dir reads as empty) is removed by a plain clone from a peer, by a restore
  of a backup alone and by mysql-0's initialisation, not only by the next recovery;
- a full disk while the relay files are written (a small tmpfs) fails the recovery in one
  line naming the full disk and the relay directory, exits non-zero and leaves nothing in the
  data dir; given room, the same command recovers exactly to the target."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_backup_faults import grow, small_disk
from test_backup_take import backup_cli
from test_clone import run_clone
from test_pitr import History, history, holds_exactly_through, listed_backups, recovered

from mysqlsts.adapters.datadir import read_clone_record, state_of
from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.clone.point_in_time import fetch, plan_for
from mysqlsts.core.datadir import IN_PROGRESS, PITR_RELAY, DataDirState
from mysqlsts.core.pitr import Target
from mysqlsts.store.filestore import FileStore
from tests.servers import MakeServer

pytestmark = pytest.mark.integration


def leave_relay_files(history: History, data_dir: Path) -> Path:
    """The relay directory a recovery to the archive's last transaction, killed while it read
    the archive, leaves in `data_dir`: the real relay files, no marker."""
    store = FileStore(history.store_dir)
    plan, manifest = plan_for(store, None, Target(gtid=history.ledger[-1].gtid))
    relay = data_dir / PITR_RELAY
    relay.mkdir(parents=True)
    recovery = fetch(store, None, plan, manifest, relay)
    assert recovery.transactions > 0 and recovery.files
    assert state_of(data_dir) is DataDirState.EMPTY  # no reader takes it for data
    return relay


def size_of(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def test_a_plain_clone_from_a_peer_removes_a_leftover_relay_dir(
        history: History, tmp_path: Path) -> None:
    data_dir = tmp_path / "mysql-1"
    relay = leave_relay_files(history, data_dir)
    code, err = run_clone(data_dir, 1, history.donor_port, history.secrets_dir)
    assert code == 0, err
    assert "clone complete" in err
    assert not relay.exists()
    assert state_of(data_dir) is DataDirState.INITIALIZED
    record = read_clone_record(data_dir)
    assert record is not None and record.coordinates.gtid


def test_a_restore_of_a_backup_alone_removes_a_leftover_relay_dir(
        history: History, tmp_path: Path) -> None:
    [listed] = [b for b in listed_backups(history.url) if b["gtid"] == history.backup_gtid]
    data_dir = tmp_path / "data"
    relay = leave_relay_files(history, data_dir)
    done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir),
                      "--backup", listed["id"])
    assert done.returncode == 0, done.stderr
    assert f"restore complete: backup {listed['id']}" in done.stderr
    assert "archived transactions" not in done.stderr  # the backup alone, no recovery
    assert not relay.exists()
    assert state_of(data_dir) is DataDirState.INITIALIZED


def test_an_initialisation_removes_a_leftover_relay_dir(
        history: History, tmp_path: Path) -> None:
    data_dir = tmp_path / "mysql-0"
    relay = leave_relay_files(history, data_dir)
    assert bootstrap_data_dir(data_dir, "root-password") is True
    assert not relay.exists()
    assert state_of(data_dir) is DataDirState.INITIALIZED


def fill_up_to(disk: Path, room: int) -> Path:
    """A file taking all of `disk` but `room` bytes (whole pages)."""
    free = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as out:
        left = free.f_bavail * free.f_frsize - room
        while left > 0:
            left -= out.write(b"\0" * min(left, 1 << 20))
    now = os.statvfs(disk)
    assert now.f_bavail * now.f_frsize <= room
    return filler


def test_a_full_disk_while_writing_the_relay_files_fails_in_one_line_and_leaves_nothing(
        history: History, small_disk: Path, mariadb_module: MakeServer,
        tmp_path: Path) -> None:
    """The relay files the recovery needs are measured on the ordinary disk; the data dir's
    small disk is left half that much room, so they start and do not fit."""
    needed = size_of(leave_relay_files(history, tmp_path / "measured"))
    room = needed // 2 // 4096 * 4096
    assert needed > room + 4096, needed
    filler = fill_up_to(small_disk, room)
    data_dir = small_disk / "data"
    data_dir.mkdir()  # the volume's data dir, as on Kubernetes
    target = history.ledger[-1]
    argv = ("restore", "--store", history.url, "--data-dir", str(data_dir),
            "--to-gtid", target.gtid)
    full = backup_cli(*argv)
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last == (f"Error: the disk is full (ENOSPC) under data dir {data_dir}, writing "
                    f"{data_dir / PITR_RELAY} (the point-in-time recovery's relay log files): "
                    "give the volume room and run again (the next run wipes what this one "
                    "left and redoes it)"), full.stderr
    assert "complete" not in full.stderr
    # Nothing that looks finished, nothing left to read as data or to take the disk.
    assert list(data_dir.iterdir()) == []
    assert not (data_dir / IN_PROGRESS).exists()

    filler.unlink()
    grow(small_disk)
    again = backup_cli(*argv)
    assert again.returncode == 0, again.stderr
    assert f"recovery complete: {data_dir} at gtid={target.gtid}" in again.stderr
    assert not (data_dir / PITR_RELAY).exists()
    assert state_of(data_dir) is DataDirState.INITIALIZED
    # Started from a copy on the ordinary disk: the tmpfs goes at teardown, maybe first.
    copied = tmp_path / "copied"
    shutil.copytree(data_dir, copied, symlinks=True)
    holds_exactly_through(history, target, recovered(mariadb_module, "relay-full", copied))
