"""Point-in-time recovery on real MariaDB, through the real CLI (`mysqlsts backup restore
--to-gtid/--to-time`): a primary under a client ledger (every row's id, GTID and commit second
as the server stamped it), the archiver writing its binlog to a file:// store, a base backup
taken in the middle from a DonorServer. Each recovery is started as a server and must hold
exactly the ledger's rows at or before the target, none after, with gtid_binlog_pos and
gtid_slave_pos at the target's transaction; a target outside the window, and a range with a
segment missing, are refused in one line naming it before anything is written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_backup_take import KEY, backup_cli
from test_clone import BACKUP_GRANTS, BACKUP_PASSWORD, BACKUP_USER, TOKEN, Donor

from mysqlsts.adapters.datadir import state_of
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.core.datadir import IN_PROGRESS, DataDirState
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import archiver_for, running, wait_archived
from tests.ports import PortPool
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Entry:
    id: int
    gtid: str
    ts: int  # the server's second the row was written in (its binlog timestamp)


@dataclass(frozen=True)
class History:
    primary: Server
    url: str
    store_dir: Path
    backup_gtid: str
    ledger: tuple[Entry, ...]
    donor_port: int
    secrets_dir: Path


def write(server: Server, first: int, count: int, ledger: list[Entry]) -> None:
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cursor:
        for n in range(first, first + count):
            cursor.execute("INSERT INTO app.ledger (id, ts) VALUES (%s, UNIX_TIMESTAMP())", (n,))
            cursor.execute("SELECT @@last_gtid AS g, ts FROM app.ledger WHERE id = %s", (n,))
            row = cursor.fetchone()
            ledger.append(Entry(n, str(row["g"]), int(row["ts"])))


@dataclass(frozen=True)
class LedgerPrimary:
    """A primary with the backup account and an empty `app.ledger`, a donor serving it, and
    an empty file:// store: what every recovery module starts from."""

    primary: Server
    store_dir: Path
    url: str
    store: FileStore
    donor: Donor  # stop it when done
    secrets_dir: Path


def ledger_primary(mariadb_module: MakeServer, donor_port: int,
                   tmp_path_factory: pytest.TempPathFactory, name: str) -> LedgerPrimary:
    secrets_dir = tmp_path_factory.mktemp(f"{name}-secrets")
    (secrets_dir / "clone-token").write_text(TOKEN + "\n")
    primary = mariadb_module(f"{name}-primary", server_id=100)
    primary.sql(f"CREATE USER {BACKUP_USER}@'%' IDENTIFIED BY '{BACKUP_PASSWORD}'",
                f"GRANT {BACKUP_GRANTS} ON *.* TO {BACKUP_USER}@'%'",
                "CREATE DATABASE app",
                "CREATE TABLE app.ledger (id INT PRIMARY KEY, ts BIGINT NOT NULL)")
    store_dir = tmp_path_factory.mktemp(name) / "store"
    store_dir.mkdir()
    return LedgerPrimary(primary, store_dir, f"file://{store_dir}", FileStore(store_dir),
                         Donor(primary, donor_port, secrets_dir), secrets_dir)


@pytest.fixture(scope="module")
def history(mariadb_module: MakeServer, free_port: Callable[[], int],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    made = ledger_primary(mariadb_module, free_port(), tmp_path_factory, "pitr")
    primary, store_dir, url, store, donor, secrets_dir = (
        made.primary, made.store_dir, made.url, made.store, made.donor, made.secrets_dir)
    ledger: list[Entry] = []
    try:
        archiver, stop = archiver_for(primary, store)
        with running(archiver, stop):
            for batch in range(3):  # three seconds of rows before the backup
                write(primary, 1 + 10 * batch, 10, ledger)
                time.sleep(1.05)
            backup_gtid = str(primary.value("SELECT @@gtid_binlog_pos"))
            take_backup(url, donor.port, secrets_dir)
            for batch in range(3, 7):  # and four after it
                time.sleep(1.05)
                write(primary, 1 + 10 * batch, 10, ledger)
                if batch == 4:
                    # One transaction in a row-format binlog that `mariadb-binlog | mariadb`
                    # replays as two: the SQL thread applies it as one.
                    primary.sql("CREATE TABLE app.copy SELECT * FROM app.ledger")
            wait_archived(store, None, str(primary.value("SELECT @@gtid_binlog_pos")))
        yield History(primary, url, store_dir, backup_gtid, tuple(ledger), donor.port,
                      secrets_dir)
    finally:
        donor.stop()


def take_backup(url: str, port: int, secrets_dir: Path) -> None:
    done = backup_cli("--store", url, "--donor", f"127.0.0.1:{port}",
                      "--clone-token-file", str(secrets_dir / "clone-token"))
    assert done.returncode == 0, done.stderr


def recovered(mariadb_module: MakeServer, name: str, data_dir: Path) -> Server:
    return mariadb_module(name, server_id=300, data_dir=data_dir)


def ids(server: Server) -> set[int]:
    return {int(row["id"]) for row in server.sql("SELECT id FROM app.ledger")}


def positions(server: Server) -> tuple[str, str]:
    row = server.sql("SELECT @@global.gtid_binlog_pos AS b, @@global.gtid_slave_pos AS s")[0]
    return str(row["b"]), str(row["s"])


def seq(gtid: str) -> int:
    return parse_mariadb(gtid)[0].seq


def after_backup(history: History) -> list[Entry]:
    return [e for e in history.ledger if seq(e.gtid) > seq(history.backup_gtid)]


@pytest.mark.parametrize("pick", [0, 7, -1])
def test_recovery_to_a_gtid_holds_exactly_the_ledger_through_it(
        history: History, mariadb_module: MakeServer, tmp_path: Path, pick: int) -> None:
    target = after_backup(history)[pick]
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir),
                      "--to-gtid", target.gtid)
    assert done.returncode == 0, done.stderr
    assert f"gtid={target.gtid}" in done.stderr
    server = recovered(mariadb_module, f"gtid-{pick}", data_dir)
    try:
        assert ids(server) == {e.id for e in history.ledger if e.id <= target.id}
        assert positions(server) == (target.gtid, target.gtid)
        copied = server.sql("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE "
                            "TABLE_SCHEMA = 'app' AND TABLE_NAME = 'copy'")[0]["n"]
        assert copied == (1 if target.id > 50 else 0)
        if copied:
            assert {int(r["id"]) for r in server.sql("SELECT id FROM app.copy")} == set(
                range(1, 51))
        # The recovered server writes on from there under gtid_strict_mode.
        server.sql("INSERT INTO app.ledger VALUES (100000, 0)")
        assert seq(positions(server)[0]) == seq(target.gtid) + 1
    finally:
        server.stop()


def test_recovery_to_a_time_holds_exactly_the_rows_committed_at_or_before_it(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    seconds = sorted({e.ts for e in after_backup(history)})
    assert len(seconds) >= 3, seconds
    for n, second in enumerate((seconds[0], seconds[-2])):
        data_dir = tmp_path / f"data-{n}"
        when = datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z")
        done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir),
                          "--to-time", when)
        assert done.returncode == 0, done.stderr
        expected = [e for e in history.ledger if e.ts <= second]
        server = recovered(mariadb_module, f"time-{n}", data_dir)
        try:
            assert ids(server) == {e.id for e in expected}
            assert positions(server) == (expected[-1].gtid, expected[-1].gtid)
        finally:
            server.stop()


def test_a_target_outside_the_window_is_refused_naming_it_and_nothing_is_written(
        history: History, tmp_path: Path) -> None:
    before = history.ledger[0]  # archived, but before the only backup
    later = datetime.fromtimestamp(history.ledger[-1].ts + 3600, UTC).isoformat()
    for option, value in (("--to-gtid", before.gtid), ("--to-time", later),
                          ("--to-gtid", f"0-100-{seq(history.ledger[-1].gtid) + 1}")):
        data_dir = tmp_path / "data"
        done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir),
                          option, value)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "outside the recoverable window" in lines[0]
        assert history.backup_gtid in lines[0]
        assert not data_dir.exists()


def test_a_missing_segment_in_the_range_is_refused_naming_it(
        history: History, tmp_path: Path) -> None:
    copy = tmp_path / "store"
    shutil.copytree(history.store_dir, copy)
    records = sorted(load_records(FileStore(copy), None), key=lambda r: r.domains[0].first_seq)
    inside = next(r for r in records if r.domains[0].first_seq > seq(history.backup_gtid))
    (copy / inside.segment).unlink()
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", f"file://{copy}", "--data-dir", str(data_dir),
                      "--to-gtid", history.ledger[-1].gtid)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert inside.segment in lines[0] and "missing" in lines[0]
    assert not data_dir.exists()


def test_bad_targets_are_refused_in_one_line(history: History, tmp_path: Path) -> None:
    for extra in (("--to-time", "2026-12-04T10:00:00"), ("--to-gtid", "zero"),
                  ("--to-gtid", "0-1-1", "--to-time", "2026-12-04T10:00:00Z")):
        done = backup_cli("restore", "--store", history.url, "--data-dir",
                          str(tmp_path / "data"), *extra)
        assert done.returncode != 0
        assert not (tmp_path / "data").exists()


def test_a_corrupt_segment_in_the_range_is_refused_naming_it(
        history: History, tmp_path: Path) -> None:
    copy = tmp_path / "store"
    shutil.copytree(history.store_dir, copy)
    records = sorted(load_records(FileStore(copy), None), key=lambda r: r.domains[0].first_seq)
    inside = next(r for r in records if r.domains[0].first_seq > seq(history.backup_gtid))
    damaged = bytearray((copy / inside.segment).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: only its checksum tells
    (copy / inside.segment).write_bytes(bytes(damaged))
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", f"file://{copy}", "--data-dir", str(data_dir),
                      "--to-gtid", history.ledger[-1].gtid)
    assert done.returncode != 0
    assert inside.segment in done.stderr.strip().splitlines()[-1], done.stderr
    assert not data_dir.exists()


def holds_exactly_through(history: History, target: Entry, server: Server) -> None:
    """`server` (stopped here) holds exactly the ledger through `target`, at its GTID."""
    try:
        assert ids(server) == {e.id for e in history.ledger if e.id <= target.id}
        assert positions(server) == (target.gtid, target.gtid)
    finally:
        server.stop()


def kill_while_applying(url: str, data_dir: Path, gtid: str, scratch: Path) -> None:
    """`backup restore --to-gtid gtid` into `data_dir`, SIGKILLed as its apply starts (its run
    dir appears in `scratch`, its TMPDIR)."""
    scratch.mkdir()
    argv = [sys.executable, "-m", "mysqlsts", "backup", "restore", "--store", url,
            "--data-dir", str(data_dir), "--to-gtid", gtid]
    proc = subprocess.Popen(argv, env={**os.environ, "TMPDIR": str(scratch)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(scratch.glob("mysqlsts-pitr-run-*")):  # the apply is starting
            assert proc.poll() is None, "the recovery ended before its apply was seen"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_recovery_killed_while_applying_never_looks_finished_and_is_redone(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    target = history.ledger[-5]
    data_dir = tmp_path / "data"
    kill_while_applying(history.url, data_dir, target.gtid, tmp_path / "tmp")
    assert state_of(data_dir) is DataDirState.INCOMPLETE
    assert (data_dir / IN_PROGRESS).exists()
    done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir),
                      "--to-gtid", target.gtid)
    assert done.returncode == 0, done.stderr
    holds_exactly_through(history, target, recovered(mariadb_module, "killed", data_dir))


def test_an_encrypted_backup_and_archive_recover_with_their_key_only(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    keys = BackupKeys.from_secret(KEY)
    store_dir = tmp_path / "keyed"
    store_dir.mkdir()
    url = f"file://{store_dir}"
    store = FileStore(store_dir)
    archiver, stop = archiver_for(history.primary, store, keys)
    ledger: list[Entry] = []
    with running(archiver, stop):
        done = backup_cli("--store", url, "--donor", f"127.0.0.1:{history.donor_port}",
                          "--clone-token-file", str(history.secrets_dir / "clone-token"),
                          "--encryption-key-file", str(key_file))
        assert done.returncode == 0, done.stderr
        write(history.primary, 1000, 6, ledger)
        wait_archived(store, keys, ledger[-1].gtid)
    target = ledger[3]
    data_dir = tmp_path / "data"
    refused = backup_cli("restore", "--store", url, "--data-dir", str(data_dir), "--to-gtid",
                         target.gtid)
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, \
        refused.stderr
    assert not data_dir.exists()
    done = backup_cli("restore", "--store", url, "--data-dir", str(data_dir), "--to-gtid",
                      target.gtid, "--encryption-key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    server = recovered(mariadb_module, "keyed", data_dir)
    try:
        held = ids(server)
        assert {n for n in held if n >= 1000} == {1000, 1001, 1002, 1003}
        assert positions(server) == (target.gtid, target.gtid)
    finally:
        server.stop()


# -- the latest point: no target given -------------------------------------------------------

def holds_exactly(mariadb_module: MakeServer, name: str, data_dir: Path, rows: set[int],
                  gtid: str) -> None:
    """The recovered data dir, started, holds exactly `rows` with its GTID state at `gtid`."""
    server = recovered(mariadb_module, name, data_dir)
    try:
        assert ids(server) == rows
        assert positions(server) == (gtid, gtid)
    finally:
        server.stop()


def listed_backups(url: str) -> list[dict[str, str]]:
    done = backup_cli("list", "--store", url, "--json")
    assert done.returncode == 0, done.stderr
    backups: list[dict[str, str]] = json.loads(done.stdout)["backups"]
    return backups


def test_a_restore_with_no_target_recovers_to_the_last_archived_transaction(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    last = history.ledger[-1]  # the archive's last transaction (the archiver stopped after it)
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    applied = seq(last.gtid) - seq(history.backup_gtid)
    assert lines[0].startswith(f"restore: no target: the latest point, {last.gtid}, committed "
                               f"{datetime.fromtimestamp(last.ts, UTC):%Y-%m-%dT%H:%M:%S}Z"), lines
    assert f"and {applied} archived transactions, where the archive's contiguous run ends" \
        in lines[0] and "gap" not in lines[0]
    assert f"gtid={last.gtid} (the latest)" in lines[-1]
    assert re.search(rf"replay done transactions={applied} seconds=[\d.]+ rate=[\d.]+/s",
                     lines[-1]), lines[-1]
    holds_exactly(mariadb_module, "latest", data_dir, {e.id for e in history.ledger},
                  last.gtid)


def test_a_named_backup_with_no_target_restores_that_backup_alone(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    [listed] = [b for b in listed_backups(history.url) if b["gtid"] == history.backup_gtid]
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", history.url, "--data-dir", str(data_dir),
                      "--backup", listed["id"])
    assert done.returncode == 0, done.stderr
    assert "latest" not in done.stderr and "archived transactions" not in done.stderr
    assert f"restore complete: backup {listed['id']} gtid={history.backup_gtid}" in done.stderr
    server = recovered(mariadb_module, "named", data_dir)
    try:
        assert ids(server) == {e.id for e in history.ledger
                               if seq(e.gtid) <= seq(history.backup_gtid)}
    finally:
        server.stop()


def _store_copy(history: History, tmp_path: Path) -> tuple[Path, list[SegmentRecord]]:
    copy = tmp_path / "store"
    shutil.copytree(history.store_dir, copy)
    records = sorted(load_records(FileStore(copy), None), key=lambda r: r.domains[0].first_seq)
    return copy, [r for r in records if r.domains[0].first_seq > seq(history.backup_gtid)]


def test_a_gap_after_the_backup_ends_the_latest_point_before_it_and_is_named(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    copy, after = _store_copy(history, tmp_path)
    assert len(after) >= 3, [r.segment for r in after]
    end, lost, resumes = after[0], after[1], after[2]
    (copy / lost.segment).unlink()  # a segment never archived: its index record goes too
    (copy / lost.index_name).unlink()
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", f"file://{copy}", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    said = done.stderr.strip().splitlines()[0]
    assert f"the latest point, {end.domains[0].last}," in said, said
    assert f"a gap follows, the archive resumes at {resumes.domains[0].first}" in said, said
    holds_exactly(mariadb_module, "gap", data_dir,
                  {e.id for e in history.ledger if seq(e.gtid) <= end.domains[0].last_seq},
                  end.domains[0].last)


def test_with_no_target_a_missing_segment_is_refused_naming_it_and_nothing_is_written(
        history: History, tmp_path: Path) -> None:
    copy, after = _store_copy(history, tmp_path)
    (copy / after[0].segment).unlink()  # indexed, but gone from the store
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", f"file://{copy}", "--data-dir", str(data_dir))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert after[0].segment in lines[0] and "--backup ID" in lines[0]
    assert not data_dir.exists()


def test_the_clone_step_given_a_bare_store_url_recovers_to_the_latest_point(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    """mysql-0's init container with `MYSQLSTS_FROM_BACKUP=URL` and no target (a set created
    from the store): the same latest point as `backup restore`, through MYSQLSTS_* only."""
    last = history.ledger[-1]
    data_dir = tmp_path / "mysql-0"
    password_file = tmp_path / "root-password"
    password_file.write_text(history.primary.root_password + "\n")
    env = {"POD_NAME": "mysql-0", "MYSQLSTS_DATA_DIR": str(data_dir),
           "MYSQLSTS_FROM_BACKUP": history.url,
           "MYSQLSTS_ROOT_PASSWORD_FILE": str(password_file),
           "MYSQLSTS_HTTP_PORT": str(PortPool("store").one()), "MYSQLSTS_SRV_NAME": ""}
    done = subprocess.run([sys.executable, "-m", "mysqlsts", "clone"], text=True,
                          capture_output=True, timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    applied = seq(last.gtid) - seq(history.backup_gtid)
    assert f"restore: no target: the latest point, {last.gtid}, committed" in done.stderr
    assert f"replay done transactions={applied} " in done.stderr, done.stderr
    holds_exactly(mariadb_module, "clone-latest", data_dir, {e.id for e in history.ledger},
                  last.gtid)
