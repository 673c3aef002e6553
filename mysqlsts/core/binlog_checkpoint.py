"""The archive index's checkpoints: many index records' contents in one object, so a reader
GETs a few checkpoints and the few records written after them, not every record (pure).

    binlog/checkpoints/<serial>-<hash>.rows.zst                     a base: every record
    binlog/checkpoints/<base stem>.<serial>-<hash>.delta.zst        a delta on that base
    binlog/checkpoints/<delta stem>.<serial>-<hash>.delta.zst       a delta on that delta ...

A base holds every listed record; a delta holds the records that the checkpoint it is on (its
name begins with that one's stem) did not, when it was written: cumulative, so a newer delta on
the same checkpoint replaces the older. A reader takes the *chain*: the newest base, the newest
delta on it, the newest delta on that, and so on, by the names alone; what the chain holds plus
each listed record it does not (one GET each) is the index. A checkpoint is written at the
level the due rule (`level_due`) says: a delta on the deepest checkpoint it stays under an
eighth of, else a new base. So every checkpoint is at most an eighth of the one it is on: the
chain is at most 1 + log8(records / 1000) long (5 for a year of a segment a second), a reader
GETs those and fewer than CHECKPOINT_RECORDS records, and each record archived is uploaded in
about 8 + 4 per level checkpoints' worth of records (bench/index_bench.py has the figures).

The listing of binlog/index/ stays the truth of what exists: a reader takes from the chain only
the records whose names are still listed (a record retention deleted is gone even if a
checkpoint holds it). A checkpoint is written after the records it holds, create-only, so it
never holds a record that was never written; one cut short is not there at all. One that is
gone (deleted by a person or by retention) is simply not in the chain: a reader takes the
newest of what is listed (an older sibling, or nothing at that level) and reads the rest one by
one, slower, never wrong.

Serials count the checkpoints on the same parent (the bases' from 1, as before), zero-padded,
so siblings' names sort oldest first; the hash (of the stored bytes) keeps two writers of the
same serial from meeting. The body (FORMAT 2) is lines: a header (the format, serial, key id,
and the parent, `on`, a delta only), then the records as rows (`record_row`: its fields in
order), ROWS_PER_LINE a line, and last the seal (core/sealed_json.py: the key's HMAC when the
archive is encrypted) over every byte before it exactly as stored. A reader decompresses and
seals it a line at a time, never holds the whole body or re-encodes it, builds each record from
a list, not a dict of repeated keys, and gives the records only once the seal holds (a start's
parse of a month's base, 2.6M records, was some 40 s of CPU and twice the records' memory;
bench/index_bench.py). FORMAT 1 bases (`<serial>-<hash>.json.zst`: one document, each record
as its record body, the seal a key of it over the body re-serialised; the single-tier version's)
are still read, by that path, and nothing is written under such a name any more (see SUFFIX).
Either way a checkpoint edited in the store is refused in one line naming it, as an edited
record is.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import zstandard

from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS
from mysqlsts.core.binlog_index import SegmentRecord, body_record, record_row, row_record
from mysqlsts.core.gc_pause import gc_paused
from mysqlsts.core.sealed_json import Sealing, seal_bytes, seal_holds
from mysqlsts.errors import MysqlstsError

FORMAT = 2  # written: rows, sealed over the bytes as stored
FORMAT_1 = 1  # read too: record bodies, sealed over the body re-serialised
ROWS_PER_LINE = 1000  # a reader holds one line of rows at a time, never the whole body
BASE_SUFFIX = ".rows.zst"  # a base, written as FORMAT 2
SUFFIX = ".json.zst"  # a FORMAT 1 base (the single-tier version's): read, no longer written
DELTA_SUFFIX = ".delta.zst"  # a delta
# Neither a base nor a delta written now ends in SUFFIX: a version that reads only FORMAT 1
# bases (the single-tier one) leaves them alone, takes its newest FORMAT 1 base if one is still
# kept and reads the other records one by one (slower, never wrong), and so keeps working
# through a rolling update or a rollback instead of refusing the archive.
_SUFFIXES = (BASE_SUFFIX, SUFFIX, DELTA_SUFFIX)
_PART = re.compile(r"\d{12}-[0-9a-f]{16}")  # <serial>-<hash>

# A checkpoint is written once this many listed records are in none of the chain's: a reader's
# GETs stay under it (a segment a second is about 17 minutes of records)...
CHECKPOINT_RECORDS = 1000
# ...at the deepest level at which it holds at most this share of the checkpoint it is on (a new
# base when there is none): a base is rewritten once records since it are an eighth of it, so
# the bytes uploaded per record archived stay small whatever the archive's age, and the chain
# stays short.
CHECKPOINT_SHARE = 8
# Retention keeps the newest this many bases, and on each checkpoint it keeps the newest this
# many written on it: a reader that listed the checkpoints just before a new one was written
# still finds the chain it chose.
CHECKPOINTS_KEPT = 2


class CheckpointError(MysqlstsError):
    """A checkpoint that is not exactly as written."""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    serial: int
    records: tuple[SegmentRecord, ...]
    on: str = ""  # the checkpoint a delta is on; "" for a base


def _stem(name: str) -> str:
    """A checkpoint's name without its suffix: what a delta on it names it by (a base's stem
    is the same whichever format it was written in)."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _place(name: str) -> tuple[str, int] | None:
    """A checkpoint name's parent's stem ("" for a base) and serial; None for a name the
    archive does not write."""
    rest = name[len(BINLOG_CHECKPOINTS):] if name.startswith(BINLOG_CHECKPOINTS) else ""
    delta = rest.endswith(DELTA_SUFFIX)
    if not delta and not rest.endswith((BASE_SUFFIX, SUFFIX)):
        return None
    parts = _stem(rest).split(".")  # a delta: its parent's parts, then its own
    if (len(parts) > 1) != delta or not all(map(_PART.fullmatch, parts)):
        return None
    parent = BINLOG_CHECKPOINTS + ".".join(parts[:-1]) if delta else ""
    return parent, int(parts[-1][:12])


def checkpoint_serial(name: str) -> int | None:
    """The serial a checkpoint's name carries; None for a name the archive does not write."""
    place = _place(name)
    return place[1] if place is not None else None


def _children(names: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """Each parent's checkpoints, by the parent's stem ("" the bases'), oldest first."""
    children: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        place = _place(name)
        if place is not None:
            children.setdefault(place[0], []).append((place[1], name))
    return {parent: sorted(found) for parent, found in children.items()}


def chain(names: Sequence[str]) -> list[str]:
    """The checkpoints a reader takes, by name alone: the newest base, the newest delta on it,
    the newest on that, ... (a delta whose parent is not listed is on no chain)."""
    children, found, at = _children(names), [], ""
    while at in children:
        name = children[at][-1][1]
        found.append(name)
        at = _stem(name)
    return found


def newest_checkpoint(names: Sequence[str]) -> str | None:
    """The deepest checkpoint of the chain (None: no checkpoint)."""
    taken = chain(names)
    return taken[-1] if taken else None


def stale_checkpoints(names: Sequence[str]) -> list[str]:
    """The checkpoints retention deletes, in name order: all but the newest CHECKPOINTS_KEPT
    bases and, on each checkpoint kept, the newest CHECKPOINTS_KEPT written on it (never one
    of the chain); names the archive does not write are left alone."""
    children, kept, todo = _children(names), set(), [""]
    while todo:
        for _, name in children.get(todo.pop(), [])[-CHECKPOINTS_KEPT:]:
            kept.add(name)
            todo.append(_stem(name))
    return sorted(n for n in names if _place(n) is not None and n not in kept)


def level_due(held: Sequence[int], uncovered: int, *, always: bool = False) -> int | None:
    """The level of the chain at which a checkpoint is due (0: a new base; len(held): a delta
    on the deepest), or None: `held[i]` listed records are taken from the chain's i-th
    checkpoint, `uncovered` from none. Due once CHECKPOINT_RECORDS are uncovered (`always`:
    once any is); it holds the records of its level and below, and goes on the deepest
    checkpoint it stays within a CHECKPOINT_SHARE-th of."""
    if uncovered == 0 or (uncovered < CHECKPOINT_RECORDS and not always):
        return None
    for level in range(len(held), 0, -1):
        if (sum(held[level:]) + uncovered) * CHECKPOINT_SHARE <= held[level - 1]:
            return level
    return 0


def _line(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def render_checkpoint(serial: int, records: Sequence[SegmentRecord], key_id: str,
                      seal_key: bytes | None, on: str = "") -> tuple[str, bytes]:
    """A checkpoint's name and stored bytes, holding `records` (in index name order): a base,
    or (`on` a checkpoint's name) a delta on that one."""
    if bool(key_id) != (seal_key is not None):
        raise ValueError("an encrypted archive's checkpoint is sealed with its key, only then")
    if any(r.key_id != key_id for r in records):
        raise ValueError("a checkpoint holds records sealed under its own key only")
    if on and _place(on) is None:
        raise ValueError(f"a delta is on a checkpoint, not on {on!r}")
    head: dict[str, object] = {"format": FORMAT, "serial": serial, "key_id": key_id}
    if on:
        head["on"] = on
    rows = [record_row(r) for r in sorted(records, key=lambda r: r.index_name)]
    body = b"".join([_line(head), *(_line(rows[at:at + ROWS_PER_LINE])
                                     for at in range(0, len(rows), ROWS_PER_LINE))])
    stored = zstandard.ZstdCompressor(level=3).compress(body + seal_bytes(body, seal_key).encode())
    part = f"{serial:012d}-{hashlib.sha256(stored).hexdigest()[:16]}"
    if not on:
        return f"{BINLOG_CHECKPOINTS}{part}{BASE_SUFFIX}", stored
    return f"{_stem(on)}.{part}{DELTA_SUFFIX}", stored


def parse_checkpoint(name: str, stored: bytes, seal_key: bytes | None) -> Checkpoint:
    """A checkpoint exactly as written (either format), or CheckpointError naming it."""
    try:
        with gc_paused():
            lines = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(stored))
            first = lines.readline()
            head = json.loads(first)
            if "seal" in head:
                return _format_1(name, head, seal_key)
            return _format_2(name, head, first, lines, seal_key)
    except (ValueError, TypeError, KeyError, AttributeError, zstandard.ZstdError) as error:
        raise CheckpointError(f"archive checkpoint {name} does not parse: {error}") from None


def _format_2(name: str, head: dict[str, Any], first: bytes, lines: Iterable[bytes],
              seal_key: bytes | None) -> Checkpoint:
    """The header line read; the row lines are read, and sealed, one at a time (the body is
    never whole in memory), and the records are given only once the seal holds."""
    fmt, serial, key_id, on = (int(head["format"]), int(head["serial"]), str(head["key_id"]),
                               str(head.get("on", "")))
    if fmt != FORMAT:
        raise CheckpointError(f"archive checkpoint {name} has format {fmt}, this version "
                              f"reads {FORMAT_1} and {FORMAT}")
    _keys_agree(name, key_id, seal_key)
    sealing = Sealing(seal_key if key_id else None)
    sealing.update(first)
    records: list[SegmentRecord] = []
    problem: Exception | None = None
    seal = b""
    for line in lines:
        if not line.endswith(b"\n"):  # the last line: the seal
            seal = line
            break
        sealing.update(line)
        if problem is None:  # an edit that breaks a line is told as an edit: the seal first
            try:
                records.extend([row_record(row, key_id) for row in json.loads(line)])
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                problem = error
    if not sealing.holds(seal.decode(errors="replace")):
        raise CheckpointError(f"archive checkpoint {name} fails its seal (edited, torn, or "
                              "sealed with another key)")
    if problem is not None:
        raise problem
    return _named(name, serial, on, key_id, tuple(records))


def _format_1(name: str, body: dict[str, Any], seal_key: bytes | None) -> Checkpoint:
    """One document, sealed over the body re-serialised, each record its record body."""
    presented = body.pop("seal")
    fmt, serial, key_id, on = (int(body["format"]), int(body["serial"]), str(body["key_id"]),
                               str(body.get("on", "")))
    records = tuple([body_record(r) for r in body["records"]])
    if fmt != FORMAT_1:
        raise CheckpointError(f"archive checkpoint {name} has format {fmt}, this version "
                              f"reads {FORMAT_1} and {FORMAT}")
    _keys_agree(name, key_id, seal_key)
    if not seal_holds(body, presented, seal_key if key_id else None):
        raise CheckpointError(f"archive checkpoint {name} fails its seal (edited, torn, or "
                              "sealed with another key)")
    return _named(name, serial, on, key_id, records)


def _keys_agree(name: str, key_id: str, seal_key: bytes | None) -> None:
    if seal_key is not None and not key_id:
        raise CheckpointError(f"archive checkpoint {name} is not encrypted, yet a key was "
                              "given: refused, as an unencrypted checkpoint proves nothing "
                              "about who wrote it")
    if key_id and seal_key is None:
        raise CheckpointError(f"archive checkpoint {name} is encrypted (key id {key_id}) and "
                              "no key was given")


def _named(name: str, serial: int, on: str, key_id: str,
           records: tuple[SegmentRecord, ...]) -> Checkpoint:
    if _place(name) != (_stem(on), serial) or any(r.key_id != key_id for r in records):
        raise CheckpointError(f"archive checkpoint {name} is not what its name and key say")
    return Checkpoint(name, serial, records, on)


def merge(listed: Sequence[str], checkpoints: Sequence[Checkpoint]
          ) -> tuple[dict[str, SegmentRecord], list[str], tuple[int, ...]]:
    """Of the `listed` index names: the records the chain `checkpoints` holds (in listed
    order), the names it does not (to read one by one), and how many of them each checkpoint
    gave. A record a checkpoint holds that is no longer listed is gone (retention deleted it)
    and stays out."""
    wanted = set(listed)
    held: dict[str, SegmentRecord] = {}
    given = []
    for checkpoint in checkpoints:
        before = len(held)
        for record in checkpoint.records:
            if record.index_name in wanted:
                held.setdefault(record.index_name, record)
        given.append(len(held) - before)
    found = {name: held[name] for name in listed if name in held}
    return found, [name for name in listed if name not in held], tuple(given)
