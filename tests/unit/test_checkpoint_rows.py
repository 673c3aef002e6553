"""The checkpoint's compact form (FORMAT 2: rows, sealed over the bytes as stored) gives the very
records the record bodies of FORMAT 1 give, and both formats refuse an edit in one line."""

from __future__ import annotations

import gc
import json
from dataclasses import fields

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core import binlog_checkpoint as bc
from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS, BINLOG_SEGMENTS
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import (
    FORMAT,
    FORMAT_CHUNKED,
    DomainRange,
    SegmentRecord,
    StoredChunk,
    body_record,
    breaks,
    record_body,
)
from mysqlsts.core.gc_pause import gc_paused
from mysqlsts.core.sealed_json import seal_bytes, sealed

KEYS = BackupKeys.from_secret(b"a secret of thirty-two bytes....")
_text = st.text(max_size=12)
_int = st.integers(min_value=0, max_value=2**63)


@st.composite
def _ranges(draw: st.DrawFn) -> tuple[DomainRange, ...]:
    domains = draw(st.lists(st.integers(0, 2**32), min_size=1, max_size=3, unique=True))
    out = []
    for domain in sorted(domains):
        first, last = sorted(draw(st.lists(_int, min_size=2, max_size=2)))
        server = draw(st.integers(0, 2**32))
        out.append(DomainRange(domain, f"{domain}-{server}-{first}", f"{domain}-{server}-{last}",
                               draw(st.integers(1, 10**6)), draw(_text), draw(_text)))
    return tuple(out)


@st.composite
def _record(draw: st.DrawFn, key_id: str) -> SegmentRecord:
    chunks = tuple(draw(st.lists(st.builds(StoredChunk, _text, _int, _text, _int), max_size=3)))
    return SegmentRecord(
        segment=BINLOG_SEGMENTS + draw(st.from_regex(r"[0-9a-f\-]{1,40}", fullmatch=True)),
        size=draw(_int), sha256=draw(_text), plain_size=draw(_int),
        transactions=draw(_int), first_commit=draw(_text), last_commit=draw(_text),
        domains=draw(_ranges()), key_id=key_id,
        format=FORMAT_CHUNKED if chunks else FORMAT, chunks=chunks)


def _format_1(serial: int, records: list[SegmentRecord], key_id: str,
              seal_key: bytes | None) -> tuple[str, bytes]:
    """A checkpoint as the FORMAT 1 writer wrote it: one sealed document of record bodies."""
    body = {"format": 1, "serial": serial, "key_id": key_id,
            "records": [record_body(r) for r in sorted(records, key=lambda r: r.index_name)]}
    stored = zstandard.ZstdCompressor(level=3).compress(sealed(body, seal_key))
    return f"{BINLOG_CHECKPOINTS}{serial:012d}-{'0' * 16}{bc.SUFFIX}", stored


def _typed(value: object) -> object:
    """Every field's type and value, into ranges and chunks (slots: no vars())."""
    if isinstance(value, (SegmentRecord, DomainRange, StoredChunk)):
        return [(f.name, _typed(getattr(value, f.name))) for f in fields(value)]
    if isinstance(value, tuple):
        return [_typed(v) for v in value]
    return (type(value), value)


@settings(max_examples=60, deadline=None)
@given(st.booleans(), st.data())
def test_rows_give_the_records_the_bodies_give(keyed: bool, data: st.DataObject) -> None:
    key_id, seal_key = (KEYS.key_id, KEYS.seal_key) if keyed else ("", None)
    records = data.draw(st.lists(_record(key_id), max_size=8,
                                 unique_by=lambda r: r.index_name))
    name, stored = bc.render_checkpoint(3, records, key_id, seal_key)
    old_name, old = _format_1(3, records, key_id, seal_key)
    fast = bc.parse_checkpoint(name, stored, seal_key).records
    slow = bc.parse_checkpoint(old_name, old, seal_key).records
    assert fast == slow == tuple(sorted(records, key=lambda r: r.index_name))
    for a, b in zip(fast, slow, strict=True):  # the same values of the same types, field by field
        assert _typed(a) == _typed(b)
    assert breaks(list(fast)) == breaks(list(slow))


def _records(n: int, key_id: str) -> list[SegmentRecord]:
    commit = "2026-12-05T00:00:00+00:00"
    return [SegmentRecord(f"{BINLOG_SEGMENTS}{0:010d}-{s:020d}-{1:010d}-{s:016x}", 10, "ab", 20,
                          1, commit, commit, (DomainRange(0, f"0-1-{s}", f"0-1-{s}", 1, commit,
                                                          commit),), key_id)
            for s in range(1, n + 1)]


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
def test_any_byte_of_the_body_changed_is_refused(keyed: bool) -> None:
    key_id, seal_key = (KEYS.key_id, KEYS.seal_key) if keyed else ("", None)
    name, stored = bc.render_checkpoint(1, _records(3, key_id), key_id, seal_key)
    data = zstandard.ZstdDecompressor().decompress(stored)
    body = data.rpartition(b"\n")[0]
    for at in range(len(body)):  # each digit turned into another: still JSON, still rows
        if body[at:at + 1].isdigit():
            edited = data[:at] + (b"1" if body[at:at + 1] != b"1" else b"2") + data[at + 1:]
            with pytest.raises(bc.CheckpointError, match=f"^archive checkpoint {name} "):
                bc.parse_checkpoint(name, zstandard.ZstdCompressor().compress(edited), seal_key)


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
def test_a_format_1_checkpoint_still_reads_and_an_edited_one_is_refused(keyed: bool) -> None:
    key_id, seal_key = (KEYS.key_id, KEYS.seal_key) if keyed else ("", None)
    records = _records(4, key_id)
    name, stored = _format_1(2, records, key_id, seal_key)
    assert list(bc.parse_checkpoint(name, stored, seal_key).records) == records
    edited = zstandard.ZstdDecompressor().decompress(stored).replace(b'"size":10', b'"size":11')
    with pytest.raises(bc.CheckpointError) as caught:
        bc.parse_checkpoint(name, zstandard.ZstdCompressor().compress(edited), seal_key)
    assert str(caught.value) == (f"archive checkpoint {name} fails its seal (edited, torn, or "
                                 "sealed with another key)")


def test_a_format_this_version_does_not_read_is_refused_in_one_line() -> None:
    name, stored = bc.render_checkpoint(1, _records(1, ""), "", None)
    data = zstandard.ZstdDecompressor().decompress(stored).replace(b'"format":2', b'"format":3')
    body = data.rpartition(b"\n")[0] + b"\n"
    resealed = body + seal_bytes(body, None).encode()
    with pytest.raises(bc.CheckpointError) as caught:
        bc.parse_checkpoint(name, zstandard.ZstdCompressor().compress(resealed), None)
    assert str(caught.value) == (f"archive checkpoint {name} has format 3, this version reads "
                                 "1 and 2")


def test_a_ranges_sequence_numbers_are_its_gtids_and_stay_out_of_its_body() -> None:
    dr = DomainRange(2, "2-7-15", "2-7-40", 26, "a", "b")
    assert (dr.first_seq, dr.last_seq) == (15, 40)
    assert dr == DomainRange(2, "2-7-15", "2-7-40", 26, "a", "b")
    record = SegmentRecord("binlog/segments/x", 1, "s", 1, 26, "a", "b", (dr,), "")
    body = record_body(record)
    assert list(body["domains"]) == [{"domain": 2, "first": "2-7-15", "last": "2-7-40", "count": 26,
                                "first_commit": "a", "last_commit": "b"}]
    assert body_record(body) == record
    odd = DomainRange(2, " 2-7-15", "2-7-15", 1, "a", "b")  # read by the general parser
    assert (odd.first_seq, odd.last_seq) == (15, 15)
    with pytest.raises(ValueError, match="not a MariaDB GTID"):  # refused as it is read
        DomainRange(2, "2-7-15", "2-7-x", 1, "a", "b")


def test_a_record_holds_no_dict_of_its_own() -> None:
    """Slots: every reader of the whole index holds millions of these."""
    dr = DomainRange(2, "2-7-15", "2-7-40", 26, "a", "b")
    record = SegmentRecord("binlog/segments/x", 1, "s", 1, 26, "a", "b", (dr,), "")
    assert not hasattr(dr, "__dict__") and not hasattr(record, "__dict__")


@pytest.mark.parametrize("was_on", [True, False])
def test_a_paused_collector_ends_as_it_began(was_on: bool) -> None:
    (gc.enable if was_on else gc.disable)()
    try:
        with pytest.raises(RuntimeError), gc_paused():
            assert not gc.isenabled()
            raise RuntimeError
        assert gc.isenabled() is was_on
    finally:
        gc.enable()


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
def test_lines_of_rows_round_trip_and_a_line_changed_dropped_or_cut_is_refused(
        keyed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bc, "ROWS_PER_LINE", 2)
    key_id, seal_key = (KEYS.key_id, KEYS.seal_key) if keyed else ("", None)
    records = _records(5, key_id)
    name, stored = bc.render_checkpoint(4, records, key_id, seal_key)
    head, *lines, seal = zstandard.ZstdDecompressor().decompress(stored).split(b"\n")
    assert len(lines) == 3 and [len(json.loads(line)) for line in lines] == [2, 2, 1]
    assert list(bc.parse_checkpoint(name, stored, seal_key).records) == records
    refused = f"archive checkpoint {name} fails its seal (edited, torn, or sealed with another key)"
    for edited in ([head, lines[0], lines[1].replace(b"[", b"{", 1), lines[2], seal],  # not JSON
                   [head, lines[0], lines[2], seal],  # a line dropped
                   [head, lines[0], lines[1], lines[2]],  # the seal cut off
                   [head, *lines, b""]):  # the seal emptied
        with pytest.raises(bc.CheckpointError) as caught:
            bc.parse_checkpoint(name, zstandard.ZstdCompressor().compress(b"\n".join(edited)),
                                seal_key)
        assert str(caught.value) == refused
