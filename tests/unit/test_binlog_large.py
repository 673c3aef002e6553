"""A transaction of any size is archived (issue 18): past `large` bytes its segment content
leaves in chunks as it arrives (core/binlog_segment.py), its record lists them (FORMAT 2,
core/binlog_index.py), checkpoints hold it, retention and the orphan cleaning see every chunk,
and the archiver writes chunks only for a transaction it does not already hold."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.adapters.binlog_stream import StreamError
from mysqlsts.archive.archiver import Archiver, ArchiveSettings
from mysqlsts.core import binlog_checkpoint as bc
from mysqlsts.core import binlog_event as ev
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import (
    FORMAT,
    FORMAT_CHUNKED,
    IndexError_,
    SegmentRecord,
    StoredChunk,
    chunk_name,
    make_chunked_record,
    parse_record,
    render_record,
    segment_start,
)
from mysqlsts.core.binlog_segment import Chunk, LargeEnd, Output, Segment, Segmenter
from mysqlsts.core.gtid import MariadbGtid
from mysqlsts.core.pitr import Cutter, Plan, large_transaction
from mysqlsts.core.segment_retention import plan_segments
from mysqlsts.store.base import read_all
from mysqlsts.store.binlog_archive import (
    load_records,
    read_chunks,
    read_segment,
    remove_segment,
    segment_names,
)
from mysqlsts.store.filestore import FileStore
from tests.unit.test_binlog_core import events, fde, gtid, query, record_of, rows, txn, xid

LARGE, CHUNK = 1000, 300
KEYS = BackupKeys.from_secret(b"a secret of thirty-two bytes....")


def big(seq: int, row_events: int, size: int = 200, ts: int = 1000) -> list[bytes]:
    return [gtid(seq, ts=ts), query(b"BEGIN", ts), *[rows(size) for _ in range(row_events)],
            xid(ts)]


def run(segmenter: Segmenter, datas: list[bytes]) -> list[Output]:
    out: list[Output] = []
    for event in events(*datas):
        out.extend(segmenter.feed(event, 0.0))
    return [*out, *segmenter.flush()]


def whole(description: ev.Event, datas: list[bytes]) -> bytes:
    """The segment content a transaction held whole makes."""
    [segment] = [o for o in run(Segmenter(max_seconds=100, large=1 << 40), [fde(), *datas])
                 if isinstance(o, Segment)]
    assert segment.description.body == description.body
    return segment.content()


def test_a_large_transaction_leaves_in_chunks_in_stream_order() -> None:
    stream = [fde(), *txn(1), *big(2, 20), *txn(3)]
    out = run(Segmenter(max_seconds=100, large=LARGE, chunk=CHUNK), stream)
    kinds = [type(o).__name__ for o in out]
    # The pending segment (transaction 1) first, then the chunks, the end, and transaction 3.
    assert kinds[0] == "Segment" and kinds[-2:] == ["LargeEnd", "Segment"], kinds
    first, last = out[0], out[-1]
    assert isinstance(first, Segment) and isinstance(last, Segment)
    assert [t.gtid.seq for t in first.transactions] == [1]
    assert [t.gtid.seq for t in last.transactions] == [3]
    chunks = [o for o in out if isinstance(o, Chunk)]
    [end] = [o for o in out if isinstance(o, LargeEnd)]
    assert [c.index for c in chunks] == list(range(len(chunks))) == list(range(end.chunks))
    assert all(len(c.data) == CHUNK for c in chunks[:-1]) and 0 < len(chunks[-1].data) <= CHUNK
    content = b"".join(c.data for c in chunks)
    # Exactly the binary log file the transaction makes held whole (magic, FDE, events).
    assert content == whole(first.description, big(2, 20))
    assert content.startswith(ev.MAGIC)
    assert (end.gtid, end.plain_size) == (MariadbGtid(0, 100, 2), len(content))
    assert end.sha256 == hashlib.sha256(content).hexdigest() and end.commit_time == 1000


def test_a_transaction_under_the_threshold_stays_in_a_segment() -> None:
    out = run(Segmenter(max_seconds=100, large=LARGE, chunk=CHUNK), [fde(), *big(1, 3)])
    assert [type(o) for o in out] == [Segment]


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=8),
       large=st.integers(50, 3000), chunk=st.integers(30, 2000))
def test_any_stream_keeps_its_order_and_every_large_transactions_bytes(
        sizes: list[int], large: int, chunk: int) -> None:
    """Transactions of `sizes` row events: every one comes out once, in order, whole in a
    segment or as chunks of `chunk` bytes (the last shorter) whose concatenation is the file
    it makes held whole; nothing but one chunk's bytes and an event is ever held."""
    stream = [fde()] + [e for n, size in enumerate(sizes) for e in big(n + 1, size, 60)]
    out = run(Segmenter(max_seconds=100, large=large, chunk=chunk), stream)
    seen: list[int] = []
    pieces: list[bytes] = []
    for o in out:
        if isinstance(o, Segment):
            assert not pieces
            seen.extend(t.gtid.seq for t in o.transactions)
            assert all(len(t.data) <= large for t in o.transactions)
        elif isinstance(o, Chunk):
            assert o.index == len(pieces) and len(o.data) <= chunk
            pieces.append(o.data)
        else:
            assert all(len(p) == chunk for p in pieces[:-1])
            content = b"".join(pieces)
            n = o.gtid.seq
            assert content == whole(events(fde())[0], big(n, sizes[n - 1], 60))
            assert o.sha256 == hashlib.sha256(content).hexdigest()
            seen.append(n)
            pieces = []
    assert seen == list(range(1, len(sizes) + 1)) and not pieces


# -- records ---------------------------------------------------------------------------------

def chunked(seq: int = 5, parts: int = 3, key_id: str = "") -> SegmentRecord:
    first = MariadbGtid(0, 100, seq)
    content = [f"chunk {n} of {seq}".encode() for n in range(parts)]
    stored = [StoredChunk(chunk_name(first, n, c, key_id), len(c) + 9,
                          hashlib.sha256(b"x" + c).hexdigest(), len(c))
              for n, c in enumerate(content)]
    return make_chunked_record(first, 1700000000 + seq, stored, sum(map(len, content)),
                               hashlib.sha256(b"".join(content)).hexdigest(), key_id)


def test_plain_records_stay_format_1_and_chunked_ones_are_format_2() -> None:
    plain = record_of([(0, 1), (0, 2)])
    data = render_record(plain, None)
    assert "chunks" not in json.loads(data) and plain.format == FORMAT  # as before: readable
    assert parse_record(plain.index_name, data, None) == plain
    assert plain.objects == (plain.segment,)
    record = chunked()
    assert record.format == FORMAT_CHUNKED and len(record.objects) == 3
    assert record.segment not in record.objects  # a logical name: no object
    assert all(segment_start(n) == MariadbGtid(0, 100, 5) for n in record.objects)
    assert parse_record(record.index_name, render_record(record, None), None) == record
    keyed = chunked(key_id="abc")
    assert parse_record(keyed.index_name, render_record(keyed, b"k" * 32), b"k" * 32) == keyed
    assert keyed.objects != record.objects and keyed.segment != record.segment
    # A format 2 record without chunks, or chunks in a format 1 record, is not one written.
    body = json.loads(render_record(record, None))
    for edit in ({"chunks": []}, {"format": FORMAT}, {"format": 3}):
        broken = {**body, **edit}
        with pytest.raises(IndexError_, match="does not parse"):
            parse_record(record.index_name, json.dumps(broken).encode(), None)


def test_a_checkpoint_holds_chunked_records_as_written() -> None:
    records = [record_of([(0, 1)]), chunked(2), record_of([(0, 3)])]
    name, stored = bc.render_checkpoint(1, records, "", None)
    held = bc.parse_checkpoint(name, stored, None).records
    assert sorted(held, key=lambda r: r.index_name) == sorted(records,
                                                               key=lambda r: r.index_name)


def test_a_chunked_records_transaction_is_cut_from_the_record() -> None:
    record = chunked(5)
    transaction = large_transaction(record)
    assert (transaction.gtid, transaction.commit_time) == (MariadbGtid(0, 100, 5), 1700000005)
    at = datetime.fromtimestamp(1700000005, UTC)
    assert Cutter(Plan("b", "0-100-4", (record.segment,), "", at)).take(record)
    assert not Cutter(Plan("b", "0-100-4", (record.segment,), "", at - timedelta(seconds=1))
                      ).take(record)
    assert not Cutter(Plan("b", "0-100-5", (record.segment,), "", None)).take(record)
    with pytest.raises(ValueError, match="not a chunked"):
        large_transaction(record_of([(0, 1)]))


# -- retention and orphans ---------------------------------------------------------------------

def test_orphan_cleaning_sees_every_chunk_of_a_record() -> None:
    records = [record_of([(0, 1), (0, 2)]), chunked(3), record_of([(0, 4)])]
    left = chunk_name(MariadbGtid(0, 100, 3), 0, b"an attempt cut short")
    names = [n for r in records for n in r.objects] + [left]
    now = datetime.fromtimestamp(1700000000, UTC) + timedelta(days=1)
    plan = plan_segments(["0-100-2"], records, names, now)
    assert plan.orphans == (left,)  # the record's own chunks are indexed, not orphans
    # A chunked record before the oldest base goes whole (record, then every chunk).
    plan = plan_segments(["0-100-3"], records, names, now)
    assert [r.segment for r in plan.delete] == [records[0].segment, records[1].segment]


def test_remove_segment_deletes_the_record_and_all_its_chunks(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    record = chunked(7)
    for name in record.objects:
        store.put_new(name, b"chunk bytes")
    store.put_new(record.index_name, render_record(record, None))
    assert load_records(store, None) == [record]
    remove_segment(store, record)
    assert load_records(store, None) == [] and segment_names(store) == []


# -- the archiver -----------------------------------------------------------------------------

class Stream:
    """A primary's binary log: small transaction 1, large 2, small 3 (the archiver is stopped
    once the last event is read); streamed from where it is asked."""

    LOG = [fde(), *txn(1), *big(2, 30), *txn(3)]

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def open(self, position: str) -> None:
        self.after = int(position.rsplit("-", 1)[1]) if position else 0

    def events(self) -> Iterator[ev.Event]:
        for n, event in enumerate(events(*self.LOG)):
            if n == len(self.LOG) - 1:
                self.stop.set()
            yield event

    def close(self) -> None:
        pass


def archive(store: FileStore, start: str) -> Archiver:
    stop = threading.Event()
    archiver = Archiver(store, None, lambda: Stream(stop), lambda: start,  # type: ignore[arg-type, return-value]
                        ArchiveSettings(max_bytes=1, large_bytes=LARGE, chunk_bytes=CHUNK),
                        stop)
    archiver.run()
    return archiver


def test_the_archiver_writes_chunks_then_the_record(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert archive(store, "0-100-0").state.transactions == 3
    records = load_records(store, None)
    assert [r.transactions for r in records] == [1, 1, 1]
    [large] = [r for r in records if r.chunks]
    assert large.domains[0].first == "0-100-2" and len(large.chunks) > 3
    assert sorted(segment_names(store)) == sorted(n for r in records for n in r.objects)
    content = b"".join(read_chunks(store, large, None))
    assert content == read_segment(store, large, None)
    assert content == whole(events(fde())[0], big(2, 30))
    # A corrupted chunk is refused naming the segment and the chunk.
    victim = large.chunks[1].name
    damaged = bytearray(read_all(store, victim))
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / victim).write_bytes(bytes(damaged))
    with pytest.raises(Exception, match=f"{large.segment} chunk 1 .*not the one"):
        list(read_chunks(store, large, None))


def test_a_large_duplicate_writes_no_chunk(tmp_path: Path) -> None:
    """An archive already past the large transaction (its position 0-100-2): the stream
    sends it again, and not one chunk is written for it."""
    store = FileStore(tmp_path)
    archiver = archive(store, "0-100-2")
    assert archiver.state.duplicates == 2 and archiver.state.transactions == 1
    assert [r.domains[0].first for r in load_records(store, None)] == ["0-100-3"]
    assert len(segment_names(store)) == 1


def test_a_stream_broken_inside_a_large_transaction_rewrites_its_own_chunks(
        tmp_path: Path) -> None:
    """Keyed: the link breaks after some of the large transaction's chunks are written; the
    archiver streams it again and meets its own bytes under the same names (done, not an
    error), writes its record, and leaves no orphan."""
    store = FileStore(tmp_path)
    stop = threading.Event()
    opened: list[int] = []
    middle = len(Stream.LOG) - 10  # inside transaction 2's row events

    class Breaking(Stream):
        def events(self) -> Iterator[ev.Event]:
            opened.append(1)
            for n, event in enumerate(super().events()):
                if len(opened) == 1 and n == middle:
                    raise StreamError("the link broke")
                yield event

    archiver = Archiver(store, KEYS, lambda: Breaking(stop), lambda: "0-100-0",  # type: ignore[arg-type, return-value]
                        ArchiveSettings(max_bytes=1, large_bytes=LARGE, chunk_bytes=CHUNK,
                                        retry_first=0.01), stop)
    archiver.run()
    assert len(opened) == 2 and archiver.state.store_failures == 0
    records = load_records(store, KEYS)
    assert [r.domains[0].first for r in records] == ["0-100-1", "0-100-2", "0-100-3"]
    [large] = [r for r in records if r.chunks]
    assert sorted(segment_names(store)) == sorted(n for r in records for n in r.objects)
    assert b"".join(read_chunks(store, large, KEYS)) == whole(events(fde())[0], big(2, 30))
