"""The binlog archive on real MariaDB: the replication client, the archiver writing segments
to a file:// store, replay of the segments into a second server, kills and store failures."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlsts.adapters.binlog_stream import BinlogStream
from mysqlsts.cli import cli
from mysqlsts.core import binlog_event as ev
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import breaks
from mysqlsts.core.binlog_segment import Grouper
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.store.base import StoreError
from mysqlsts.store.binlog_archive import load_records, read_segment
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import (
    archive_cli_env,
    archiver_for,
    make_app_table,
    replay,
    running,
    source,
    wait_archived,
    write_rows,
)
from tests.servers import MakeServer


def test_the_stream_starts_after_the_position_and_yields_whole_transactions(
        mariadb: MakeServer) -> None:
    primary = mariadb("p", server_id=100)
    primary.sql("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT)")
    write_rows(primary, 1, 3)
    start = primary.value("SELECT @@gtid_binlog_pos")
    write_rows(primary, 4, 2)
    primary.sql("ALTER TABLE app.t ADD COLUMN w INT")
    stream = BinlogStream(source(primary), primary.root_password)
    stream.open(start)
    grouper, seen = Grouper(), []
    try:
        for event in itertools.islice(stream.events(), 200):
            transaction = grouper.feed(event)
            if transaction is not None:
                seen.append(transaction)
            if len(seen) == 3:
                break
    finally:
        stream.close()
    base = int(start.split("-")[2])
    assert [str(t.gtid) for t in seen] == [f"0-100-{base + n}" for n in (1, 2, 3)]
    assert all(t.data.startswith(t.data[:19]) for t in seen)
    assert grouper.description is not None and grouper.description.checksum


def test_a_quiet_primary_sends_heartbeats(mariadb: MakeServer) -> None:
    primary = mariadb("p", server_id=100)
    stream = BinlogStream(source(primary), primary.root_password)
    stream.open(primary.value("SELECT @@gtid_binlog_pos"))
    try:
        kinds = [e.type for e in itertools.islice(stream.events(), 8)]
    finally:
        stream.close()
    assert ev.HEARTBEAT in kinds



# -- the archiver --------------------------------------------------------------------------

def test_segments_appear_within_two_seconds_and_replay_to_equal_tables(
        mariadb: MakeServer, tmp_path: Path) -> None:
    primary = mariadb("p", server_id=100)
    restored = mariadb("r", server_id=200)  # the same starting point: the same template
    assert primary.value("SELECT @@gtid_binlog_pos") == restored.value(
        "SELECT @@gtid_binlog_pos")
    store = FileStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    keys = BackupKeys.from_secret(b"k" * 32)
    archiver, stop = archiver_for(primary, store, keys)
    with running(archiver, stop):
        time.sleep(0.5)
        make_app_table(primary)
        delays = []
        for n in range(1, 6):
            write_rows(primary, n * 100, 20)
            committed = time.monotonic()
            wait_archived(store, keys, primary.value("SELECT @@gtid_binlog_pos"))
            delays.append(time.monotonic() - committed)
        primary.sql("UPDATE app.t SET v = CONCAT(v, '!') WHERE id % 3 = 0",
                    "DELETE FROM app.t WHERE id % 7 = 0",
                    # Not CREATE ... SELECT: one group on the primary, which `mariadb-binlog |
                    # mariadb` replays as two (the DDL commits), one GTID more than archived.
                    "CREATE TABLE app.u (k INT PRIMARY KEY)",
                    "INSERT INTO app.u SELECT id FROM app.t")
        records = wait_archived(store, keys, primary.value("SELECT @@gtid_binlog_pos"))
    assert max(delays) < 2.5, delays
    assert breaks(records) == []
    assert sum(r.transactions for r in records) == archiver.state.transactions
    replay(records, store, keys, restored, tmp_path / "replay")
    for table in ("app.t", "app.u"):
        assert restored.checksum(table) == primary.checksum(table)
    assert restored.value("SELECT @@gtid_binlog_pos") == primary.value(
        "SELECT @@gtid_binlog_pos")


class FlakyStore:
    """A real file store that fails the first writes of each kind it is told to."""

    def __init__(self, inner: FileStore, fail_segments: int, fail_index: int) -> None:
        self.inner = inner
        self.left = {"binlog/segments/": fail_segments, "binlog/index/": fail_index}
        self.failed = 0

    def put_new(self, name: str, data: bytes) -> None:
        for prefix, left in self.left.items():
            if name.startswith(prefix) and left > 0:
                self.left[prefix] = left - 1
                self.failed += 1
                raise StoreError(f"store {self.describe()}: 503 Slow Down (injected)")
        self.inner.put_new(name, data)

    def __getattr__(self, name: str) -> Callable[..., object]:
        return getattr(self.inner, name)  # type: ignore[no-any-return]


def test_store_failures_are_retried_and_no_half_segment_is_taken_for_whole(
        mariadb: MakeServer, tmp_path: Path) -> None:
    primary = mariadb("p", server_id=100)
    (tmp_path / "store").mkdir()
    flaky = FlakyStore(FileStore(tmp_path / "store"), fail_segments=2, fail_index=3)
    make_app_table(primary)
    archiver, stop = archiver_for(primary, flaky,  # type: ignore[arg-type]
                                  None, start=primary.value("SELECT @@gtid_binlog_pos"))
    with running(archiver, stop):
        write_rows(primary, 1, 50)
        records = wait_archived(flaky.inner, None, primary.value("SELECT @@gtid_binlog_pos"))
    assert flaky.failed == 5 and archiver.state.store_failures == 5
    assert breaks(records) == []
    assert sum(r.transactions for r in records) == 50
    # Every segment a record names opens; a segment without a record is not in the archive.
    for record in records:
        assert read_segment(flaky.inner, record, None)


def test_a_killed_archiver_resumes_without_duplicates_gaps_or_overwrites(
        mariadb: MakeServer, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    primary = mariadb("p", server_id=100)
    restored = mariadb("r", server_id=200)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    # A killed holder's lease expires before its successor may write: keep it short.
    env = archive_cli_env(primary, tmp_path / "store",
                          primary.value("SELECT @@gtid_binlog_pos") or "oldest", 1)
    log = (tmp_path / "archiver.log").open("ab")
    request.addfinalizer(log.close)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "mysqlsts", "archive"], env=env,
                                stdout=log, stderr=log, start_new_session=True)

    make_app_table(primary)
    done = threading.Event()
    written = [0]

    def writer() -> None:
        with contextlib.closing(primary.connect()) as conn, conn.cursor() as cursor:
            while not done.is_set():
                written[0] += 1
                cursor.execute("INSERT INTO app.t (id, v) VALUES (%s, REPEAT('x', 300))",
                               (written[0],))
                time.sleep(0.002)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    rng = random.Random(18)
    process = start()
    try:
        for _ in range(24):  # some before the first segment, most while segments are written
            time.sleep(rng.uniform(0.2, 1.5))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            process = start()
        done.set()
        thread.join(timeout=10)
        records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"), 60)
    finally:
        done.set()
        if process.poll() is None:
            process.terminate()
            assert process.wait(timeout=30) == 0
    assert breaks(records) == []
    assert sum(r.transactions for r in records) == written[0] + 2  # + CREATE DATABASE/TABLE
    replay(records, store, None, restored, tmp_path / "replay")
    assert restored.checksum("app.t") == primary.checksum("app.t")
    assert restored.value("SELECT @@gtid_binlog_pos") == primary.value(
        "SELECT @@gtid_binlog_pos")



def test_a_new_primary_continues_the_same_archive_by_gtid(
        mariadb: MakeServer, tmp_path: Path) -> None:
    """mysql-0 goes, its replica takes over: the archive follows the GTIDs, not file names."""
    old = mariadb("old", server_id=100)
    new = mariadb("new", server_id=101)
    restored = mariadb("r", server_id=200)
    start = old.value("SELECT @@gtid_binlog_pos")
    new.sql("STOP SLAVE", f"SET GLOBAL gtid_slave_pos = '{start}'",
            f"CHANGE MASTER TO master_host='{old.host}', master_port={old.port}, "
            f"master_user='root', master_password='{old.root_password}', "
            "master_use_gtid=slave_pos", "START SLAVE")
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archiver, stop = archiver_for(old, store, start=start or "oldest")
    with running(archiver, stop):
        make_app_table(old)
        write_rows(old, 1, 30)
        wait_archived(store, None, old.value("SELECT @@gtid_binlog_pos"))
    deadline = time.monotonic() + 30
    while new.value("SELECT @@gtid_slave_pos") != old.value("SELECT @@gtid_binlog_pos"):
        assert time.monotonic() < deadline, new.sql("SHOW SLAVE STATUS")
        time.sleep(0.1)
    old.stop()
    new.sql("STOP SLAVE", "RESET SLAVE ALL")
    write_rows(new, 100, 30)  # 0-101-N, continuing domain 0's sequence
    archiver, stop = archiver_for(new, store)
    with running(archiver, stop):
        records = wait_archived(store, None, new.value("SELECT @@gtid_binlog_pos"))
    assert archiver.state.duplicates == 0 and archiver.state.gaps == 0
    assert breaks(records) == []
    servers = {parse_mariadb(r.domains[0].first)[0].server_id for r in records}
    assert servers == {100, 101}
    replay(records, store, None, restored, tmp_path / "replay")
    assert restored.checksum("app.t") == new.checksum("app.t")
    assert restored.value("SELECT @@gtid_binlog_pos") == new.value("SELECT @@gtid_binlog_pos")


def test_a_lost_segment_is_a_named_gap_when_the_archiver_resumes(
        mariadb: MakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    primary = mariadb("p", server_id=100)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    make_app_table(primary)
    archiver, stop = archiver_for(primary, store, progress_every=0,
                                  start=primary.value("SELECT @@gtid_binlog_pos"))
    with caplog.at_level("INFO"), running(archiver, stop):
        for n in range(3):
            write_rows(primary, n * 10, 5)
            wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
            time.sleep(1.2)  # one segment per batch
        records = load_records(store, None)
    assert len(records) >= 3
    newest = primary.value("SELECT @@gtid_binlog_pos")
    assert f"transactions archived, position {newest}, newest commit" in caplog.text
    lost = records[1]
    store.delete(lost.index_name)
    store.delete(lost.segment)
    archiver, stop = archiver_for(primary, store)
    with caplog.at_level("WARNING"):
        archiver.resume()
    assert archiver.state.gaps == 1
    expected = f"gap, seq {lost.domains[0].first_seq}..{lost.domains[0].last_seq} missing"
    assert expected in caplog.text
    # `archive check` names it too, and with --verify a segment that does not match its record.
    url = f"file://{tmp_path / 'store'}"
    result = CliRunner().invoke(cli, ["archive", "check", "--store", url])
    assert result.exit_code == 1
    assert result.output.startswith(f"domain 0: {records[0].domains[0].first} .. "
                                    f"{newest}, ")
    assert expected in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: archive check: 1 problems in {url}")
    damaged = records[2].segment
    data = bytearray((tmp_path / "store" / damaged).read_bytes())
    (tmp_path / "store" / damaged).unlink()
    data[-1] ^= 1
    store.put_new(damaged, bytes(data))
    result = CliRunner().invoke(cli, ["archive", "check", "--store", url, "--verify"])
    assert result.exit_code == 1
    assert f"segment {damaged}: archive segment {damaged} is not the one its index record " \
           "describes" in result.output
    assert "2 problems" in result.output


def test_a_purged_position_is_reported_with_the_servers_reason(
        mariadb: MakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    old = primary.value("SELECT @@gtid_binlog_pos")
    write_rows(primary, 1, 5)
    primary.sql("FLUSH BINARY LOGS")
    current = primary.sql("SHOW MASTER STATUS")[0]["File"]
    deadline = time.monotonic() + 10  # purged once InnoDB's binlog checkpoint has moved on
    while len(primary.sql(f"PURGE BINARY LOGS TO '{current}'", "SHOW BINARY LOGS")) > 1:
        assert time.monotonic() < deadline, primary.sql("SHOW BINARY LOGS")
        time.sleep(0.1)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archiver, stop = archiver_for(primary, store, start=old)
    with caplog.at_level("WARNING"), running(archiver, stop):
        deadline = time.monotonic() + 10
        while "cannot stream from this position: (1236)" not in caplog.text:
            assert time.monotonic() < deadline, (caplog.text, archiver.state)
            time.sleep(0.1)
    assert list(store.list()) == []
    assert primary.root_password not in caplog.text


def test_a_jump_in_the_sequence_is_archived_and_named_as_a_gap_between_records(
        mariadb: MakeServer, tmp_path: Path) -> None:
    """A transaction that does not follow the archived one in its domain (here the primary's
    own `SET gtid_seq_no` jump; a lost range looks the same) is archived, never skipped, and
    the gap falls between two records."""
    primary = mariadb("p", server_id=100)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    make_app_table(primary)
    archiver, stop = archiver_for(primary, store,
                                  start=primary.value("SELECT @@gtid_binlog_pos"))
    base = int(primary.value("SELECT @@gtid_binlog_pos").split("-")[2])
    with running(archiver, stop):
        time.sleep(0.5)
        with contextlib.closing(primary.connect()) as conn, conn.cursor() as cursor:
            # One burst, well inside one segment's second: the archiver splits it at the gap.
            cursor.execute("INSERT INTO app.t VALUES (1, 'a')")
            cursor.execute(f"SET SESSION gtid_seq_no = {base + 10}")
            cursor.execute("INSERT INTO app.t VALUES (2, 'b')")
            cursor.execute("INSERT INTO app.t VALUES (3, 'c')")
        records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    assert archiver.state.gaps == 1
    assert sum(r.transactions for r in records) == 3
    [gap] = breaks(records)
    assert str(gap) == (f"domain 0: gap, seq {base + 2}..{base + 9} missing between "
                        f"0-100-{base + 1} and 0-100-{base + 10}")


def test_xa_transactions_and_statements_of_every_kind_are_archived_whole(
        mariadb: MakeServer, tmp_path: Path) -> None:
    """XA (PREPARE, then COMMIT or ROLLBACK by xid), DDL, non-transactional writes (Aria),
    explicit ROLLBACK: every group the primary logs ends where the archiver thinks it does."""
    primary = mariadb("p", server_id=100)
    restored = mariadb("r", server_id=200)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archiver, stop = archiver_for(primary, store,
                                  start=primary.value("SELECT @@gtid_binlog_pos") or "oldest")
    with running(archiver, stop):
        make_app_table(primary)
        primary.sql("CREATE TABLE app.aria (id INT PRIMARY KEY) ENGINE=Aria",
                    "INSERT INTO app.aria VALUES (1), (2)",
                    "XA START 'x1'", "INSERT INTO app.t VALUES (1, 'xa')", "XA END 'x1'",
                    "XA PREPARE 'x1'", "XA COMMIT 'x1'",
                    "XA START 'x2'", "INSERT INTO app.t VALUES (2, 'xa')", "XA END 'x2'",
                    "XA PREPARE 'x2'", "XA ROLLBACK 'x2'",
                    "XA START 'x3'", "INSERT INTO app.t VALUES (3, 'one phase')",
                    "XA END 'x3'", "XA COMMIT 'x3' ONE PHASE",
                    "BEGIN", "INSERT INTO app.t VALUES (4, 'b')", "INSERT INTO app.aria "
                    "VALUES (3)", "ROLLBACK",
                    "ALTER TABLE app.t ADD COLUMN w INT DEFAULT 7")
        records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    assert breaks(records) == []
    assert archiver.state.gaps == 0
    replay(records, store, None, restored, tmp_path / "replay")
    for table in ("app.t", "app.aria"):
        assert restored.checksum(table) == primary.checksum(table)
    assert restored.value("SELECT @@gtid_binlog_pos") == primary.value(
        "SELECT @@gtid_binlog_pos")


def test_transactions_larger_than_a_segment_and_a_packet_are_archived_whole(
        mariadb: MakeServer, tmp_path: Path) -> None:
    """A 24 MiB transaction (more than a segment's 8 MiB) and a 17 MiB row (one event split
    over several protocol packets) each land whole in one segment."""
    primary = mariadb("p", server_id=100, extra_cnf="max_allowed_packet=256M\n")
    restored = mariadb("r", server_id=200, extra_cnf="max_allowed_packet=256M\n")
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archiver, stop = archiver_for(primary, store,
                                  start=primary.value("SELECT @@gtid_binlog_pos") or "oldest")
    with running(archiver, stop):
        primary.sql("CREATE DATABASE app",
                    "CREATE TABLE app.big (id INT PRIMARY KEY, v LONGBLOB)")
        primary.sql("BEGIN", *(f"INSERT INTO app.big VALUES ({n}, REPEAT(SHA2({n}, 256), "
                                f"{1024 * 1024 // 64}))" for n in range(1, 25)), "COMMIT")
        primary.sql(f"INSERT INTO app.big VALUES (100, REPEAT('z', {17 * 1024 * 1024}))")
        records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"), 60)
    assert breaks(records) == []
    assert max(r.plain_size for r in records) > 17 * 1024 * 1024
    replay(records, store, None, restored, tmp_path / "replay")
    assert restored.checksum("app.big") == primary.checksum("app.big")
    assert restored.value("SELECT @@gtid_binlog_pos") == primary.value(
        "SELECT @@gtid_binlog_pos")
