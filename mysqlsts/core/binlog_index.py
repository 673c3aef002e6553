"""The archive's object names, its index records, and what they say together: where to resume,
and every gap (pure).

    binlog/segments/<domain>-<seq>-<server_id>-<hash>        a segment, sealed like a part
    binlog/index/<domain>-<seq>-<server_id>-<hash>.json      its record, written after it

named by the segment's first transaction (domain, sequence number and server id, zero-padded
so names sort by sequence within a domain) and the first 16 hex digits of the SHA-256 of its
content: a primary restarted, re-created or taken over continues the same names without ever
meeting one already taken by other bytes. The record is the commit marker: a segment without
one does not exist for any reader (it is what a write cut short leaves).

A large transaction (core/binlog_segment.py) is a chunked segment: its content's chunks are
objects of their own, each sealed like a segment and named like one (its transaction's GTID,
then a hash of the chunk's index and content), and its record (FORMAT_CHUNKED) lists them in
order; the record's `segment` is then a logical name (no object), from the whole content's
SHA-256, and `objects` names what the record stands for either way. Plain records stay FORMAT
1, so an older reader reads them and refuses a chunked one in one line.

A record lists, per domain, its first and last GTID and how many transactions it holds; the
archive is contiguous in a domain when each record's sequence numbers follow the previous
record's without a hole or an overlap. A break is named, never skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mysqlsts.core.backup_layout import BINLOG_INDEX, BINLOG_SEGMENTS
from mysqlsts.core.binlog_segment import Segment, Transaction
from mysqlsts.core.gtid import MariadbGtid, parse_mariadb
from mysqlsts.core.sealed_json import seal_holds, sealed
from mysqlsts.errors import MysqlstsError

FORMAT = 1
FORMAT_CHUNKED = 2
FORMATS = (FORMAT, FORMAT_CHUNKED)
INDEX_SUFFIX = ".json"


class IndexError_(MysqlstsError):  # noqa: N801 (IndexError is a builtin)
    """An index record that is not exactly as written."""


def _seq(text: str) -> int:
    """A GTID's sequence number: the text as written (domain-server-seq) read directly, any
    other by the general parser (the same number, or its ValueError)."""
    parts = text.split("-")
    if len(parts) == 3 and all(map(str.isdigit, parts)):
        return int(parts[2])
    return parse_mariadb(text)[0].seq


# Slots, not a dict per object: every reader of the whole index holds a record and its ranges
# for each segment (a month is 2.6M of them), and an object's dict was most of a range's bytes.
@dataclass(frozen=True, slots=True)
class DomainRange:
    domain: int
    first: str  # GTID text, domain-server-seq
    last: str
    count: int
    first_commit: str  # ISO-8601 UTC, of the domain's first and last transaction here
    last_commit: str
    # The GTIDs' sequence numbers, parsed once (every reader of the whole index, resume's
    # breaks, PITR's order, retention, sorts and compares ranges by them): not in the record's
    # body (`record_body`), nor in equality.
    first_seq: int = field(init=False, repr=False, compare=False)
    last_seq: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first = _seq(self.first)
        object.__setattr__(self, "first_seq", first)
        object.__setattr__(self, "last_seq", first if self.last == self.first else _seq(self.last))


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """One chunk of a chunked segment, as its record lists it."""

    name: str  # its object name
    size: int  # bytes as stored
    sha256: str  # of the bytes as stored
    plain_size: int  # bytes of the segment content it holds


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    segment: str  # the segment's object name (a chunked segment's: logical, no object)
    size: int  # bytes as stored (a chunked segment's: its chunks' together)
    sha256: str  # of the bytes as stored (a chunked segment's: of its whole plain content)
    plain_size: int  # bytes of the binary log file inside
    transactions: int
    first_commit: str  # ISO-8601 UTC, of its first and last transaction
    last_commit: str
    domains: tuple[DomainRange, ...]
    key_id: str  # "" when not encrypted at rest
    format: int = FORMAT
    chunks: tuple[StoredChunk, ...] = ()  # a chunked segment's, in content order

    @property
    def index_name(self) -> str:
        return index_name(self.segment)

    @property
    def objects(self) -> tuple[str, ...]:
        """Every object the record stands for: its segment, or its chunks."""
        return tuple(c.name for c in self.chunks) or (self.segment,)

    @property
    def stored(self) -> dict[str, int]:
        """Each of its objects' stored size."""
        return {c.name: c.size for c in self.chunks} or {self.segment: self.size}


def segment_name(first: MariadbGtid, content: bytes, key_id: str = "") -> str:
    """Sortable by domain and sequence; the hash covers the key id too, so a segment sealed
    under another key (or none) never meets an orphan of the same transactions by name."""
    return _named(first, key_id, content)


def chunk_name(first: MariadbGtid, index: int, content: bytes, key_id: str = "") -> str:
    """A chunk's object name: its transaction's place, then a hash of its index and content
    (and the key id), so a rewrite meets its own bytes and orphans are told by the place."""
    return _named(first, key_id, f"chunk {index}/".encode(), content)


def chunked_name(first: MariadbGtid, sha256: str, key_id: str = "") -> str:
    """A chunked segment's logical name, from its whole content's SHA-256 (hex)."""
    return _named(first, key_id, b"chunked/", bytes.fromhex(sha256))


def _named(first: MariadbGtid, key_id: str, *content: bytes) -> str:
    """The name of `content` (hashed piece by piece: a chunk is not copied to be named)."""
    digest = hashlib.sha256(key_id.encode() + b"/" if key_id else b"")
    for piece in content:
        digest.update(piece)
    return (f"{BINLOG_SEGMENTS}{first.domain:010d}-{first.seq:020d}-{first.server_id:010d}-"
            f"{digest.hexdigest()[:16]}")


def index_name(segment: str) -> str:
    if not segment.startswith(BINLOG_SEGMENTS):
        raise ValueError(f"{segment!r} is not a segment name")
    return BINLOG_INDEX + segment[len(BINLOG_SEGMENTS):] + INDEX_SUFFIX


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def domain_ranges(segment: Segment) -> tuple[DomainRange, ...]:
    by_domain: dict[int, list[Transaction]] = {}
    for transaction in segment.transactions:
        by_domain.setdefault(transaction.gtid.domain, []).append(transaction)
    return tuple(DomainRange(d, str(ts[0].gtid), str(ts[-1].gtid), len(ts),
                             _iso(ts[0].commit_time), _iso(ts[-1].commit_time))
                 for d, ts in sorted(by_domain.items()))


def make_record(segment: Segment, name: str, stored: bytes, plain_size: int,
                key_id: str) -> SegmentRecord:
    transactions = segment.transactions
    return SegmentRecord(
        segment=name, size=len(stored), sha256=hashlib.sha256(stored).hexdigest(),
        plain_size=plain_size, transactions=len(transactions),
        first_commit=_iso(transactions[0].commit_time),
        last_commit=_iso(transactions[-1].commit_time),
        domains=domain_ranges(segment), key_id=key_id)


def make_chunked_record(first: MariadbGtid, commit_time: int, chunks: Sequence[StoredChunk],
                        plain_size: int, sha256: str, key_id: str) -> SegmentRecord:
    """A large transaction's record: one transaction, in the chunks listed."""
    commit = _iso(commit_time)
    return SegmentRecord(
        segment=chunked_name(first, sha256, key_id), size=sum(c.size for c in chunks),
        sha256=sha256, plain_size=plain_size, transactions=1, first_commit=commit,
        last_commit=commit,
        domains=(DomainRange(first.domain, str(first), str(first), 1, commit, commit),),
        key_id=key_id, format=FORMAT_CHUNKED, chunks=tuple(chunks))


def record_body(record: SegmentRecord) -> dict[str, Any]:
    """The record as its JSON body (what is sealed): a plain one without `chunks`, exactly
    as FORMAT 1 has always been written."""
    body = asdict(record)
    for domain in body["domains"]:
        del domain["first_seq"], domain["last_seq"]
    if not record.chunks:
        del body["chunks"]
    return body


def body_record(body: Mapping[str, Any]) -> SegmentRecord:
    """A record from its JSON body (an index record's, or one a checkpoint holds); the
    format and the chunks agree. ValueError, TypeError, KeyError or AttributeError else."""
    fields = dict(body)
    domains = tuple(DomainRange(**d) for d in fields.pop("domains"))
    chunks = tuple(StoredChunk(**c) for c in fields.pop("chunks", ()))
    record = SegmentRecord(**fields, domains=domains, chunks=chunks)
    if record.format not in FORMATS:
        raise ValueError(f"format {record.format}, this version reads "
                         f"{' and '.join(map(str, FORMATS))}")
    if (record.format == FORMAT_CHUNKED) != bool(chunks):
        raise ValueError(f"format {record.format} with {len(chunks)} chunks")
    return record


def record_row(record: SegmentRecord) -> list[Any]:
    """The record as a row (a checkpoint's compact form: its fields in order, each domain
    range and chunk a row too, and no key id: a checkpoint holds records under its own)."""
    return [record.segment, record.size, record.sha256, record.plain_size,
            record.transactions, record.first_commit, record.last_commit,
            [[d.domain, d.first, d.last, d.count, d.first_commit, d.last_commit]
             for d in record.domains],
            record.format, [[c.name, c.size, c.sha256, c.plain_size] for c in record.chunks]]


def row_record(row: Sequence[Any], key_id: str) -> SegmentRecord:
    """A record from its row (`record_row`), the very record its body gives (`body_record`),
    with the same checks. ValueError or TypeError else."""
    segment, size, sha256, plain_size, transactions, first, last, domains, fmt, chunks = row
    if fmt not in FORMATS or (fmt == FORMAT_CHUNKED) != bool(chunks):
        raise ValueError(f"format {fmt} with {len(chunks)} chunks, this version reads "
                         f"{' and '.join(map(str, FORMATS))}")
    # One string object where the texts are equal, not two: a month's index is 2.6M records.
    last = first if last == first else last
    return SegmentRecord(segment, size, sha256, plain_size, transactions, first, last,
                         tuple([_domain(d, first, last) for d in domains]), key_id, fmt,
                         tuple([StoredChunk(*c) for c in chunks]))


def _domain(row: Sequence[Any], first: str, last: str) -> DomainRange:
    """A domain range from its row, sharing its record's commit texts where equal (and its
    first GTID's as its last's) rather than holding copies of them."""
    domain, first_gtid, last_gtid, count, first_commit, last_commit = row
    return DomainRange(domain, first_gtid, first_gtid if last_gtid == first_gtid else last_gtid,
                       count, first if first_commit == first else first_commit,
                       last if last_commit == last else last_commit)


def render_record(record: SegmentRecord, seal_key: bytes | None) -> bytes:
    """The record's bytes, sealed like a manifest: with the key's HMAC when encrypted."""
    if bool(record.key_id) != (seal_key is not None):
        raise ValueError("an encrypted segment's record is sealed with its key, only then")
    return sealed(record_body(record), seal_key)


def parse_record(name: str, data: bytes, seal_key: bytes | None) -> SegmentRecord:
    """A record exactly as written, or IndexError_ naming it."""
    try:
        body = json.loads(data)
        seal = body.pop("seal")
        record = body_record(body)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise IndexError_(f"archive index record {name} does not parse: {error}") from None
    if seal_key is not None and not record.key_id:
        # A plain SHA-256 seal can be written by anyone who can write to the store: with a
        # key given, only records sealed under it are the archive's.
        raise IndexError_(f"archive index record {name} is not encrypted, yet a key was "
                          "given: refused, as an unencrypted record proves nothing about who "
                          "wrote it")
    if record.key_id and seal_key is None:
        raise IndexError_(f"archive index record {name} is encrypted (key id "
                          f"{record.key_id}) and no key was given")
    if not seal_holds(record_body(record), seal, seal_key if record.key_id else None):
        raise IndexError_(f"archive index record {name} fails its seal (edited, torn, or "
                          "sealed with another key)")
    if record.index_name != name:
        raise IndexError_(f"archive index record {name} names another segment, "
                          f"{record.segment}")
    return record


@dataclass(frozen=True)
class Break:
    """Where the archive is not contiguous in a domain."""

    domain: int
    after: str  # the last GTID before the break ("" at a record's own inside)
    before: str  # the first GTID after it
    kind: str  # "gap": transactions missing; "overlap": held twice

    def __str__(self) -> str:
        if self.kind == "gap":
            low = parse_mariadb(self.after)[0].seq + 1 if self.after else "?"
            high = parse_mariadb(self.before)[0].seq - 1
            return (f"domain {self.domain}: gap, seq {low}..{high} missing between "
                    f"{self.after or '?'} and {self.before}")
        return (f"domain {self.domain}: overlap, {self.before} is archived again after "
                f"{self.after}")


def breaks(records: list[SegmentRecord]) -> list[Break]:
    """Every gap and overlap, per domain, in sequence order."""
    found: list[Break] = []
    by_domain: dict[int, list[DomainRange]] = {}
    for record in records:
        for dr in record.domains:
            by_domain.setdefault(dr.domain, []).append(dr)
            if dr.last_seq - dr.first_seq + 1 != dr.count:
                found.append(Break(dr.domain, "", dr.last, "gap" if
                                   dr.last_seq - dr.first_seq + 1 > dr.count else "overlap"))
    for domain in sorted(by_domain):
        ranges = sorted(by_domain[domain], key=lambda r: (r.first_seq, r.last_seq))
        for prev, nxt in zip(ranges, ranges[1:], strict=False):
            if nxt.first_seq > prev.last_seq + 1:
                found.append(Break(domain, prev.last, nxt.first, "gap"))
            elif nxt.first_seq <= prev.last_seq:
                found.append(Break(domain, prev.last, nxt.first, "overlap"))
    return found


def archived_position(records: list[SegmentRecord]) -> dict[int, MariadbGtid]:
    """The newest archived GTID per domain: where the stream resumes."""
    newest: dict[int, DomainRange] = {}
    for record in records:
        for dr in record.domains:
            if dr.domain not in newest or dr.last_seq > newest[dr.domain].last_seq:
                newest[dr.domain] = dr
    return {domain: parse_mariadb(dr.last)[0] for domain, dr in newest.items()}


def newest_commit(records: list[SegmentRecord]) -> int:
    """Unix time the newest archived transaction committed (0 for an empty archive)."""
    return max((int(datetime.fromisoformat(r.last_commit).timestamp()) for r in records),
               default=0)


def position_text(position: dict[int, MariadbGtid]) -> str:
    return ",".join(str(position[d]) for d in sorted(position))


@dataclass(frozen=True)
class DomainSpan:
    """What the archive holds of one domain, end to end (breaks aside)."""

    domain: int
    first: str
    last: str
    transactions: int
    segments: int
    first_commit: str
    last_commit: str

    def __str__(self) -> str:
        return (f"domain {self.domain}: {self.first} .. {self.last}, {self.transactions} "
                f"transactions in {self.segments} segments, commits {self.first_commit} .. "
                f"{self.last_commit}")


def spans(records: list[SegmentRecord]) -> list[DomainSpan]:
    """Per domain, the archive's first and last GTID, counts and commit times."""
    by_domain: dict[int, list[DomainRange]] = {}
    for record in records:
        for dr in record.domains:
            by_domain.setdefault(dr.domain, []).append(dr)
    result = []
    for domain in sorted(by_domain):
        ranges = sorted(by_domain[domain], key=lambda r: (r.first_seq, r.last_seq))
        result.append(DomainSpan(
            domain, ranges[0].first, max(ranges, key=lambda r: r.last_seq).last,
            sum(r.count for r in ranges), len(ranges),
            min(r.first_commit for r in ranges), max(r.last_commit for r in ranges)))
    return result


def segment_start(name: str) -> MariadbGtid | None:
    """The first transaction's GTID a segment's name carries; None for a name the archive
    does not write."""
    if not name.startswith(BINLOG_SEGMENTS):
        return None
    fields = name[len(BINLOG_SEGMENTS):].split("-")
    if len(fields) != 4 or not all(f.isdigit() for f in fields[:3]):
        return None
    return MariadbGtid(int(fields[0]), int(fields[2]), int(fields[1]))
