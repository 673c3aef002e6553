"""The archive index's checkpoints (core/binlog_checkpoint.py, store/archive_checkpoints.py,
archive/compact.py): sealed like a record, an edited one refused in one line naming it, and a
reader through the newest checkpoint returns exactly what reading every record returns, over
random histories of writes, checkpoints and retention's deletes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mysqlsts.archive.archiver import Archiver, ArchiveSettings
from mysqlsts.archive.compact import compact
from mysqlsts.cli import cli
from mysqlsts.clone.point_in_time import choose_latest, fetch
from mysqlsts.core import binlog_checkpoint as bc
from mysqlsts.core import binlog_event as ev
from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS, BINLOG_INDEX
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import SegmentRecord, parse_record
from mysqlsts.store.archive_checkpoints import (
    checkpoint_names,
    read_chain,
    remove_stale,
    write_checkpoint,
)
from mysqlsts.store.base import ObjectStore, StoreError, read_all
from mysqlsts.store.binlog_archive import (
    IndexCache,
    index_names,
    load_index,
    load_records,
    remove_segment,
    seal_segment,
    write_segment,
)
from mysqlsts.store.filestore import FileStore
from tests.countingstore import CountingStore
from tests.unit.test_backup_list import write_backup
from tests.unit.test_binlog_core import fde, txn
from tests.unit.test_pitr_plan import make_segment, transaction

KEYS = BackupKeys.from_secret(b"a secret of thirty-two bytes....")


def full_read(store: ObjectStore, keys: BackupKeys | None) -> list[SegmentRecord]:
    """What load_records returned before checkpoints: every listed record, one GET each."""
    seal_key = keys.seal_key if keys else None
    return [parse_record(n, read_all(store, n), seal_key) for n in index_names(store)]


def chain_held(store: ObjectStore, keys: BackupKeys | None = None) -> set[str]:
    """The index names the chain of checkpoints a reader takes holds."""
    return {r.index_name for c in read_chain(store, keys) for r in c.records}


def write(store: ObjectStore, seq: int, keys: BackupKeys | None = None) -> SegmentRecord:
    record, stored = seal_segment(make_segment([transaction(seq, 1000 + seq)]), keys)
    write_segment(store, record, stored, keys)
    return record


@pytest.mark.parametrize("keys", [None, KEYS], ids=["plain", "keyed"])
def test_a_checkpoint_round_trips_and_names_sort_by_serial(keys: BackupKeys | None) -> None:
    records = [seal_segment(make_segment([transaction(s, 1000 + s)]), keys)[0]
               for s in (3, 1, 2)]
    seal_key = keys.seal_key if keys else None
    name, stored = bc.render_checkpoint(7, records, keys.key_id if keys else "", seal_key)
    parsed = bc.parse_checkpoint(name, stored, seal_key)
    assert parsed.serial == 7 and bc.checkpoint_serial(name) == 7
    assert list(parsed.records) == sorted(records, key=lambda r: r.index_name)
    later, _ = bc.render_checkpoint(10, records, keys.key_id if keys else "", seal_key)
    assert sorted([later, name]) == [name, later]
    assert bc.newest_checkpoint([later, name, "binlog/checkpoints/notes.txt"]) == later


def _edited(stored: bytes, edit: str) -> bytes:
    """The checkpoint with a record's transactions changed or its last record dropped, its
    seal line kept (a header line, then lines of rows: a row's fifth field is its
    transactions)."""
    head, *lines, seal = zstandard.ZstdDecompressor().decompress(stored).split(b"\n")
    rows = json.loads(lines[-1])
    if edit == "record":
        rows[0][4] += 1
    else:
        rows.pop()
    lines[-1] = json.dumps(rows).encode()
    return zstandard.ZstdCompressor().compress(b"\n".join([head, *lines, seal]))


@pytest.mark.parametrize("keys", [None, KEYS], ids=["plain", "keyed"])
@pytest.mark.parametrize("edit", ["record", "dropped"])
def test_an_edited_checkpoint_is_refused_naming_it(tmp_path: Path, keys: BackupKeys | None,
                                                   edit: str) -> None:
    store = FileStore(tmp_path)
    for seq in range(1, 4):
        write(store, seq, keys)
    name = compact(store, keys, always=True).written
    assert name is not None
    (tmp_path / name).write_bytes(_edited((tmp_path / name).read_bytes(), edit))
    with pytest.raises(bc.CheckpointError) as caught:
        load_records(store, keys)
    assert str(caught.value) == (f"archive checkpoint {name} fails its seal (edited, torn, or "
                                 "sealed with another key)")
    (tmp_path / name).write_bytes(b"not zstd")
    with pytest.raises(bc.CheckpointError, match=f"^archive checkpoint {name} does not parse"):
        load_records(store, keys)


def test_a_checkpoint_is_refused_under_the_wrong_key_or_without_one(tmp_path: Path) -> None:
    name, stored = bc.render_checkpoint(1, [], KEYS.key_id, KEYS.seal_key)
    other = BackupKeys.from_secret(b"another secret of 32 bytes......")
    with pytest.raises(bc.CheckpointError, match="fails its seal"):
        bc.parse_checkpoint(name, stored, other.seal_key)
    with pytest.raises(bc.CheckpointError, match="no key was given"):
        bc.parse_checkpoint(name, stored, None)
    plain_name, plain = bc.render_checkpoint(1, [], "", None)
    with pytest.raises(bc.CheckpointError, match="is not encrypted, yet a key was given"):
        bc.parse_checkpoint(plain_name, plain, KEYS.seal_key)
    renamed = plain_name.replace("000000000001-", "000000000002-")
    with pytest.raises(bc.CheckpointError, match="not what its name and key say"):
        bc.parse_checkpoint(renamed, plain, None)


def test_merge_takes_only_listed_records_and_reads_the_rest() -> None:
    records = [seal_segment(make_segment([transaction(s, 1000 + s)]), None)[0]
               for s in range(1, 5)]
    name, stored = bc.render_checkpoint(1, records[:3], "", None)
    checkpoint = bc.parse_checkpoint(name, stored, None)
    listed = [r.index_name for r in records[1:]]  # record 1 deleted by retention
    found, rest, held = bc.merge(listed, [checkpoint])
    assert list(found) == [r.index_name for r in records[1:3]]
    assert rest == [records[3].index_name] and held == (2,)
    assert bc.merge(listed, []) == ({}, listed, ())
    # A delta on it holding record 4: the chain holds every listed record, each counted once.
    delta_name, delta = bc.render_checkpoint(1, records[1:], "", None, on=name)
    chain = [checkpoint, bc.parse_checkpoint(delta_name, delta, None)]
    found, rest, held = bc.merge(listed, chain)
    assert list(found) == listed and rest == [] and held == (2, 1)


def test_a_reader_gets_one_checkpoint_and_the_records_after_it(tmp_path: Path) -> None:
    store = CountingStore(FileStore(tmp_path))
    for seq in range(1, 41):
        write(store, seq)
    assert compact(store, None).written is None  # 40 records: not due
    written = compact(store, None, always=True).written
    assert written is not None
    for seq in range(41, 46):
        write(store, seq)
    store.gets.clear()
    index = load_index(store, None)
    assert store.gets[0] == written and len(store.gets) == 1 + 5
    assert index.records == full_read(store, None)
    assert index.covered == 40
    assert str(compact(store, None)) == ("no checkpoint written: 5 of 45 records are not in "
                                         "the newest checkpoints")


def test_the_index_cache_seeds_from_the_checkpoint_then_reads_only_new_records(
        tmp_path: Path) -> None:
    store = CountingStore(FileStore(tmp_path))
    records = [write(store, seq) for seq in range(1, 31)]
    compact(store, None, always=True)
    cache = IndexCache(store, None)
    store.gets.clear()
    assert cache.records() == records
    assert len(store.gets) == 1  # the checkpoint
    remove_segment(store, records[0])
    records.append(write(store, 31))
    store.gets.clear()
    assert cache.records() == records[1:]
    assert store.gets == [records[-1].index_name]  # no checkpoint again, one record


def test_prune_keeps_the_newest_two_checkpoints(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    made = []
    for seq in range(1, 5):
        write(store, seq)
        made.append(compact(store, None, always=True).written)
    assert remove_stale(store, dry_run=True) == made[:2]
    assert checkpoint_names(store) == made
    assert remove_stale(store) == made[:2]
    assert checkpoint_names(store) == made[2:]
    assert remove_stale(store) == []


# Each step: write a few segments, compact (the due rule chooses the level), write a checkpoint
# at a level chosen at random (a base, or a delta on any checkpoint of the chain), delete a
# record (retention), delete a checkpoint (a person), or prune the checkpoints (retention).
STEP = st.one_of(st.tuples(st.just("write"), st.integers(1, 4)),
                 st.tuples(st.just("checkpoint"), st.just(0)),
                 st.tuples(st.just("level"), st.integers(0, 50)),
                 st.tuples(st.just("delete"), st.integers(0, 50)),
                 st.tuples(st.just("drop"), st.integers(0, 50)),
                 st.tuples(st.just("prune"), st.just(0)))


def checkpoint_at(store: FileStore, keys: BackupKeys | None, level: int) -> None:
    """A checkpoint at `level` of the chain (clipped to a delta on the deepest), holding
    every listed record its parents do not, whatever the due rule says."""
    index = load_index(store, keys)
    level = min(level, len(index.chain))
    above = {r.index_name for c in index.chain[:level] for r in c.records}
    serial = index.chain[level].serial + 1 if level < len(index.chain) else 1
    write_checkpoint(store, keys, serial, [r for r in index.records if r.index_name not in above],
                     index.chain[level - 1].name if level else "")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=20), keyed=st.booleans())
def test_reading_through_checkpoints_equals_reading_every_record(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]],
        keyed: bool) -> None:
    keys = KEYS if keyed else None
    store = FileStore(tmp_path_factory.mktemp("history"))
    cache = IndexCache(store, keys)
    seq = 0
    for kind, n in steps:
        if kind == "write":
            for _ in range(n):
                seq += 1
                write(store, seq, keys)
        elif kind == "checkpoint":
            compact(store, keys, always=True)
        elif kind == "level":
            checkpoint_at(store, keys, n % 4)
        elif kind == "delete":
            listed = full_read(store, keys)
            if listed:
                remove_segment(store, listed[n % len(listed)])
        elif kind == "drop":
            names = checkpoint_names(store)
            if names:
                store.delete(names[n % len(names)])
        else:
            remove_stale(store)
        expected = full_read(store, keys)
        assert load_records(store, keys) == expected
        assert cache.records() == expected
        assert IndexCache(store, keys).records() == expected


class FakeStream:
    """A primary's binary log of `count` one-transaction events, each cut into its own
    segment (max_bytes=1); the archiver is stopped once the last is read."""

    def __init__(self, count: int, stop: threading.Event) -> None:
        self.count, self.stop = count, stop

    def open(self, position: str) -> None:
        self.first = int(position.rsplit("-", 1)[1]) + 1 if position else 1

    def events(self) -> Iterator[ev.Event]:
        yield ev.parse_event(fde(), checksum=True)
        for seq in range(self.first, self.count + 1):
            for data in txn(seq, ts=1000 + seq):
                if seq == self.count and data == txn(seq, ts=1000 + seq)[-1]:
                    self.stop.set()  # checked after each event: the last one is read
                yield ev.parse_event(data, checksum=True)

    def close(self) -> None:
        pass


def archive(store: FileStore, count: int, stream: type[FakeStream] = FakeStream) -> Archiver:
    """An archiver run over a primary whose binary log holds transactions 1..`count` (an
    empty archive starts after 0-100-0), until it has archived the last."""
    stop = threading.Event()
    archiver = Archiver(store, None, lambda: stream(count, stop), lambda: "0-100-0",  # type: ignore[arg-type, return-value]
                        ArchiveSettings(max_bytes=1), stop)
    archiver.run()
    return archiver


def test_the_archiver_writes_a_checkpoint_after_its_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bc, "CHECKPOINT_RECORDS", 10)
    store = FileStore(tmp_path)
    assert archive(store, 25).state.segments == 25
    # Written beside the archiving: at 10 records, and once 10 more are not in it.
    names = checkpoint_names(store)
    assert 1 <= len(names) <= 2
    held = len(chain_held(store))
    assert 10 <= held <= 25
    assert load_records(store, None) == full_read(store, None)
    # A restarted archiver counts the records after the newest checkpoint: one is due by 40.
    assert archive(store, 40).state.segments == 15
    more = checkpoint_names(store)
    assert len(more) > len(names)
    assert len(chain_held(store)) > held


class SlowCheckpoints(FileStore):
    """A file store whose checkpoint writes take a while, and fail first (a 503)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.attempts = 0
        self.archived_meanwhile: list[int] = []  # records written during each attempt

    def put_new(self, name: str, data: bytes) -> None:
        if name.startswith(BINLOG_CHECKPOINTS):
            self.attempts += 1
            before = len(list(index_names(self)))
            time.sleep(0.3)
            self.archived_meanwhile.append(len(list(index_names(self))) - before)
            if self.attempts == 1:
                raise StoreError("store: 503 Slow Down (injected)")
        super().put_new(name, data)


class SlowStream(FakeStream):
    """A primary writing a transaction every 2 ms."""

    def events(self) -> Iterator[ev.Event]:
        for event in super().events():
            if event.type == ev.GTID:
                time.sleep(0.002)
            yield event


def test_a_slow_or_failing_checkpoint_holds_up_no_segment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bc, "CHECKPOINT_RECORDS", 10)
    store = SlowCheckpoints(tmp_path)
    assert archive(store, 400, SlowStream).state.segments == 400
    assert store.attempts >= 2  # the failed one was tried again
    assert store.archived_meanwhile[0] > 0  # segments went on while the first was written
    assert chain_held(store) <= set(index_names(store))
    assert load_records(store, None) == full_read(store, None)


def test_archive_compact_writes_one_and_says_so(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    for seq in range(1, 4):
        write(store, seq)
    runner = CliRunner()
    done = runner.invoke(cli, ["archive", "compact", "--store", f"file://{tmp_path}"])
    assert done.exit_code == 0, done.output
    (name,) = checkpoint_names(store)
    assert f"archive compact: wrote {name} holding 3 records" in done.output
    again = runner.invoke(cli, ["archive", "compact", "--store", f"file://{tmp_path}"])
    assert "no checkpoint written: 0 of 3 records" in again.output
    assert f"archive compact: wrote {name} holding 3 records (a base)" in done.output
    write(store, 4)
    check = runner.invoke(cli, ["archive", "check", "--store", f"file://{tmp_path}"])
    assert check.exit_code == 0, check.output
    assert check.output.splitlines()[1] == (f"index: 4 records, 3 of them read from checkpoint "
                                            f"{name}")
    (tmp_path / name).write_bytes(b"edited")
    bad = runner.invoke(cli, ["archive", "check", "--store", f"file://{tmp_path}"])
    assert bad.exit_code != 0
    assert f"archive checkpoint {name} does not parse" in bad.output


def test_a_restore_with_no_target_reads_the_index_once(tmp_path: Path) -> None:
    store = CountingStore(FileStore(tmp_path))
    write_backup(store, datetime(2026, 12, 1, 3, 0, tzinfo=UTC), "aaaaaa", "0-100-5")
    for seq in range(1, 21):
        write(store, seq)
    store.gets.clear()
    latest = choose_latest(store, None)
    assert latest.plan is not None and len(latest.plan.segments) == 15
    records = [n for n in store.gets if n.startswith(BINLOG_INDEX)]
    assert len(records) == 20  # each record once (no checkpoint yet)
    store.gets.clear()
    relay = tmp_path / "relay"
    relay.mkdir()
    recovery = fetch(store, None, latest.plan, latest.manifest, relay, latest.records)
    assert [n for n in store.gets if n.startswith(BINLOG_INDEX)] == []  # not again
    assert recovery.position == "0-100-20"


def test_prune_deletes_old_checkpoints_after_the_records(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    first = int((now - timedelta(days=11)).timestamp())
    made = []
    for low in range(0, 20, 5):  # 1..5, 6..10, 11..15, 16..20, a checkpoint after each
        segment = make_segment([transaction(s, first + s * 3600) for s in range(low + 1,
                                                                                low + 6)])
        write_segment(store, *seal_segment(segment, None), None)
        made.append(compact(store, None, always=True).written)
    write_backup(store, now - timedelta(days=1), "cccccc", "0-100-12")
    done = CliRunner().invoke(cli, ["backup", "prune", "--store", f"file://{tmp_path}",
                                    "--retain-window", "7d", "--retain-min", "1"])
    assert done.exit_code == 0, done.output
    assert "segments_deleted=2 segments_kept=2 orphans_deleted=0 checkpoints_deleted=2" in (
        done.output)
    assert checkpoint_names(store) == made[2:]
    assert load_records(store, None) == full_read(store, None)
    assert [r.domains[0].first for r in load_records(store, None)] == ["0-100-11", "0-100-16"]


class PrunedMeanwhile(FileStore):
    """A store in which the newest checkpoint listed is deleted (and a newer one written)
    just before a reader GETs it."""

    pruned = False

    def get(self, name: str) -> Iterator[bytes]:
        if name.startswith(BINLOG_CHECKPOINTS) and not self.pruned:
            self.pruned = True
            compact(FileStore(self.root), None, always=True)  # a newer one...
            self.delete(name)  # ...and the one listed deleted
        return super().get(name)


def test_a_checkpoint_pruned_between_the_listing_and_the_get_is_looked_for_again(
        tmp_path: Path) -> None:
    store = PrunedMeanwhile(tmp_path)
    for seq in range(1, 4):
        write(store, seq)
    compact(FileStore(tmp_path), None, always=True)
    write(store, 4)
    index = load_index(store, None)
    assert index.checkpoint is not None and len(index.checkpoint.records) == 4
    assert index.records == full_read(store, None)
