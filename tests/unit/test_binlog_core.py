"""The binlog archive's pure core: events, transaction groups, segment cuts, index records and
contiguity (events built byte by byte as the server writes them)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_index import (
    IndexError_,
    SegmentRecord,
    archived_position,
    breaks,
    index_name,
    make_record,
    newest_commit,
    parse_record,
    position_text,
    render_record,
    segment_name,
    spans,
)
from mysqlsts.core.binlog_segment import Output, Segment, Segmenter, Transaction
from mysqlsts.core.gtid import MariadbGtid


def fde(version: bytes = b"10.11.19-MariaDB", flags: int = ev.LOG_EVENT_BINLOG_IN_USE) -> bytes:
    # binlog version, server version (50 bytes), create timestamp, header length, post-header
    # lengths, then the checksum algorithm (1 = CRC32) before the CRC itself.
    body = (struct.pack("<H", 4) + version.ljust(50, b"\0") + struct.pack("<IB", 0, 19)
            + bytes(range(1, 40)) + b"\x01")
    return ev.make_event(ev.FORMAT_DESCRIPTION, body, timestamp=1000, flags=flags)


def gtid(seq: int, domain: int = 0, server: int = 100, standalone: bool = False,
         ts: int = 1000) -> bytes:
    body = struct.pack("<QIB", seq, domain, ev.FL_STANDALONE if standalone else 0) + b"\0" * 6
    return ev.make_event(ev.GTID, body, server_id=server, timestamp=ts)


def query(text: bytes, ts: int = 1000, server: int = 100) -> bytes:
    status = b"\x00\x00\x00\x00\x00"
    body = struct.pack("<IIBHH", 7, 0, 4, 0, len(status)) + status + b"test\0" + text
    return ev.make_event(ev.QUERY, body, timestamp=ts, server_id=server)


def xid(ts: int = 1000, server: int = 100) -> bytes:
    return ev.make_event(ev.XID, struct.pack("<Q", 42), timestamp=ts, server_id=server)


def rows(size: int = 40) -> bytes:
    return ev.make_event(30, b"r" * size)  # WRITE_ROWS_EVENT_V1


def events(*datas: bytes) -> list[ev.Event]:
    return [ev.parse_event(d, checksum=True) for d in datas]


def txn(seq: int, domain: int = 0, server: int = 100, ts: int = 1000) -> list[bytes]:
    return [gtid(seq, domain, server, ts=ts), query(b"BEGIN", ts), rows(), xid(ts)]


# -- events -------------------------------------------------------------------------------

def test_header_fields_and_checksum_are_read() -> None:
    event = ev.parse_event(gtid(7, domain=3, server=101, ts=1234), checksum=True)
    assert (event.type, event.server_id, event.timestamp) == (ev.GTID, 101, 1234)
    parsed = ev.parse_gtid(event)
    assert parsed.gtid == MariadbGtid(3, 101, 7) and not parsed.standalone
    assert ev.parse_gtid(ev.parse_event(gtid(1, standalone=True), True)).standalone


def test_a_flipped_byte_fails_the_crc_and_a_short_event_is_refused() -> None:
    data = bytearray(gtid(7))
    data[22] ^= 1
    with pytest.raises(ev.EventError, match="CRC32"):
        ev.parse_event(bytes(data), checksum=True)
    with pytest.raises(ev.EventError, match="says"):
        ev.parse_event(gtid(7)[:-1], checksum=True)
    with pytest.raises(ev.EventError, match="shorter"):
        ev.parse_event(b"\0" * 5, checksum=True)


def test_the_format_description_says_whether_the_stream_has_checksums() -> None:
    assert ev.parse_event(fde(), checksum=False).checksum
    plain = bytearray(fde())
    plain[-5] = 0  # binlog_checksum=NONE (the CRC field stays, unchecked)
    assert not ev.parse_event(bytes(plain), checksum=True).checksum


def test_group_ends() -> None:
    assert ev.ends_group(events(xid())[0])
    assert ev.ends_group(events(query(b"COMMIT"))[0])
    assert ev.ends_group(events(query(b" rollback"))[0])
    assert not ev.ends_group(events(query(b"BEGIN"))[0])
    assert not ev.ends_group(events(query(b"INSERT INTO t VALUES ('COMMIT')"))[0])
    assert ev.query_text(events(query(b"CREATE TABLE t (a int)"))[0]) == b"CREATE TABLE t (a int)"


def test_a_file_header_marks_the_description_closed_with_a_valid_crc() -> None:
    header = ev.file_header(events(fde())[0])
    assert header[:4] == ev.MAGIC
    closed = ev.parse_event(header[4:], checksum=True)  # the CRC was recomputed
    assert not closed.flags & ev.LOG_EVENT_BINLOG_IN_USE
    assert closed.next_pos == len(header)


# -- groups and segments --------------------------------------------------------------------

def only_segments(outputs: list[Output]) -> list[Segment]:
    """The segmenter's outputs, every one a Segment (no transaction here is large)."""
    assert all(isinstance(o, Segment) for o in outputs), outputs
    return [o for o in outputs if isinstance(o, Segment)]


def feed_all(segmenter: Segmenter, datas: list[bytes], now: float = 0.0) -> list[Segment]:
    out: list[Segment] = []
    for event in events(*datas):
        out.extend(only_segments(segmenter.feed(event, now)))
    return out


def test_transactions_are_grouped_and_control_events_left_out() -> None:
    rotate = ev.make_event(ev.ROTATE, struct.pack("<Q", 4) + b"mysql-bin.000001",
                           flags=ev.ARTIFICIAL)
    checkpoint = ev.make_event(ev.BINLOG_CHECKPOINT, b"\x10\0\0\0mysql-bin.000001")
    segmenter = Segmenter(max_seconds=10)
    stream = [rotate, fde(), checkpoint, *txn(1), gtid(2, standalone=True),
              query(b"CREATE TABLE t (a int)", ts=1005), *txn(3, ts=1009)]
    assert feed_all(segmenter, stream) == []
    [segment] = segmenter.flush()
    assert [t.gtid.seq for t in segment.transactions] == [1, 2, 3]
    assert [t.commit_time for t in segment.transactions] == [1000, 1005, 1009]
    content = segment.content()
    assert content.startswith(ev.MAGIC)
    assert content.endswith(b"".join(txn(3, ts=1009)))
    assert rotate not in content and checkpoint not in content


def test_a_segment_is_cut_by_age_on_the_callers_clock() -> None:
    segmenter = Segmenter(max_seconds=1.0)
    assert feed_all(segmenter, [fde(), *txn(1)], now=10.0) == []
    assert segmenter.tick(10.9) == []
    [segment] = segmenter.tick(11.0)
    assert len(segment.transactions) == 1
    assert segmenter.tick(20.0) == []  # nothing pending


def test_a_segment_is_cut_after_the_transaction_that_fills_it() -> None:
    one = len(b"".join(txn(1)))
    segmenter = Segmenter(max_seconds=100, max_bytes=2 * one)
    cut = feed_all(segmenter, [fde(), *txn(1), *txn(2), *txn(3)])
    assert [[t.gtid.seq for t in s.transactions] for s in cut] == [[1, 2]]


def test_a_new_format_description_cuts_before_it() -> None:
    segmenter = Segmenter(max_seconds=100)
    cut = feed_all(segmenter, [fde(), *txn(1), fde(b"11.4.2-MariaDB"), *txn(2)])
    assert [[t.gtid.seq for t in s.transactions] for s in cut] == [[1]]
    [last] = segmenter.flush()
    assert b"11.4.2-MariaDB" in last.content()


def test_a_transaction_cut_short_or_a_stray_event_is_refused() -> None:
    with pytest.raises(ev.EventError, match="cut short"):
        feed_all(Segmenter(), [fde(), gtid(1), query(b"BEGIN"), gtid(2)])
    with pytest.raises(ev.EventError, match="outside a transaction"):
        feed_all(Segmenter(), [fde(), rows()])
    with pytest.raises(ev.EventError, match="before any FORMAT_DESCRIPTION"):
        feed_all(Segmenter(), [gtid(1)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=40),
       st.lists(st.floats(0, 0.6), min_size=40, max_size=40),
       st.integers(200, 3000))
def test_segments_hold_every_transaction_once_in_order(
        sizes: list[int], gaps: list[float], max_bytes: int) -> None:
    """Whatever the timing and sizes: segments concatenate to the stream's transactions,
    each starts with a whole group, and none but the last-cut is held past its limits."""
    segmenter = Segmenter(max_seconds=1.0, max_bytes=max_bytes)
    now = 0.0
    cut = only_segments(segmenter.feed(events(fde())[0], now))
    expected = []
    for seq, (size, gap) in enumerate(zip(sizes, gaps, strict=False), start=1):
        group = [gtid(seq), query(b"BEGIN"), *(rows(30 * size) for _ in range(size)), xid()]
        expected.append(b"".join(group))
        for event in events(*group):
            cut += only_segments(segmenter.feed(event, now))
        now += gap
        cut += segmenter.tick(now)
    cut += segmenter.flush()
    assert [t.data for s in cut for t in s.transactions] == expected
    for segment in cut[:-1]:
        held = sum(len(t.data) for t in segment.transactions)
        assert held - len(segment.transactions[-1].data) < max_bytes


# -- names, records, contiguity --------------------------------------------------------------

def record_of(seqs: list[tuple[int, int]], server: int = 100, key_id: str = "") -> SegmentRecord:
    transactions = tuple(Transaction(MariadbGtid(d, server, s), b"x", 1700000000 + s)
                         for d, s in seqs)
    segment = Segment(events(fde())[0], transactions)
    content = segment.content() + bytes(str(seqs), "ascii")
    name = segment_name(transactions[0].gtid, content)
    return make_record(segment, name, b"stored" + content, len(content), key_id)


def test_names_sort_by_sequence_and_never_collide_across_servers() -> None:
    a = segment_name(MariadbGtid(0, 100, 9), b"one")
    b = segment_name(MariadbGtid(0, 101, 10), b"two")
    c = segment_name(MariadbGtid(0, 101, 10), b"other bytes, same start")
    assert sorted([b, a]) == [a, b] and b != c
    assert a.startswith("binlog/segments/0000000000-00000000000000000009-0000000100-")
    assert index_name(a) == "binlog/index/" + a.split("/")[-1] + ".json"


def test_a_record_round_trips_and_refuses_edits_and_wrong_keys() -> None:
    record = record_of([(0, 1), (0, 2), (1, 7)])
    assert [(d.domain, d.first, d.last, d.count) for d in record.domains] == [
        (0, "0-100-1", "0-100-2", 2), (1, "1-100-7", "1-100-7", 1)]
    assert [(d.first_commit[11:19], d.last_commit[11:19]) for d in record.domains] == [
        ("22:13:21", "22:13:22"), ("22:13:27", "22:13:27")]
    assert record.first_commit.startswith("2023-11-14T22:13:21")
    data = render_record(record, None)
    assert parse_record(record.index_name, data, None) == record
    with pytest.raises(IndexError_, match="fails its seal"):
        parse_record(record.index_name, data.replace(b'"count":2', b'"count":3'), None)
    with pytest.raises(IndexError_, match="names another segment"):
        parse_record("binlog/index/elsewhere.json", data, None)
    with pytest.raises(IndexError_, match="does not parse"):
        parse_record(record.index_name, data[:-3], None)
    keyed = record_of([(0, 1)], key_id="abc")
    sealed = render_record(keyed, b"k" * 32)
    assert parse_record(keyed.index_name, sealed, b"k" * 32) == keyed
    with pytest.raises(IndexError_, match="fails its seal"):
        parse_record(keyed.index_name, sealed, b"j" * 32)
    with pytest.raises(IndexError_, match="no key"):
        parse_record(keyed.index_name, sealed, None)
    # With a key given, a record with a plain seal is anyone's: refused.
    with pytest.raises(IndexError_, match="not encrypted, yet a key was given"):
        parse_record(record.index_name, data, b"k" * 32)


def test_a_segment_name_differs_by_key() -> None:
    first = MariadbGtid(0, 100, 9)
    names = {segment_name(first, b"same bytes", key_id) for key_id in ("", "abc", "abd")}
    assert len(names) == 3


def test_breaks_name_gaps_and_overlaps_per_domain() -> None:
    contiguous = [record_of([(0, 1), (0, 2)]), record_of([(0, 3)], server=101),
                  record_of([(0, 4), (1, 1)])]
    assert breaks(contiguous) == []
    [gap] = breaks([*contiguous, record_of([(0, 8)])])
    assert str(gap) == "domain 0: gap, seq 5..7 missing between 0-100-4 and 0-100-8"
    [overlap] = breaks([*contiguous, record_of([(0, 4)], server=102)])
    assert overlap.kind == "overlap"
    [inside] = breaks([record_of([(0, 1), (0, 3)])])
    assert inside.kind == "gap" and inside.domain == 0
    assert [b.domain for b in breaks([*contiguous, record_of([(1, 3)])])] == [1]


def test_the_resume_position_is_the_newest_per_domain() -> None:
    records = [record_of([(0, 1), (0, 2)]), record_of([(1, 5)], server=7),
               record_of([(0, 3)], server=101)]
    assert position_text(archived_position(records)) == "0-101-3,1-7-5"
    assert archived_position([]) == {}
    # The newest commit of any record, wherever it sorts (domain 1's seq 5 committed last).
    assert newest_commit(records) == 1700000005
    assert newest_commit([]) == 0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=12), st.data())
def test_removing_any_record_but_the_last_is_a_named_gap(
        lengths: list[int], data: st.DataObject) -> None:
    records, seq = [], 1
    for length in lengths:
        records.append(record_of([(0, s) for s in range(seq, seq + length)]))
        seq += length
    assert breaks(records) == []
    if len(records) > 2:
        lost = data.draw(st.integers(1, len(records) - 2))
        [gap] = breaks(records[:lost] + records[lost + 1:])
        assert gap.kind == "gap" and gap.before == records[lost + 1].domains[0].first


def test_spans_sum_up_each_domain() -> None:
    records = [record_of([(0, 3)], server=101), record_of([(0, 1), (0, 2), (1, 7)])]
    assert [str(s) for s in spans(records)] == [
        "domain 0: 0-100-1 .. 0-101-3, 3 transactions in 2 segments, commits "
        "2023-11-14T22:13:21+00:00 .. 2023-11-14T22:13:23+00:00",
        "domain 1: 1-100-7 .. 1-100-7, 1 transactions in 1 segments, commits "
        "2023-11-14T22:13:27+00:00 .. 2023-11-14T22:13:27+00:00"]
    assert spans([]) == []
