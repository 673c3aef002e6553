"""`mysqlsts backup prune` over a real archive, on a file:// store and on moto's S3 server: the
backup retention no longer needs goes and so do the archive's segments before the oldest kept
backup, and a recovery to a point inside the window still holds exactly its rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_backup_faults import s3_args
from test_backup_take import backup_cli
from test_clone import BACKUP_GRANTS, BACKUP_PASSWORD, BACKUP_USER, TOKEN, Donor

from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.binlog_archive import load_records, segment_names
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.integration.archive_helpers import (
    archiver_for,
    make_app_table,
    running,
    wait_archived,
    write_rows,
)
from tests.ports import PortPool
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

WINDOW = 60  # seconds: `--retain-window 1m`, the smallest there is


def _store(kind: str, s3: S3Server | None, secrets: Path, tmp_path: Path
           ) -> tuple[ObjectStore, list[str]]:  # the store, and the CLI's arguments for it
    if s3 is None:
        (tmp_path / "store").mkdir()
        return FileStore(tmp_path / "store"), ["--store", f"file://{tmp_path / 'store'}"]
    (secrets / "s3-access").write_text(ACCESS_KEY)
    (secrets / "s3-secret").write_text(SECRET_KEY)
    create_bucket(s3.endpoint, "prune")
    store = open_store("s3://prune/set", S3Settings(
        endpoint=s3.endpoint, region=REGION, path_style=True,
        access_key_file=secrets / "s3-access", secret_key_file=secrets / "s3-secret"))
    return store, ["--store", "s3://prune/set", *s3_args(s3.endpoint, secrets)]


def _backup(args: list[str], donor: Donor, secrets: Path, primary: Server) -> str:
    gtid = str(primary.value("SELECT @@gtid_binlog_pos"))
    done = backup_cli(*args, "--donor", f"127.0.0.1:{donor.port}", "--clone-token-file",
                      str(secrets / "clone-token"))
    assert done.returncode == 0, done.stderr
    return gtid


def backed_up_primary(mariadb: MakeServer, tmp_path: Path) -> tuple[Server, Path]:
    """A primary with the backup account, and a secrets dir holding the clone token."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "clone-token").write_text(TOKEN + "\n")
    primary = mariadb("primary", server_id=100)
    primary.sql(f"CREATE USER {BACKUP_USER}@'%' IDENTIFIED BY '{BACKUP_PASSWORD}'",
                f"GRANT {BACKUP_GRANTS} ON *.* TO {BACKUP_USER}@'%'")
    return primary, secrets


def _seq(gtid: str) -> int:
    return parse_mariadb(gtid)[0].seq


def test_prune_deletes_old_segments_and_the_window_still_recovers(
        mariadb: MakeServer, free_port: Callable[[], int], tmp_path: Path) -> None:
    """One history archived into a file:// store and into moto's S3 at once (one wait for the
    window to pass), then each store pruned and recovered from."""
    primary, secrets = backed_up_primary(mariadb, tmp_path)
    make_app_table(primary)
    donor = Donor(primary, free_port(), secrets)
    try:
        with S3Server(PortPool("store").one()) as s3:
            stores = [_store("file", None, secrets, tmp_path), _store("s3", s3, secrets, tmp_path)]
            file_archiver, s3_archiver = (archiver_for(primary, store, server_id=4000000001 + n)
                                          for n, (store, _) in enumerate(stores))
            with running(*file_archiver), running(*s3_archiver):
                for batch in range(3):  # rows in several segments before each backup
                    write_rows(primary, 1 + 10 * batch, 10)
                    time.sleep(1.05)
                for _, args in stores:
                    _backup(args, donor, secrets, primary)
                write_rows(primary, 31, 10)
                time.sleep(1.05)
                kept_gtid = [_backup(args, donor, secrets, primary) for _, args in stores][0]
                write_rows(primary, 41, 10)
                # Both backups out of the window: the newer is the base its oldest point needs.
                time.sleep(WINDOW + 2)
                write_rows(primary, 51, 10)
                target = str(primary.value("SELECT @@gtid_binlog_pos"))
                write_rows(primary, 61, 10)
                for store, _ in stores:
                    wait_archived(store, None, str(primary.value("SELECT @@gtid_binlog_pos")))
            for n, (store, args) in enumerate(stores):
                _prune(store, args, kept_gtid)
                _recover(args, target, mariadb, tmp_path, f"recovered-{n}")
    finally:
        donor.stop()


def _prune(store: ObjectStore, args: list[str], kept_gtid: str) -> None:
    before = load_records(store, None)
    objects = sorted(info.name for info in store.list())
    prune = ["prune", *args, "--retain-window", "1m", "--retain-min", "1"]

    dry = backup_cli(*prune, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stderr and "archive segments" in dry.stderr
    assert sorted(info.name for info in store.list()) == objects

    done = backup_cli(*prune)
    assert done.returncode == 0, done.stderr
    after = load_records(store, None)
    assert [m.gtid for m in read_catalog(store).backups] == [kept_gtid]
    gone = [r for r in before if r not in after]
    assert gone and all(r.domains[0].last_seq <= _seq(kept_gtid) for r in gone)
    assert all(r.domains[0].last_seq > _seq(kept_gtid) for r in after)
    assert sorted(segment_names(store)) == sorted(r.segment for r in after)  # no orphan
    assert f"segments_deleted={len(gone)}" in done.stderr


def _recover(args: list[str], target: str, mariadb: MakeServer, tmp_path: Path,
             name: str) -> None:
    """A point inside the window: recovered exactly from the kept backup and what is left."""
    data_dir = tmp_path / name
    restored = backup_cli("restore", *args, "--data-dir", str(data_dir), "--to-gtid", target)
    assert restored.returncode == 0, restored.stderr
    server = mariadb(name, server_id=300, data_dir=data_dir)
    assert {int(row["id"]) for row in server.sql("SELECT id FROM app.t")} == set(range(1, 61))
    assert server.value("SELECT @@gtid_binlog_pos") == target


def test_prune_stops_on_a_damaged_index_record_before_deleting_anything(
        tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put_new("binlog/index/0000000000-00000000000000000001-0000000100-abababababababab"
                  ".json", b"{not json")
    store.put_new("backups/20200101T000000Z-aaaaaa/part-000001", b"x")  # incomplete: old
    done = backup_cli("prune", "--store", f"file://{tmp_path}", "--retain-window", "1m")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: archive index record")
    assert len(list(store.list())) == 2
