"""The archive index's start as it was before checkpoint FORMAT 2 (the reference the index
bench measures the start against, in the same process): a checkpoint written as one sealed
document of record bodies, parsed as it was (the collector on, the seal over the body
re-serialised, each record from its body), and the resume's passes over every record parsing
each range's GTID text on every access."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import zstandard

from mysqlsts.core import binlog_checkpoint as bc
from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS
from mysqlsts.core.binlog_index import SegmentRecord, body_record, record_body
from mysqlsts.core.gtid import MariadbGtid, parse_mariadb
from mysqlsts.core.sealed_json import seal_holds, sealed
from mysqlsts.store.archive_checkpoints import checkpoint_names
from mysqlsts.store.base import ObjectStore, read_all


def render_format_1(serial: int, records: Sequence[SegmentRecord]) -> tuple[str, bytes]:
    """An unencrypted base as the FORMAT 1 writer wrote it."""
    body = {"format": bc.FORMAT_1, "serial": serial, "key_id": "",
            "records": [record_body(r) for r in sorted(records, key=lambda r: r.index_name)]}
    stored = zstandard.ZstdCompressor(level=3).compress(sealed(body, None))
    return f"{BINLOG_CHECKPOINTS}{serial:012d}-{'0' * 16}{bc.SUFFIX}", stored


def read_chain(store: ObjectStore) -> tuple[bc.Checkpoint, ...]:
    """An unencrypted chain (here: one base) read and parsed as FORMAT 1 was."""
    found = []
    for name in bc.chain(checkpoint_names(store)):
        body = json.loads(zstandard.ZstdDecompressor().decompress(read_all(store, name)))
        seal = body.pop("seal")
        records = tuple(body_record(r) for r in body["records"])
        assert seal_holds(body, seal, None), f"{name} fails its seal"
        found.append(bc.Checkpoint(name, int(body["serial"]), records))
    return tuple(found)


def _seq(text: str) -> int:
    return parse_mariadb(text)[0].seq


def resume_work(records: list[SegmentRecord]) -> int:
    """breaks, archived_position and newest_commit as they were (how many breaks)."""
    found = 0
    by_domain: dict[int, list[tuple[str, str, int]]] = {}
    for record in records:
        for dr in record.domains:
            by_domain.setdefault(dr.domain, []).append((dr.first, dr.last, dr.count))
            if _seq(dr.last) - _seq(dr.first) + 1 != dr.count:
                found += 1
    for ranges in by_domain.values():
        ranges.sort(key=lambda r: (_seq(r[0]), _seq(r[1])))
        for prev, nxt in zip(ranges, ranges[1:], strict=False):
            if _seq(nxt[0]) > _seq(prev[1]) + 1 or _seq(nxt[0]) <= _seq(prev[1]):
                found += 1
    newest: dict[int, MariadbGtid] = {}
    for record in records:
        for dr in record.domains:
            last = parse_mariadb(dr.last)[0]
            if dr.domain not in newest or last.seq > newest[dr.domain].seq:
                newest[dr.domain] = last
    max((int(datetime.fromisoformat(r.last_commit).timestamp()) for r in records), default=0)
    return found
