"""Large transactions on the real S3 server (moto's, over HTTP), issue 18: with small thresholds
(1 MiB large, 256 KiB chunks) two ~4 MiB transactions are archived as chunked segments into a
plain and a keyed prefix at once; `archive check --verify` reads every chunk back; recoveries
to just before the second and exactly at it hold the right rows; a chunk deleted (or, keyed,
corrupted) in the bucket is refused naming the segment and the chunk, with nothing written.

The plain archive's stream is cut inside each large transaction after a few of its chunks
(the archiver stopped as a killed one would be, its chunks so far left without a record) and
resumed by an archiver cutting other chunks (a changed stream: its chunk names differ), so
each large transaction leaves orphan chunks. The first was committed two hours ago (its
session's timestamp), past the orphan grace, the second now: `backup prune` deletes every
object of the chunked record before the backup and the first's orphans, and keeps the
second's."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_archive_large import big_insert
from test_backup_faults import s3_args
from test_backup_take import KEY, backup_cli
from test_pitr import Entry, ids, ledger_primary, positions, recovered, write

from mysqlsts.archive.archiver import Archiver
from mysqlsts.cli import cli
from mysqlsts.core.backup_layout import BINLOG_SEGMENTS
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import SegmentRecord, segment_start
from mysqlsts.core.gtid import MariadbGtid, parse_mariadb
from mysqlsts.store.base import ObjectStore, read_all
from mysqlsts.store.binlog_archive import load_records, segment_names
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.countingstore import CountingStore
from tests.integration.archive_helpers import archiver_for, running, wait_archived
from tests.ports import PortPool
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

BUCKET = "large"
LARGE, CHUNK = 1 << 20, 256 << 10
RESUMED_CHUNK = 192 << 10  # the resuming archiver's: other chunks, other names
ROWS = 1000  # of 4 KiB each: a transaction of ~4 MiB of row events, 16 chunks
TRIP = 3  # chunks of a large transaction written before the stream is cut
AGO = 2 * 3600  # the first large transaction's commit, seconds before now


@dataclass(frozen=True)
class Archive:
    store: ObjectStore
    keys: BackupKeys | None
    args: tuple[str, ...]  # the CLI's arguments for it: store, S3, key

    def records(self) -> list[SegmentRecord]:
        return load_records(self.store, self.keys)

    def chunked(self, gtid: str) -> SegmentRecord:
        records = self.records()
        found = [r for r in records if r.chunks and r.domains[0].first == gtid]
        assert len(found) == 1, [(r.domains[0].first, len(r.chunks)) for r in records]
        return found[0]


@dataclass(frozen=True)
class History:
    archives: dict[str, Archive]  # "plain" (cut and resumed twice), "keyed"
    ledger: tuple[Entry, ...]
    old_gtid: str  # the large transaction before the backup, committed AGO
    new_gtid: str  # the one after it, committed now
    backup_gtid: str
    checksum: tuple[int, int]  # app.big's on the primary, as the large transactions left it
    orphans: dict[str, tuple[str, ...]]  # per large transaction: the cut stream's chunks


class Tripwire(CountingStore):
    """The store an archiver writes through; armed with a transaction's GTID, it tells the
    archiver to stop once `after` chunks of it are written: the stream ends inside the
    transaction, as a killed archiver's would."""

    def __init__(self, store: ObjectStore, after: int, stop: threading.Event) -> None:
        super().__init__(store)
        self.after, self.stop = after, stop
        self.gtid: MariadbGtid | None = None
        self.written: list[str] = []

    def arm(self, gtid: MariadbGtid) -> None:
        self.gtid = gtid

    def put_new(self, name: str, data: bytes) -> None:
        super().put_new(name, data)
        if self.gtid is not None and segment_start(name) == self.gtid:
            self.written.append(name)
            if len(self.written) == self.after:
                self.stop.set()


def next_gtid(primary: Server) -> MariadbGtid:
    [last] = parse_mariadb(str(primary.value("SELECT @@gtid_binlog_pos")))
    return replace(last, seq=last.seq + 1)


def large_insert(primary: Server, first: int, ago: int = 0) -> str:
    """ROWS rows of 4 KiB into app.big from id `first`, in one transaction committed `ago`
    seconds before now; its GTID."""
    return big_insert(primary, "app.big", ROWS, 4096, first, ago)


def plain_archiver(primary: Server, store: ObjectStore, chunk: int, start: str
                   ) -> tuple[Archiver, threading.Event]:
    archiver, stop = archiver_for(primary, store, start=start)
    archiver.settings = replace(archiver.settings, large_bytes=LARGE, chunk_bytes=chunk)
    return archiver, stop


@contextlib.contextmanager
def cut_inside(primary: Server, store: ObjectStore, chunk: int, start: str
               ) -> Iterator[Tripwire]:
    """A plain archiver run until it has written TRIP chunks of the transaction the body
    arms the wire with (and must then commit, large); the chunks it wrote of it."""
    archiver, stop = plain_archiver(primary, store, chunk, start)
    wire = Tripwire(store, TRIP, stop)
    archiver.store = wire
    with running(archiver, stop):
        yield wire
        assert wire.gtid is not None, "the wire was never armed"
        assert stop.wait(60), f"the archiver wrote {len(wire.written)} chunks of {wire.gtid}"


def s3_store(endpoint: str, secrets: Path, prefix: str) -> ObjectStore:
    return open_store(f"s3://{BUCKET}/{prefix}", S3Settings(
        endpoint=endpoint, region=REGION, path_style=True,
        access_key_file=secrets / "s3-access", secret_key_file=secrets / "s3-secret"))


@pytest.fixture(scope="module")
def history(mariadb_module: MakeServer, free_port: Callable[[], int],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    made = ledger_primary(mariadb_module, free_port(), tmp_path_factory, "large-s3")
    primary, secrets = made.primary, made.secrets_dir
    primary.sql("CREATE TABLE app.big (id INT PRIMARY KEY, pad LONGBLOB NOT NULL)")
    (secrets / "s3-access").write_text(ACCESS_KEY)
    (secrets / "s3-secret").write_text(SECRET_KEY)
    (secrets / "key").write_bytes(KEY)
    ledger: list[Entry] = []
    orphans: dict[str, tuple[str, ...]] = {}
    try:
        with S3Server(PortPool("store").one()) as s3:
            create_bucket(s3.endpoint, BUCKET)
            s3_cli = (*s3_args(s3.endpoint, secrets),)
            archives = {
                "plain": Archive(s3_store(s3.endpoint, secrets, "plain"), None,
                                 ("--store", f"s3://{BUCKET}/plain", *s3_cli)),
                "keyed": Archive(s3_store(s3.endpoint, secrets, "keyed"),
                                 BackupKeys.from_secret(KEY),
                                 ("--store", f"s3://{BUCKET}/keyed", *s3_cli,
                                  "--encryption-key-file", str(secrets / "key")))}
            plain = archives["plain"].store
            # Where both (empty) archives start: each archiver resumes from its index after.
            start = str(primary.value("SELECT @@gtid_binlog_pos"))
            keyed, keyed_stop = archiver_for(primary, archives["keyed"].store,
                                             archives["keyed"].keys, start=start,
                                             server_id=4000000002)
            keyed.settings = replace(keyed.settings, large_bytes=LARGE, chunk_bytes=CHUNK)
            with running(keyed, keyed_stop):  # all along, never cut
                with cut_inside(primary, plain, CHUNK, start) as wire:
                    write(primary, 1, 5, ledger)
                    wire.arm(next_gtid(primary))
                    old_gtid = large_insert(primary, 1, AGO)
                orphans[old_gtid] = tuple(wire.written)
                # Resumed with other chunks, then cut again inside the second.
                with cut_inside(primary, plain, RESUMED_CHUNK, start) as wire:
                    write(primary, 6, 5, ledger)
                    backup_gtid = ledger[-1].gtid
                    for archive in archives.values():
                        done = backup_cli(*archive.args, "--donor", f"127.0.0.1:{made.donor.port}",
                                          "--clone-token-file", str(secrets / "clone-token"))
                        assert done.returncode == 0, done.stderr
                    write(primary, 11, 5, ledger)
                    wire.arm(next_gtid(primary))
                    new_gtid = large_insert(primary, ROWS + 1)
                orphans[new_gtid] = tuple(wire.written)
                with running(*plain_archiver(primary, plain, CHUNK, start)):
                    write(primary, 16, 5, ledger)
                    for archive in archives.values():
                        wait_archived(archive.store, archive.keys, ledger[-1].gtid, 60)
            yield History(archives, tuple(ledger), old_gtid, new_gtid, backup_gtid,
                          primary.checksum("app.big"), orphans)
    finally:
        made.donor.stop()


@pytest.mark.parametrize("which", ["plain", "keyed"])
def test_large_transactions_are_chunked_segments_on_s3_and_archive_check_reads_them(
        history: History, which: str) -> None:
    archive = history.archives[which]
    stored = {info.name: info.size for info in archive.store.list(BINLOG_SEGMENTS)}
    for gtid in (history.old_gtid, history.new_gtid):
        record = archive.chunked(gtid)
        assert record.transactions == 1 and record.key_id == (
            archive.keys.key_id if archive.keys else "")
        assert len(record.chunks) > TRIP and record.plain_size > 3 << 20
        assert all(stored.get(c.name) == c.size for c in record.chunks)
    result = CliRunner().invoke(cli, ["archive", "check", *archive.args, "--verify"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("which", "where"), [("plain", "before"), ("plain", "at"),
                                              ("keyed", "at")])
def test_a_recovery_from_s3_holds_exactly_the_rows_through_the_target(
        history: History, mariadb_module: MakeServer, tmp_path: Path, which: str,
        where: str) -> None:
    before = history.ledger[14]  # the last small transaction before the second large one
    target = before.gtid if where == "before" else history.new_gtid
    data_dir = tmp_path / "data"
    done = backup_cli("restore", *history.archives[which].args, "--data-dir", str(data_dir),
                      "--to-gtid", target)
    assert done.returncode == 0, done.stderr
    server = recovered(mariadb_module, f"{which}-{where}", data_dir)
    try:
        assert ids(server) == {e.id for e in history.ledger if e.id <= 15}
        if where == "at":
            assert server.checksum("app.big") == history.checksum
        else:
            assert server.value(f"SELECT COUNT(*) FROM app.big WHERE id <= {ROWS}") == ROWS
            assert server.value("SELECT COUNT(*) FROM app.big") == ROWS
        assert positions(server) == (target, target)
    finally:
        server.stop()


@pytest.mark.parametrize(("which", "damage"), [("plain", "delete"), ("keyed", "delete"),
                                               ("keyed", "corrupt")])
def test_a_damaged_chunk_on_s3_is_refused_naming_the_segment_and_the_chunk(
        history: History, tmp_path: Path, which: str, damage: str) -> None:
    archive = history.archives[which]
    record = archive.chunked(history.new_gtid)
    chunk = record.chunks[3]
    original = read_all(archive.store, chunk.name)
    archive.store.delete(chunk.name)
    try:
        if damage == "corrupt":  # the same size, one byte flipped
            data = bytearray(original)
            data[len(data) // 2] ^= 0xFF
            archive.store.put_new(chunk.name, bytes(data))
        data_dir = tmp_path / "data"
        done = backup_cli("restore", *archive.args, "--data-dir", str(data_dir),
                          "--to-gtid", history.ledger[-1].gtid)
        assert done.returncode != 0
        last = done.stderr.strip().splitlines()[-1]
        assert record.segment in last and f"chunk 3 ({chunk.name})" in last, done.stderr
        assert not data_dir.exists()
        result = CliRunner().invoke(cli, ["archive", "check", *archive.args, "--verify"])
        assert result.exit_code != 0 and chunk.name in result.output, result.output
    finally:
        with contextlib.suppress(Exception):
            archive.store.delete(chunk.name)
        archive.store.put_new(chunk.name, original)
    assert read_all(archive.store, chunk.name) == original


def test_prune_on_s3_deletes_a_chunked_record_whole_and_the_orphans_past_their_grace(
        history: History, mariadb_module: MakeServer, tmp_path: Path) -> None:
    """Last in the module: it deletes what the tests above read (the archive before the
    backup). Then the latest point still recovers, the recent orphans beside its chunks."""
    archive = history.archives["plain"]
    old, new = archive.chunked(history.old_gtid), archive.chunked(history.new_gtid)
    names = set(segment_names(archive.store))
    old_orphans, new_orphans = (set(history.orphans[g])
                                for g in (history.old_gtid, history.new_gtid))
    # The cut streams' chunks are there (at least TRIP: the transaction's first LARGE bytes
    # leave as several chunks from one event), under names no record lists.
    assert all(TRIP <= len(o) < len(r.chunks) for o, r in ((old_orphans, old),
                                                            (new_orphans, new)))
    assert old_orphans | new_orphans <= names
    assert not (old_orphans | new_orphans) & set(old.objects + new.objects)

    done = backup_cli("prune", *archive.args, "--retain-window", "1m", "--retain-min", "1")
    assert done.returncode == 0, done.stderr
    assert f"orphans_deleted={len(old_orphans)}" in done.stderr, done.stderr
    after = archive.records()
    backup_seq = parse_mariadb(history.backup_gtid)[0].seq
    assert old not in after and new in after
    assert all(r.domains[0].first_seq > backup_seq for r in after)
    left = set(segment_names(archive.store))
    # Every chunk of the deleted chunked record is gone, and so are the old orphans; the
    # recent ones stay (an archiver may still be writing them), and nothing else is left.
    assert left == {n for r in after for n in r.objects} | new_orphans
    result = CliRunner().invoke(cli, ["archive", "check", *archive.args, "--verify"])
    assert result.exit_code == 0, result.output
    data_dir = tmp_path / "data"
    done = backup_cli("restore", *archive.args, "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    server = recovered(mariadb_module, "pruned-latest", data_dir)
    try:
        assert ids(server) == {e.id for e in history.ledger}
        assert server.checksum("app.big") == history.checksum
        assert positions(server) == (history.ledger[-1].gtid, history.ledger[-1].gtid)
    finally:
        server.stop()
