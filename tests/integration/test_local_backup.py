"""`local up --store`, `local backup` and `local restore` on real local sets: a backup taken
from the set's replica, restored into a new one-pod set with its own secrets, whose sidecar
logs in and whose data is the backup's; bad input is one line and creates nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.binlog_index import breaks
from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.lease_objects import ObjectLeaseStore
from tests.integration.archive_helpers import wait_archived
from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Not made here: `local up --store file://...` makes a missing directory.
    return tmp_path_factory.mktemp("bk") / "store"


@pytest.fixture(scope="module")
def source(local_set_module: LocalSetFactory, store: Path) -> LocalSet:
    return local_set_module(replicas=2, up_args=("--store", f"file://{store}"))


@pytest.fixture(scope="module")
def restored_set(local_set_module: LocalSetFactory) -> Iterator[LocalSet]:
    """A directory and ports for a set the test makes with `local restore`."""
    target = local_set_module.unstarted()
    with target.brought_down():
        yield target


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mysqlsts_command(), *args], text=True, capture_output=True,
                          timeout=900)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def positions(gtid: str) -> dict[int, tuple[int, int]]:
    """A MariaDB GTID position as {domain: (server_id, seq)}."""
    parsed = [tuple(int(n) for n in one.split("-")) for one in gtid.split(",") if one]
    return {domain: (server, seq) for domain, server, seq in parsed}


def test_status_shows_the_store(source: LocalSet, store: Path) -> None:
    assert source.status()["store"] == f"file://{store}"
    assert store.is_dir()


def test_the_set_archives_its_binary_log_into_its_store(source: LocalSet, store: Path) -> None:
    """`local up --store` runs the archiver as the pods would: mysql-1's sidecar holds the
    archive lease and rows written on mysql-0 are archived within seconds."""
    objects = FileStore(store)
    deadline = time.monotonic() + 120
    while not load_records(objects, None):  # the heartbeat writes every second
        assert time.monotonic() < deadline, "nothing archived\n" + source.diagnostics()
        time.sleep(0.2)
    lease, _ = ObjectLeaseStore(objects, BINLOG_LOCK).read(5)
    assert lease is not None and lease.holder.startswith("mysql-1/"), lease
    source.sql(0, "CREATE DATABASE IF NOT EXISTS archived",
               "CREATE TABLE archived.t (id INT PRIMARY KEY)",
               "INSERT INTO archived.t VALUES (1), (2), (3)")
    written = source.value(0, "SELECT @@gtid_binlog_pos")
    records = wait_archived(objects, None, written, timeout=5)
    assert breaks(records) == []


def test_backup_then_restore_into_a_new_set(source: LocalSet, store: Path,
                                            restored_set: LocalSet) -> None:
    source.sql(0, "CREATE DATABASE app",
               "CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40))",
               "INSERT INTO app.items SELECT seq, CONCAT('item-', seq) FROM app.seq_1_to_3000",
               # A second GTID domain: the restored primary must carry it in its binlog state.
               "SET SESSION gtid_domain_id = 7",
               "INSERT INTO app.items VALUES (3001, 'domain 7')")
    source.wait_caught_up([1])
    rows_sum = source.sql(0, "CHECKSUM TABLE app.items")[0][1]

    taken = source.run("backup", "--dir", str(source.directory))
    backup_id = taken.stdout.strip()
    assert "donor=mysql-1" in taken.stderr, taken.stderr  # the replica, not the primary
    listed = json.loads(cli("backup", "list", "--store", f"file://{store}", "--json").stdout)
    [backup] = [b for b in listed["backups"] if b["id"] == backup_id]

    restored_set.run("restore", "--dir", str(restored_set.directory), "--from",
                     f"file://{store}", "--backup", backup_id,
                     "--base-port", str(restored_set.base_port), "--timeout", "600")
    [pod] = restored_set.wait_ready(1, timeout=60)
    assert pod["role"] == "primary" and pod["ready"], pod  # its own sidecar logs in
    assert restored_set.status()["restored_from"] == f"file://{store}@{backup_id}"

    # Its own secrets: the source's root password no longer opens the restored data.
    assert restored_set.root_password != source.root_password
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(host="127.0.0.1", port=restored_set.base_port, user="root",
                        password=source.root_password, connect_timeout=5)
    assert refused.value.args[0] == 1045

    # The backup's data at the backup's GTID, and the new primary's writes continue from it.
    assert restored_set.sql(0, "CHECKSUM TABLE app.items")[0][1] == rows_sum
    record = json.loads((restored_set.data_dir(0) / "mysqlsts-clone.json").read_text())
    assert record["gtid"] == backup["gtid"]
    backed_up = positions(backup["gtid"])
    assert backed_up[7] == (100, 1), backup
    now = positions(restored_set.value(0, "SELECT @@gtid_binlog_pos"))
    assert now[7] == (100, 1), now  # a domain the restored primary never wrote to itself
    assert now[0][0] == 100 and now[0][1] > backed_up[0][1], now  # its writes continue
    seq = backed_up[0][1]

    # A set without a store: `local backup` is one line.
    line = one_line(restored_set.run("backup", "--dir", str(restored_set.directory),
                                     check=False))
    assert "has no store" in line and "local up --store" in line, line
    # Given one by `up`, the one-pod set backs up from its primary, past the backup's GTID.
    second_store = store.parent / "restored-store"
    restored_set.run("up", "--dir", str(restored_set.directory), "--store",
                     f"file://{second_store}")
    second = restored_set.run("backup", "--dir", str(restored_set.directory))
    assert "donor=mysql-0" in second.stderr, second.stderr
    [again] = json.loads(cli("backup", "list", "--store", f"file://{second_store}",
                             "--json").stdout)["backups"]
    assert again["id"] == second.stdout.strip()
    assert positions(again["gtid"])[0][1] > seq, again


def test_restore_into_an_existing_set_is_refused(source: LocalSet, store: Path) -> None:
    spec = (source.directory / "spec.json").read_text()
    line = one_line(source.run("restore", "--dir", str(source.directory), "--from",
                               f"file://{store}", check=False))
    assert "already a local set" in line, line
    assert (source.directory / "spec.json").read_text() == spec
    assert all(pod["ready"] for pod in source.status()["pods"])


def test_restore_from_a_store_without_backups_creates_nothing(
        source: LocalSet, tmp_path: Path) -> None:
    empty = tmp_path / "empty-store"
    empty.mkdir()
    target = tmp_path / "new"
    line = one_line(source.run("restore", "--dir", str(target), "--from", f"file://{empty}",
                               check=False))
    assert "holds no backup" in line, line
    assert not target.exists()
    # A backup id the store does not hold, in the source's store, is the same.
    line = one_line(source.run("restore", "--dir", str(target), "--from",
                               f"file://{source.status()['store'].removeprefix('file://')}",
                               "--backup", "20200101T000000Z-000000", check=False))
    assert "holds no backup 20200101T000000Z-000000" in line, line
    assert not target.exists()


def test_up_with_a_bad_store_url_creates_nothing(source: LocalSet, tmp_path: Path) -> None:
    target = tmp_path / "bad"
    line = one_line(source.run("up", "--dir", str(target), "--store", "ftp://host/x",
                               check=False))
    assert "s3:// or file://" in line, line
    assert not target.exists()


@pytest.fixture
def failed_set(local_set_module: LocalSetFactory) -> Iterator[LocalSet]:
    target = local_set_module.unstarted()
    with target.brought_down():
        yield target


def test_a_restore_of_a_corrupt_part_fails_in_one_line_and_never_looks_finished(
        source: LocalSet, store: Path, failed_set: LocalSet, tmp_path: Path) -> None:
    backup_id = source.run("backup", "--dir", str(source.directory)).stdout.strip()
    copy = tmp_path / "corrupt-store"
    shutil.copytree(store, copy)
    part = copy / "backups" / backup_id / "part-000001"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size: only the checksum can tell
    part.write_bytes(bytes(data))

    done = failed_set.run(
        "restore", "--dir", str(failed_set.directory), "--from", f"file://{copy}",
        "--base-port", str(failed_set.base_port), "--timeout", "300", check=False)
    # The sizes check out, so the set is made; its progress goes to stderr, then one error.
    assert done.returncode != 0, done.stdout
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: mysql-0 failed"), done.stderr
    assert "part-000001 is corrupt" in line, line
    data_dir = failed_set.data_dir(0)
    assert not (data_dir / "mysqlsts-clone.json").exists()  # nothing passes for restored
    assert not any(pod["ready"] for pod in failed_set.status()["pods"])
