# ruff: noqa: F401, F811 (test_pitr's `history` fixture is a parameter here)
"""Point-in-time recovery writes the chosen transactions to relay log files as it reads the
archive (one segment in memory at a time), in the data dir's own relay directory
(`.mysqlsts-pitr-relay`, on the data volume), all before the base backup is restored; on real
MariaDB over test_pitr's history (a primary under a client ledger, archived, one base backup):

- a corrupt segment in the middle of the range is refused naming it, before any part of the
  base backup is read (every part is corrupt too: read, it would be the error) and with
  nothing left behind;
- the relay directory is gone after a recovery that succeeded, and after one whose apply
  failed (its data dir stays marked unfinished);
- a relay directory a killed recovery left (relay files through a later target) is wiped, not
  applied: the next recovery, to an earlier target, holds exactly the ledger through it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from test_backup_take import backup_cli
from test_pitr import (
    History,
    after_backup,
    history,
    holds_exactly_through,
    kill_while_applying,
    recovered,
    seq,
)

from mysqlsts.adapters.datadir import state_of
from mysqlsts.clone.point_in_time import RecoveryFailed, plan_for, recover_into
from mysqlsts.core.backup_layout import BACKUPS, MANIFEST
from mysqlsts.core.datadir import IN_PROGRESS, PITR_RELAY, DataDirState
from mysqlsts.core.pitr import Target, binlog_order
from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.filestore import FileStore
from tests.servers import MakeServer

pytestmark = pytest.mark.integration


def flip_middle_byte(path: Path) -> None:
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: only its checksum tells
    path.write_bytes(bytes(damaged))


def test_a_corrupt_segment_in_the_middle_is_refused_before_any_part_is_read(
        history: History, tmp_path: Path) -> None:
    copy = tmp_path / "store"
    shutil.copytree(history.store_dir, copy)
    records = sorted(load_records(FileStore(copy), None), key=lambda r: r.domains[0].first_seq)
    inside = [r for r in records if r.domains[0].first_seq > seq(history.backup_gtid)]
    assert len(inside) >= 3, inside
    middle = inside[len(inside) // 2]
    flip_middle_byte(copy / middle.segment)
    parts = [p for p in (copy / BACKUPS).rglob("*") if p.is_file() and p.name != MANIFEST]
    assert parts
    for part in parts:
        flip_middle_byte(part)
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", f"file://{copy}", "--data-dir", str(data_dir),
                      "--to-gtid", history.ledger[-1].gtid)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert middle.segment in lines[-1] and "part" not in lines[-1], done.stderr
    assert not data_dir.exists()


def test_a_leftover_relay_dir_is_wiped_not_applied_and_none_is_left_after_success(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    kill_while_applying(history.url, data_dir, history.ledger[-1].gtid, tmp_path / "tmp")
    left = data_dir / PITR_RELAY
    assert (left / "pitr-relay.000001").stat().st_size > 0  # relay files to the last GTID
    assert (data_dir / IN_PROGRESS).exists()
    target = after_backup(history)[5]
    done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir),
                      "--to-gtid", target.gtid)
    assert done.returncode == 0, done.stderr
    assert not left.exists()
    assert state_of(data_dir) is DataDirState.INITIALIZED
    holds_exactly_through(history, target, recovered(mariadb_module, "relay-leftover", data_dir))


def test_an_apply_that_fails_leaves_no_relay_dir_and_the_data_dir_unfinished(
        history: History, tmp_path: Path) -> None:
    """The plan told to start two transactions before the backup's position: the relay files
    hold two transactions the backup already has, and the SQL thread stops on the first
    (a duplicate key)."""
    store = FileStore(history.store_dir)
    plan, manifest = plan_for(store, None, Target(gtid=history.ledger[-1].gtid))
    earlier = seq(plan.base_gtid) - 2
    ordered = [r.segment for r in binlog_order(load_records(store, None))
               if r.domains[0].last_seq > earlier]
    wrong = replace(plan, base_gtid=f"0-100-{earlier}", segments=tuple(ordered))
    data_dir = tmp_path / "data"
    with pytest.raises(RecoveryFailed, match="applying the archive failed"):
        recover_into(data_dir, store, None, Target(gtid=history.ledger[-1].gtid),
                     planned=(wrong, manifest))
    assert not (data_dir / PITR_RELAY).exists()
    assert state_of(data_dir) is DataDirState.INCOMPLETE
