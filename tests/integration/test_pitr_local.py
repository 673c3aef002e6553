"""`mysqlsts local restore --dir NEW --from URL --to-gtid G | --to-time T` on real local sets:
a one-pod set under a client ledger, archived to its store by its own sidecar (`local up
--store`), a `local backup` in the middle; the recovered set's mysql-0
holds exactly the ledger's rows through the target and stands at its GTID; a target outside
the window is one line and creates nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import wait_archived
from tests.localset import LocalSet, LocalSetFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pitr-local") / "store"


@pytest.fixture(scope="module")
def source(local_set_module: LocalSetFactory, store: Path) -> LocalSet:
    return local_set_module(replicas=1, up_args=("--store", f"file://{store}"))


def write(source: LocalSet, first: int, count: int,
          ledger: list[tuple[int, str, int]]) -> None:
    conn = source.connect(0)
    try:
        with conn.cursor() as cursor:
            for n in range(first, first + count):
                cursor.execute("INSERT INTO app.ledger (id, ts) VALUES (%s, UNIX_TIMESTAMP())",
                               (n,))
                cursor.execute("SELECT @@last_gtid, ts FROM app.ledger WHERE id = %s", (n,))
                gtid, ts = cursor.fetchone()
                ledger.append((n, str(gtid), int(ts)))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def ledger(source: LocalSet, store: Path) -> Iterator[tuple[tuple[int, str, int], ...]]:
    source.sql(0, "CREATE DATABASE app",
               "CREATE TABLE app.ledger (id INT PRIMARY KEY, ts BIGINT NOT NULL)")
    # The set archives on its own (`local up --store`: mysql-0's sidecar in a set of one).
    written: list[tuple[int, str, int]] = []
    write(source, 1, 10, written)
    source.run("backup", "--dir", str(source.directory))
    for batch in range(1, 4):
        time.sleep(1.05)
        write(source, 1 + 10 * batch, 10, written)
    wait_archived(FileStore(store), None, str(source.value(0, "SELECT @@gtid_binlog_pos")))
    yield tuple(written)


def restored(local_set_module: LocalSetFactory) -> Iterator[LocalSet]:
    target = local_set_module.unstarted()
    with target.brought_down():
        yield target


@pytest.fixture
def target_set(local_set_module: LocalSetFactory) -> Iterator[LocalSet]:
    yield from restored(local_set_module)


def test_local_restore_to_a_gtid(ledger: tuple[tuple[int, str, int], ...], store: Path,
                                 target_set: LocalSet) -> None:
    row_id, gtid, _ = ledger[24]
    target_set.run("restore", "--dir", str(target_set.directory), "--from", f"file://{store}",
                   "--to-gtid", gtid, "--base-port", str(target_set.base_port),
                   "--timeout", "600")
    [pod] = target_set.wait_ready(1, timeout=60)
    assert pod["role"] == "primary" and pod["ready"], pod
    ids = {int(r[0]) for r in target_set.sql(0, "SELECT id FROM app.ledger")}
    assert ids == set(range(1, row_id + 1))
    assert target_set.value(0, "SELECT @@gtid_slave_pos") == gtid
    # The binlog moves on from the target (the sidecar's own writes come after it).
    binlog = str(target_set.value(0, "SELECT @@gtid_binlog_pos"))
    assert int(binlog.split("-")[2]) >= int(gtid.split("-")[2]), binlog


def test_local_restore_to_a_time(ledger: tuple[tuple[int, str, int], ...], store: Path,
                                 target_set: LocalSet) -> None:
    second = ledger[15][2]
    when = datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z")
    target_set.run("restore", "--dir", str(target_set.directory), "--from", f"file://{store}",
                   "--to-time", when, "--base-port", str(target_set.base_port),
                   "--timeout", "600")
    target_set.wait_ready(1, timeout=60)
    ids = {int(r[0]) for r in target_set.sql(0, "SELECT id FROM app.ledger")}
    assert ids == {row_id for row_id, _, ts in ledger if ts <= second}


def test_local_restore_outside_the_window_creates_nothing(
        ledger: tuple[tuple[int, str, int], ...], store: Path, source: LocalSet,
        tmp_path: Path) -> None:
    directory = tmp_path / "never"
    done = source.run("restore", "--dir", str(directory), "--from", f"file://{store}",
                      "--to-gtid", ledger[0][1], check=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "outside the recoverable window" in lines[0], done.stderr
    assert not (directory / "spec.json").exists()


def test_backup_list_reports_the_window_to_the_last_archived_commit(
        ledger: tuple[tuple[int, str, int], ...], store: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mysqlsts", "backup", "list", "--store",
                           f"file://{store}", "--json"], capture_output=True, text=True,
                          timeout=60, check=True)
    listed = json.loads(done.stdout)
    window = listed["recoverable"]
    assert window["from"] == listed["backups"][0]["end_time"]
    # The archive carries it past the backup: to the last archived commit, every time between.
    assert datetime.fromisoformat(window["to"]).timestamp() >= ledger[-1][2]
    assert window["continuous"] is True and window["archived_segments"] >= 1


def test_local_restore_with_no_target_recovers_to_the_latest_point(
        ledger: tuple[tuple[int, str, int], ...], store: Path, source: LocalSet,
        target_set: LocalSet) -> None:
    archived = str(source.value(0, "SELECT @@gtid_binlog_pos"))
    wait_archived(FileStore(store), None, archived)  # the sidecar's own writes too
    done = target_set.run("restore", "--dir", str(target_set.directory), "--from",
                          f"file://{store}", "--base-port", str(target_set.base_port),
                          "--timeout", "600")
    said = [line for line in done.stderr.splitlines() if "no target" in line]
    assert len(said) == 1 and said[0].startswith("local restore: no target: the latest point, "
                                                 "0-"), done.stderr
    assert "where the archive's contiguous run ends" in said[0], said
    chosen = said[0].split("the latest point, ", 1)[1].split(",", 1)[0]
    # Pinned to that point (a re-created mysql-0 recovers to the same one).
    assert f"to the latest recoverable point, GTID {chosen}" in done.stderr
    target_set.wait_ready(1, timeout=60)
    ids = {int(r[0]) for r in target_set.sql(0, "SELECT id FROM app.ledger")}
    assert ids == {row_id for row_id, _, _ in ledger}
    # At least as far as the archive was when asked (the source set writes on meanwhile).
    assert int(archived.split("-")[2]) <= int(chosen.split("-")[2]), (archived, chosen)
    assert target_set.value(0, "SELECT @@gtid_slave_pos") == chosen
