"""The archive index's checkpoints: many index records' contents in one object, so a reader
GETs one checkpoint and the few records written after it, not every record (pure).

    binlog/checkpoints/<serial>-<hash>.json.zst   zstd of a sealed JSON body

The listing of binlog/index/ stays the truth of what exists: a reader takes from the newest
checkpoint only the records whose names are still listed (a record retention deleted is gone
even if a checkpoint holds it) and reads every listed record the checkpoint does not hold, one
GET each, as without one. A checkpoint is written after the records it holds, create-only, so
it never holds a record that was never written; one cut short is not there at all.

The serial is the newest checkpoint's plus one, zero-padded, so names sort oldest first; the
hash (of the stored bytes) keeps two writers of the same serial from meeting. The body is
sealed as an index record is (core/sealed_json.py: the key's HMAC when the archive is
encrypted), and holds each record as its own record body: a checkpoint edited in the store is
refused in one line naming it, as an edited record is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS
from mysqlsts.core.binlog_index import SegmentRecord, body_record, record_body
from mysqlsts.core.sealed_json import seal_holds, sealed
from mysqlsts.errors import MysqlstsError

FORMAT = 1
SUFFIX = ".json.zst"

# A checkpoint is written once this many listed records are not in the newest one: a reader's
# GETs stay under it (a segment a second is about 17 minutes of records)...
CHECKPOINT_RECORDS = 1000
# ...or this share of the records it holds, whichever is more: each checkpoint rewrites the
# whole index, so writing one every 1000 records of a month-long archive (2.6M records) would
# upload the index ~86 times a day; a share keeps the upload per record archived constant
# (about 32 records' bytes, compressed) while a reader's GETs stay a 32nd of today's.
CHECKPOINT_SHARE = 32
# Retention keeps this many newest checkpoints: a reader that listed the checkpoints just
# before a new one was written still finds the one it chose.
CHECKPOINTS_KEPT = 2


class CheckpointError(MysqlstsError):
    """A checkpoint that is not exactly as written."""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    serial: int
    records: tuple[SegmentRecord, ...]


def checkpoint_serial(name: str) -> int | None:
    """The serial a checkpoint's name carries; None for a name the archive does not write."""
    if not name.startswith(BINLOG_CHECKPOINTS) or not name.endswith(SUFFIX):
        return None
    serial = name[len(BINLOG_CHECKPOINTS):].split("-", 1)[0]
    return int(serial) if len(serial) == 12 and serial.isdigit() else None


def newest_checkpoint(names: Sequence[str]) -> str | None:
    serials = [(checkpoint_serial(name), name) for name in names]
    return max(((s, n) for s, n in serials if s is not None), default=(0, None))[1]


def stale_checkpoints(names: Sequence[str]) -> list[str]:
    """The checkpoints retention deletes: all but the newest CHECKPOINTS_KEPT (never the
    newest), oldest first; names the archive does not write are left alone."""
    ours = sorted((s, n) for n in names if (s := checkpoint_serial(n)) is not None)
    return [name for _, name in ours[:-CHECKPOINTS_KEPT]]


def due(covered: int, uncovered: int) -> bool:
    """Whether a new checkpoint is due: `covered` listed records are in the newest one,
    `uncovered` are not."""
    return uncovered >= max(CHECKPOINT_RECORDS, covered // CHECKPOINT_SHARE)


def render_checkpoint(serial: int, records: Sequence[SegmentRecord], key_id: str,
                      seal_key: bytes | None) -> tuple[str, bytes]:
    """A checkpoint's name and stored bytes, holding `records` (in index name order)."""
    if bool(key_id) != (seal_key is not None):
        raise ValueError("an encrypted archive's checkpoint is sealed with its key, only then")
    if any(r.key_id != key_id for r in records):
        raise ValueError("a checkpoint holds records sealed under its own key only")
    body = {"format": FORMAT, "serial": serial, "key_id": key_id,
            "records": [record_body(r) for r in sorted(records, key=lambda r: r.index_name)]}
    stored = zstandard.ZstdCompressor(level=3).compress(sealed(body, seal_key))
    name = f"{BINLOG_CHECKPOINTS}{serial:012d}-{hashlib.sha256(stored).hexdigest()[:16]}{SUFFIX}"
    return name, stored


def parse_checkpoint(name: str, stored: bytes, seal_key: bytes | None) -> Checkpoint:
    """A checkpoint exactly as written, or CheckpointError naming it."""
    try:
        body = json.loads(zstandard.ZstdDecompressor().decompress(stored))
        seal = body.pop("seal")
        fmt, serial, key_id = int(body["format"]), int(body["serial"]), str(body["key_id"])
        records = tuple(body_record(r) for r in body["records"])
    except (ValueError, TypeError, KeyError, AttributeError, zstandard.ZstdError) as error:
        raise CheckpointError(f"archive checkpoint {name} does not parse: {error}") from None
    if fmt != FORMAT:
        raise CheckpointError(f"archive checkpoint {name} has format {fmt}, this version "
                              f"reads {FORMAT}")
    if seal_key is not None and not key_id:
        raise CheckpointError(f"archive checkpoint {name} is not encrypted, yet a key was "
                              "given: refused, as an unencrypted checkpoint proves nothing "
                              "about who wrote it")
    if key_id and seal_key is None:
        raise CheckpointError(f"archive checkpoint {name} is encrypted (key id {key_id}) and "
                              "no key was given")
    if not seal_holds(body, seal, seal_key if key_id else None):
        raise CheckpointError(f"archive checkpoint {name} fails its seal (edited, torn, or "
                              "sealed with another key)")
    if checkpoint_serial(name) != serial or any(
            r.key_id != key_id for r in records):
        raise CheckpointError(f"archive checkpoint {name} is not what its name and key say")
    return Checkpoint(name, serial, records)


def merge(listed: Sequence[str], checkpoint: Checkpoint | None
          ) -> tuple[dict[str, SegmentRecord], list[str]]:
    """Of the `listed` index names: the records the checkpoint holds, and the names it does
    not (to read one by one). A record the checkpoint holds that is no longer listed is
    gone (retention deleted it) and stays out."""
    held = {r.index_name: r for r in checkpoint.records} if checkpoint is not None else {}
    found = {name: held[name] for name in listed if name in held}
    return found, [name for name in listed if name not in held]
