"""A transaction of any size is archived and recovered (issue 18), on real MariaDB: with small
thresholds (1 MiB large, 256 KiB chunks), a ~20 MiB transaction among small ones is archived as
a chunked segment; `archive check --verify` reads every chunk; recoveries to the latest point,
to the transaction just before it and to it exactly hold exactly the right rows; a chunk
corrupted or deleted in the store makes the recovery refuse, naming the segment and the chunk,
with nothing left behind."""

from __future__ import annotations

import contextlib
import shutil
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_backup_take import backup_cli
from test_pitr import Entry, ids, ledger_primary, positions, recovered, take_backup, write

from mysqlsts.cli import cli
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.core.binlog_segment import CHUNK as CHUNK_DEFAULT
from mysqlsts.store.binlog_archive import load_records, read_chunks
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import archiver_for, running, wait_archived
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

ROWS = 5000  # of 4 KiB each: a transaction of ~20 MiB of row events
LARGE, CHUNK = 1 << 20, 256 << 10


@dataclass(frozen=True)
class Large:
    url: str
    store_dir: Path
    ledger: tuple[Entry, ...]
    big_gtid: str  # the large transaction's
    record: SegmentRecord  # its record


def big_insert(primary: Server, table: str, rows: int, size: int, first: int = 1,
               ago: int = 0) -> str:
    """One INSERT ... SELECT of `rows` rows of `size` bytes each, ids from `first`, committed
    `ago` seconds before now (the session's timestamp); its GTID."""
    with contextlib.closing(primary.connect()) as conn, conn.cursor() as cursor:
        if ago:
            cursor.execute("SET timestamp = UNIX_TIMESTAMP() - %s", (ago,))
        cursor.execute(f"INSERT INTO {table} (id, pad) SELECT seq + {first - 1}, "
                       f"REPEAT(MD5(seq), {size // 32}) FROM app.seq_1_to_{rows}")
        cursor.execute("SELECT @@last_gtid AS g")
        row = cursor.fetchone()
        assert row is not None
        return str(row["g"])


@pytest.fixture(scope="module")
def large(mariadb_module: MakeServer, free_port: Callable[[], int],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Large]:
    made = ledger_primary(mariadb_module, free_port(), tmp_path_factory, "large")
    made.primary.sql("CREATE TABLE app.big (id INT PRIMARY KEY, pad LONGBLOB NOT NULL)")
    ledger: list[Entry] = []
    try:
        archiver, stop = archiver_for(made.primary, made.store)
        archiver.settings = replace(archiver.settings, large_bytes=LARGE, chunk_bytes=CHUNK)
        with running(archiver, stop):
            write(made.primary, 1, 10, ledger)
            take_backup(made.url, made.donor.port, made.secrets_dir)
            write(made.primary, 11, 10, ledger)
            time.sleep(1.05)  # its own second: a time target before it is exact
            big_gtid = big_insert(made.primary, "app.big", ROWS, 4096)
            time.sleep(1.05)
            write(made.primary, 21, 10, ledger)
            records = wait_archived(made.store, None,
                                    str(made.primary.value("SELECT @@gtid_binlog_pos")), 60)
        [record] = [r for r in records if r.chunks]
        yield Large(made.url, made.store_dir, tuple(ledger), big_gtid, record)
    finally:
        made.donor.stop()


def test_the_large_transaction_is_one_chunked_segment_and_archive_check_reads_it(
        large: Large) -> None:
    record = large.record
    assert record.domains[0].first == large.big_gtid and record.transactions == 1
    assert record.plain_size > 19 << 20
    assert len(record.chunks) == -(-record.plain_size // CHUNK)
    assert all(c.plain_size == CHUNK for c in record.chunks[:-1])
    # The small ones around it stay plain segments.
    small = [r for r in load_records(FileStore(large.store_dir), None) if not r.chunks]
    assert sum(r.transactions for r in small) >= 10
    result = CliRunner().invoke(cli, ["archive", "check", "--store", large.url, "--verify"])
    assert result.exit_code == 0, result.output


def restore(large: Large, mariadb_module: MakeServer, tmp_path: Path, name: str,
            *target: str) -> Server:
    data_dir = tmp_path / name
    done = backup_cli("restore", "--store", large.url, "--data-dir", str(data_dir), *target)
    assert done.returncode == 0, done.stderr
    return recovered(mariadb_module, name, data_dir)


def big_rows(server: Server) -> int:
    return int(server.value("SELECT COUNT(*) FROM app.big"))


@pytest.mark.parametrize("where", ["latest", "before", "at"])
def test_recovery_holds_exactly_the_rows_through_the_target(
        large: Large, mariadb_module: MakeServer, tmp_path: Path, where: str) -> None:
    before = large.ledger[19]  # the last small transaction before the large one
    target = {"latest": (), "before": ("--to-gtid", before.gtid),
              "at": ("--to-gtid", large.big_gtid)}[where]
    server = restore(large, mariadb_module, tmp_path, where, *target)
    try:
        through = {"latest": large.ledger[-1].id, "before": 20, "at": 20}[where]
        assert ids(server) == {e.id for e in large.ledger if e.id <= through}
        assert big_rows(server) == (0 if where == "before" else ROWS)
        gtid = {"latest": large.ledger[-1].gtid, "before": before.gtid,
                "at": large.big_gtid}[where]
        assert positions(server) == (gtid, gtid)
    finally:
        server.stop()


def test_a_time_target_in_the_large_transactions_second_includes_it(
        large: Large, mariadb_module: MakeServer, tmp_path: Path) -> None:
    server = restore(large, mariadb_module, tmp_path, "time", "--to-time",
                     large.record.last_commit)
    try:
        assert big_rows(server) == ROWS
        assert ids(server) == {e.id for e in large.ledger if e.id <= 20}
    finally:
        server.stop()


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_a_damaged_chunk_is_refused_naming_the_segment_and_the_chunk(
        large: Large, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "store"
    shutil.copytree(large.store_dir, copy)
    chunk = large.record.chunks[3]
    if damage == "corrupt":
        data = bytearray((copy / chunk.name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (copy / chunk.name).write_bytes(bytes(data))
    else:
        (copy / chunk.name).unlink()
    data_dir = tmp_path / "data"
    done = backup_cli("restore", "--store", f"file://{copy}", "--data-dir", str(data_dir),
                      "--to-gtid", large.ledger[-1].gtid)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert large.record.segment in last and f"chunk 3 ({chunk.name})" in last, done.stderr
    assert not data_dir.exists()
    result = CliRunner().invoke(cli, ["archive", "check", "--store", f"file://{copy}",
                                      "--verify"])
    assert result.exit_code != 0 and chunk.name in result.output, result.output


HUGE_ROWS = 2300  # of 64 KiB each: ~144 MiB, over the 128 MiB the archive once refused


def test_a_transaction_over_128_mib_is_archived_with_bounded_memory(
        mariadb_module: MakeServer, tmp_path: Path) -> None:
    """The default sizes (16 MiB chunks): the archiver's peak Python memory while it archives
    the transaction stays far under its size (tracemalloc, over what it held before)."""
    primary = mariadb_module("huge-primary", server_id=100)
    primary.sql("CREATE DATABASE app",
                "CREATE TABLE app.big (id INT PRIMARY KEY, pad LONGBLOB NOT NULL)")
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archiver, stop = archiver_for(primary, store,
                                  start=str(primary.value("SELECT @@gtid_binlog_pos")))
    tracemalloc.start()
    try:
        with running(archiver, stop):
            primary.sql("INSERT INTO app.big VALUES (0, 'streaming')")
            wait_archived(store, None, str(primary.value("SELECT @@gtid_binlog_pos")))
            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]
            gtid = big_insert(primary, "app.big", HUGE_ROWS, 64 << 10)
            records = wait_archived(store, None, gtid, 120)
            peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    [record] = [r for r in records if r.chunks]
    assert record.domains[0].first == gtid and record.plain_size > 128 << 20
    assert len(record.chunks) == -(-record.plain_size // CHUNK_DEFAULT)
    # About two chunks (the events not yet cut and a chunk as it is joined; then a chunk and
    # its compressed copy): 33 MiB measured, whatever the transaction's size.
    assert peak < 3 * CHUNK_DEFAULT, (f"the archiver held {peak >> 20} MiB for a "
                             f"{record.plain_size >> 20} MiB transaction")
    assert sum(len(c) for c in read_chunks(store, record, None)) == record.plain_size
