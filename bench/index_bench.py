"""Archive index benchmark (issue 18, the index's checkpoints): what a start costs reading the
index with no checkpoint and through the checkpoints' chain; prints figures, not a test.

(a) Start: for each store (file:// under the bench's scratch directory, and moto's S3 server on
    loopback, tests/s3server.py) and each --records N, N small one-transaction index records
    are written (the records only: a start reads no segment), with the checkpoints the
    archiver's due rule writes as it goes (`compact` after every 1,000, the records known, as
    the archiver's job has them), then 999 more: the most a reader ever reads one by one. Then
    the index is read as a start reads it, once with no checkpoint (every record, one GET
    each) and once through the chain (the base, the deltas on it, and the 999): GETs, bytes
    and seconds, counted at the store, and the ratio.
(b) Upload: the checkpoint bytes uploaded per 1,000 records archived over a long history at a
    segment a second (86,400 records a day), by pure arithmetic over the due rules (no store:
    a year is 31.5M records), with the bytes per record measured in (a)'s largest base; beside
    it, with the same arithmetic, the single checkpoint this replaced (every record, due at a
    32nd of them) and a two-tier scheme (one cumulative delta on the base, a new base once the
    delta is an eighth of it) whose deltas grow with the base.
(c) Start CPU: for each --cpu-records N, a file:// store whose index lists N records (named
    only: a start through the checkpoint lists them and reads none), all held by one base
    checkpoint; the CPU seconds (this process's) of a start's read of the index and the
    archiver's resume passes (breaks, archived position, newest commit), phase by phase, with
    the base written as before (FORMAT 1, the resume's passes as they were: bench/index_before.py)
    and as now (FORMAT 2), in the same process, and the ratio.

Run: .venv/bin/python -m bench.index_bench [--records 10000 100000] [--s3-records 10000]
     [--cpu-records 100000 1000000] [--write-docs docs/benchmarks.md]
Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from bench import index_before
from bench.harness import LoadWatch, log, publish, scratch
from mysqlsts.archive.compact import compact
from mysqlsts.core import binlog_checkpoint as bc
from mysqlsts.core.backup_layout import BINLOG_INDEX, BINLOG_SEGMENTS
from mysqlsts.core.binlog_index import (
    DomainRange,
    SegmentRecord,
    archived_position,
    breaks,
    newest_commit,
    render_record,
)
from mysqlsts.store.archive_checkpoints import read_chain, write_checkpoint
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.binlog_archive import index_names, load_index, seal_segment
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.countingstore import CountingStore
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket
from tests.unit.test_pitr_plan import make_segment, transaction

_T = TypeVar("_T")
DAY = 86_400  # records a day at a segment a second


@dataclass(frozen=True)
class Read:
    gets: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class Start:
    store: str
    records: int
    chain: tuple[int, ...]  # records each checkpoint of the chain holds
    chain_bytes: tuple[int, ...]  # each one's stored size
    full: Read  # no checkpoint
    tiers: Read  # through the chain
    listing: float  # seconds to list the index names alone (what every read starts with)


def _read(store: ObjectStore, *, checkpoint: bool) -> Read:
    counted = CountingStore(store)
    began = time.monotonic()
    load_index(counted, None, checkpoint=checkpoint)
    return Read(len(counted.gets), counted.bytes, time.monotonic() - began)


def _write(store: ObjectStore, seqs: range, known: dict[str, SegmentRecord]) -> None:
    """One small record per transaction, eight writes at a time (the records only)."""
    def one(seq: int) -> SegmentRecord:
        record, _ = seal_segment(make_segment([transaction(seq, 1_700_000_000 + seq)]), None)
        store.put_new(record.index_name, render_record(record, None))
        return record

    with ThreadPoolExecutor(8) as pool:
        known.update((r.index_name, r) for r in pool.map(one, seqs))


def measure_start(kind: str, store: ObjectStore, records: int) -> Start:
    known: dict[str, SegmentRecord] = {}
    for low in range(0, records, bc.CHECKPOINT_RECORDS):
        _write(store, range(low + 1, min(low + bc.CHECKPOINT_RECORDS, records) + 1), known)
        compact(store, None, known)
    _write(store, range(records + 1, records + bc.CHECKPOINT_RECORDS), known)
    index = load_index(store, None)
    sizes = tuple(sum(len(c) for c in store.get(c.name)) for c in index.chain)
    full = _read(store, checkpoint=False)
    tiers = _read(store, checkpoint=True)
    began = time.monotonic()
    sum(1 for _ in index_names(store))
    listing = time.monotonic() - began
    log(f"{kind} {records}: every record {full.gets} GETs {full.seconds:.1f}s; through "
        f"{len(index.chain)} checkpoints {tiers.gets} GETs {tiers.seconds:.2f}s")
    return Start(kind, records + bc.CHECKPOINT_RECORDS - 1, index.held, sizes, full, tiers,
                 listing)


# -- (c) a start's CPU over one base of N records ---------------------------------------------


@dataclass(frozen=True)
class StartCpu:
    records: int
    path: str  # "before" or "now"
    listing: float  # CPU seconds: the index names listed
    checkpoint: float  # ... the base read and parsed (decompress, seal, JSON, the records)
    merge: float  # ... the listed names matched to the base's records
    resume: float  # ... breaks, archived position, newest commit
    base_bytes: int

    @property
    def total(self) -> float:
        return self.listing + self.checkpoint + self.merge + self.resume


def _cpu(work: Callable[[], _T]) -> tuple[_T, float]:
    began = time.process_time()
    value = work()
    return value, time.process_time() - began


def synthetic_records(n: int) -> list[SegmentRecord]:
    """N one-transaction records as the archiver writes them (the names and fields of
    seal_segment's, without sealing N segments)."""
    template, _ = seal_segment(make_segment([transaction(1, 1_700_000_000)]), None)
    records = []
    for seq in range(1, n + 1):
        gtid, commit = f"0-1-{seq}", datetime.fromtimestamp(1_700_000_000 + seq, UTC).isoformat()
        digest = hashlib.sha256(gtid.encode()).hexdigest()  # each its own, as a segment's is
        records.append(SegmentRecord(
            f"{BINLOG_SEGMENTS}{0:010d}-{seq:020d}-{1:010d}-{digest[:16]}", template.size,
            digest, template.plain_size, 1, commit, commit,
            (DomainRange(0, gtid, gtid, 1, commit, commit),), ""))
    return records


def _start_cpu(store: ObjectStore, n: int, path: str,
               read: Callable[[ObjectStore], tuple[bc.Checkpoint, ...]],
               resume: Callable[[list[SegmentRecord]], object]) -> StartCpu:
    names, listing = _cpu(lambda: list(index_names(store)))
    chain, checkpoint = _cpu(lambda: read(store))
    (found, rest, _), merge = _cpu(lambda: bc.merge(names, chain))
    assert not rest and len(found) == n, "the base holds every listed record"
    records = list(found.values())
    _, resumed = _cpu(lambda: resume(records))
    base = sum(len(c) for c in store.get(chain[0].name))
    log(f"start cpu {n} {path}: listing {listing:.2f}s checkpoint {checkpoint:.2f}s merge "
        f"{merge:.2f}s resume {resumed:.2f}s")
    return StartCpu(n, path, listing, checkpoint, merge, resumed, base)


def _resume_now(records: list[SegmentRecord]) -> None:
    breaks(records)
    archived_position(records)
    newest_commit(records)


def measure_start_cpu(root: Path, n: int) -> list[StartCpu]:
    """The index's N names (empty files: never read) and one base, written before and now."""
    (root / BINLOG_INDEX).mkdir(parents=True)
    store = FileStore(root)
    records = synthetic_records(n)
    for record in records:
        (root / record.index_name).touch()
    name, stored = index_before.render_format_1(1, records)
    store.put_new(name, stored)
    before = _start_cpu(store, n, "before", index_before.read_chain, index_before.resume_work)
    store.delete(name)
    write_checkpoint(store, None, 1, records)
    del records
    return [before, _start_cpu(store, n, "now", lambda s: read_chain(s, None), _resume_now)]


def cpu_report(runs: Sequence[StartCpu]) -> str:
    lines = [
        "(c) A start's CPU seconds (this process's) over one base checkpoint holding every listed "
        "record, file://, phase by phase: before (FORMAT 1 base, the resume's passes as they were) "
        "and now (FORMAT 2), in the same process.",
        "",
        "| records | start | base bytes | listing | checkpoint read | merge | resume passes "
        "| total CPU s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r.records:,} | {r.path} | {r.base_bytes:,} | {r.listing:.2f} | "
              f"{r.checkpoint:.2f} | {r.merge:.2f} | {r.resume:.2f} | {r.total:.2f} |"
              for r in runs]
    lines += ["", "Ratios (before / now, CPU seconds):", ""]
    for before, now in zip(runs[::2], runs[1::2], strict=True):
        lines.append(
            f"- {before.records:,} records: the start {before.total / now.total:.1f}x "
            f"({before.total:.2f} s to {now.total:.2f} s); without the listing (file://'s, "
            f"a directory walk) {(before.total - before.listing):.2f} s to "
            f"{(now.total - now.listing):.2f} s, "
            f"{(before.total - before.listing) / (now.total - now.listing):.1f}x")
    return "\n".join(lines)


# -- (b) the upload over a long history, by arithmetic over the due rules --------------------


def single_tier(held: list[int], uncovered: int) -> int | None:
    """The rule this replaced: one checkpoint of every record, due at 1,000 uncovered or a
    32nd of those it holds, whichever is more."""
    covered = sum(held)
    return 0 if uncovered >= max(bc.CHECKPOINT_RECORDS, covered // 32) else None


def two_tiers(held: list[int], uncovered: int) -> int | None:
    """A base and one cumulative delta on it (due at 1,000 uncovered), a new base once the
    delta would be an eighth of the base."""
    if uncovered < bc.CHECKPOINT_RECORDS:
        return None
    since = sum(held[1:]) + uncovered
    return 1 if held and since * bc.CHECKPOINT_SHARE <= held[0] else 0


@dataclass(frozen=True)
class History:
    per_record: float  # records uploaded in checkpoints per record archived
    checkpoints: int  # ... in this many checkpoints
    longest: int  # the longest chain a reader GETs
    most: int  # the most records in none of its checkpoints (GETs one by one)


def history(rule: Callable[[list[int], int], int | None], total: int) -> History:
    """`rule` over `total` records archived (checked per 1,000: each rule is due only at a
    multiple of 1,000 uncovered records, except the single tier's share, which rounds up)."""
    held: list[int] = []
    uploaded = written = longest = most = uncovered = 0
    for _ in range(total // bc.CHECKPOINT_RECORDS):
        uncovered += bc.CHECKPOINT_RECORDS
        level = rule(held, uncovered)
        most = max(most, uncovered - 1 if level is not None else uncovered)
        if level is not None:
            size = sum(held[level:]) + uncovered
            uploaded, written = uploaded + size, written + 1
            held, uncovered = [*held[:level], size], 0
            longest = max(longest, len(held))
    return History(uploaded / total, written, longest, most)


RULES = (("one checkpoint of every record, due at a 32nd (before)", single_tier),
         ("a base and one cumulative delta, new base at an eighth", two_tiers),
         ("the chain: deltas on deltas, each within an eighth (now)", bc.level_due))


def report(starts: Sequence[Start]) -> str:
    lines = [
        "(a) A start's read of the index: N records written as the archiver writes them "
        "(checkpoints by its due rule), then 999 more, the most a reader ever reads one by one; "
        "GETs and bytes counted at the store.",
        "",
        "| store | records | read | GETs | bytes | seconds |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for s in starts:
        chain = " + ".join(f"{n:,}" for n in s.chain)
        lines += [
            f"| {s.store} | {s.records:,} | every record, no checkpoint | {s.full.gets:,} | "
            f"{s.full.bytes:,} | {s.full.seconds:.2f} |",
            f"| {s.store} | {s.records:,} | the chain ({chain} records) and the rest | "
            f"{s.tiers.gets:,} | {s.tiers.bytes:,} | {s.tiers.seconds:.2f} |",
        ]
    lines += ["", "Ratios (no checkpoint / through the chain, same run):", ""]
    lines += [f"- {s.store}, {s.records:,} records: {s.full.gets / s.tiers.gets:.0f}x fewer "
              f"GETs, {s.full.seconds / s.tiers.seconds:.1f}x faster, "
              f"{s.full.bytes / s.tiers.bytes:.1f}x fewer bytes (listing the names alone, "
              f"which both reads begin with: {s.listing:.2f} s)" for s in starts]
    largest = max(starts, key=lambda s: s.chain[0] if s.chain else 0)
    per_record = largest.chain_bytes[0] / largest.chain[0]
    lines += [
        "",
        f"(b) Checkpoint uploads over a long history at a segment a second (86,400 records a "
        f"day), by arithmetic over each due rule (not measured: a year is 31.5M records); "
        f"bytes = records uploaded x {per_record:.0f} bytes a record (compressed, measured in "
        f"(a)'s largest base, {largest.chain_bytes[0]:,} bytes for {largest.chain[0]:,} "
        "records):",
        "",
        "| due rule | archive age | checkpoint bytes per 1,000 records archived | checkpoints "
        "written | longest chain | most records read one by one |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, rule in RULES:
        for days in (1, 30, 365):
            h = history(rule, days * DAY)
            lines.append(f"| {name} | {days} d | {h.per_record * per_record * 1000 / 1e6:.1f} MB "
                         f"| {h.checkpoints:,} | {h.longest} | {h.most:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--s3-records", type=int, nargs="*", default=[10_000])
    parser.add_argument("--cpu-records", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--write-docs", type=Path)
    args = parser.parse_args()
    load = LoadWatch()
    root = scratch("mysqlsts-index-bench-")
    starts, cpu = [], []
    try:
        for n in args.cpu_records:
            cpu += measure_start_cpu(root / f"cpu-{n}", n)
            shutil.rmtree(root / f"cpu-{n}", ignore_errors=True)
            load.sample()
        for n in args.records:
            (root / f"file-{n}").mkdir()
            starts.append(measure_start("file://", FileStore(root / f"file-{n}"), n))
            load.sample()
        if args.s3_records:
            secrets = root / "secrets"
            secrets.mkdir()
            (secrets / "access").write_text(ACCESS_KEY)
            (secrets / "secret").write_text(SECRET_KEY)
            server = S3Server()
            try:
                for n in args.s3_records:
                    create_bucket(server.endpoint, f"index-{n}")
                    store = open_store(f"s3://index-{n}/set", S3Settings(
                        endpoint=server.endpoint, region=REGION, path_style=True,
                        access_key_file=secrets / "access", secret_key_file=secrets / "secret"))
                    starts.append(measure_start("S3 (moto, loopback)", store, n))
                    load.sample()
            finally:
                server.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = "\n\n".join(part for part in (report(starts) if starts else "",
                                          cpu_report(cpu) if cpu else "") if part)
    publish(text, section="index-bench", heading="## Archive index: a start's read",
            load=load, write_docs=args.write_docs)


if __name__ == "__main__":
    main()
