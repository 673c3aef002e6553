"""The index's checkpoints in tiers (core/binlog_checkpoint.py): a base and deltas on it, found
by name alone; the due rule keeps a reader's GETs and the bytes uploaded per record archived
bounded over a long history; retention keeps what the newest readers chose; an edited delta is
refused naming it, and a deleted one only makes a reader read more records."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import zstandard

from mysqlsts.archive.compact import CompactionJob, compact
from mysqlsts.archive.inspect import inspect_archive
from mysqlsts.core import binlog_checkpoint as bc
from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS, BINLOG_INDEX
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.store.archive_checkpoints import checkpoint_names, remove_stale
from mysqlsts.store.binlog_archive import load_index, seal_segment
from mysqlsts.store.filestore import FileStore
from tests.countingstore import CountingStore
from tests.unit.test_index_checkpoint import KEYS, archive, full_read, write
from tests.unit.test_pitr_plan import make_segment, transaction


def records(seqs: range) -> list[SegmentRecord]:
    return [seal_segment(make_segment([transaction(s, 1000 + s)]), None)[0] for s in seqs]


def part(serial: int, fill: str = "ab") -> str:
    return f"{serial:012d}-{fill * 8}"


BASE = f"{BINLOG_CHECKPOINTS}{part(7)}{bc.BASE_SUFFIX}"


def delta(parent: str, serial: int, fill: str = "cd") -> str:
    for suffix in (bc.BASE_SUFFIX, bc.SUFFIX, bc.DELTA_SUFFIX):
        parent = parent.removesuffix(suffix)
    return f"{parent}.{part(serial, fill)}{bc.DELTA_SUFFIX}"


def single_tier_serial(name: str) -> int | None:
    """The single-tier version's rule (core/binlog_checkpoint.checkpoint_serial before the
    tiers): which names it takes for its checkpoints."""
    if not name.startswith(BINLOG_CHECKPOINTS) or not name.endswith(".json.zst"):
        return None
    serial = name[len(BINLOG_CHECKPOINTS):].split("-", 1)[0]
    return int(serial) if len(serial) == 12 and serial.isdigit() else None


def test_a_version_that_reads_only_format_1_leaves_what_is_written_now_alone() -> None:
    """Bases and deltas are written as FORMAT 2 under names the single-tier version does not
    take, so through a rolling update or a rollback it reads its own FORMAT 1 base (or none)
    and the records one by one, instead of refusing the archive; its bases are still read."""
    found = records(range(1, 4))
    base, _ = bc.render_checkpoint(8, found, "", None)
    on_base, _ = bc.render_checkpoint(1, found[2:], "", None, on=base)
    legacy = f"{BINLOG_CHECKPOINTS}{part(7)}{bc.SUFFIX}"
    on_legacy, _ = bc.render_checkpoint(1, found[2:], "", None, on=legacy)
    assert [single_tier_serial(n) for n in (base, on_base, on_legacy, legacy)] == [
        None, None, None, 7]
    assert bc.chain([legacy, on_legacy]) == [legacy, on_legacy]
    assert bc.chain([legacy, on_legacy, base, on_base]) == [base, on_base]


def test_a_delta_is_named_on_its_parent_and_single_tier_names_stay_bases() -> None:
    found = records(range(1, 4))
    name, stored = bc.render_checkpoint(3, found[2:], "", None, on=BASE)
    assert name.startswith(BASE.removesuffix(bc.BASE_SUFFIX) + ".000000000003-")
    assert name.endswith(bc.DELTA_SUFFIX) and not name.endswith(bc.SUFFIX)  # old readers skip it
    parsed = bc.parse_checkpoint(name, stored, None)
    assert (parsed.on, parsed.serial, parsed.records) == (BASE, 3, tuple(found[2:]))
    deeper, _ = bc.render_checkpoint(1, [], "", None, on=name)
    assert bc.parse_checkpoint(deeper, bc.render_checkpoint(1, [], "", None, on=name)[1],
                               None).on == name
    # A base names no parent.
    base_name, base = bc.render_checkpoint(7, found, "", None)
    assert b'"on"' not in zstandard.ZstdDecompressor().decompress(base)
    assert bc.parse_checkpoint(base_name, base, None).on == ""
    # A delta's body renamed onto another parent, or as a base: refused.
    own = name.removeprefix(BASE.removesuffix(bc.BASE_SUFFIX) + ".").removesuffix(
        bc.DELTA_SUFFIX)
    for wrong in (name.replace(part(7), part(8)), f"{BINLOG_CHECKPOINTS}{own}{bc.BASE_SUFFIX}",
                  f"{BINLOG_CHECKPOINTS}{own}{bc.SUFFIX}"):
        with pytest.raises(bc.CheckpointError, match="not what its name and key say"):
            bc.parse_checkpoint(wrong, stored, None)


def test_the_chain_is_chosen_by_name_alone() -> None:
    older = f"{BINLOG_CHECKPOINTS}{part(6)}{bc.SUFFIX}"
    d1, d2 = delta(BASE, 1), delta(BASE, 2)
    dd = delta(d2, 1)
    orphan = delta(f"{BINLOG_CHECKPOINTS}{part(9)}{bc.SUFFIX}", 5)  # its base is gone
    stale = delta(d1, 4)  # on an older delta
    names = [dd, d1, orphan, older, BASE, stale, d2, f"{BINLOG_CHECKPOINTS}README",
             f"{BINLOG_CHECKPOINTS}{part(1)}.json"]
    assert bc.chain(names) == [BASE, d2, dd]
    assert bc.newest_checkpoint(names) == dd
    assert bc.chain([older, d1]) == [older]
    assert bc.chain([]) == [] and bc.newest_checkpoint([]) is None
    assert [bc.checkpoint_serial(n) for n in (BASE, d2, dd, "binlog/index/x")] == [7, 2, 1, None]


def test_retention_keeps_the_newest_two_at_every_level_of_what_it_keeps() -> None:
    bases = [f"{BINLOG_CHECKPOINTS}{part(s)}{suffix}"
             for s, suffix in ((5, bc.SUFFIX), (6, bc.BASE_SUFFIX), (7, bc.BASE_SUFFIX))]
    on_newest = [delta(bases[2], s) for s in (1, 2, 3)]
    on_second = [delta(bases[1], s) for s in (1, 2, 3)]
    deep = [delta(on_newest[2], s) for s in (1, 2, 3)] + [delta(on_newest[0], 1)]
    names = [*bases, *on_newest, *on_second, *deep, f"{BINLOG_CHECKPOINTS}README"]
    stale = bc.stale_checkpoints(names)
    # The oldest base, each oldest sibling, and whatever is on a checkpoint not kept.
    assert stale == sorted([bases[0], on_newest[0], on_second[0], deep[0], deep[3]])
    assert set(bc.chain(names)).isdisjoint(stale)
    # A reader that listed before the newest delta (or the newest base) was written still
    # finds its chain.
    assert set(bc.chain([n for n in names if n != deep[2]])).isdisjoint(stale)
    assert set(bc.chain([n for n in names if not n.startswith(bases[2][:-9])])).isdisjoint(
        stale)


def test_due_levels() -> None:
    r, share = bc.CHECKPOINT_RECORDS, bc.CHECKPOINT_SHARE
    assert bc.level_due([], r - 1) is None and bc.level_due([], 0, always=True) is None
    assert bc.level_due([], r) == 0 and bc.level_due([], 1, always=True) == 0
    assert bc.level_due([share * r], r) == 1  # exactly an eighth: a delta
    assert bc.level_due([share * r - 1], r) == 0  # more: a new base
    assert bc.level_due([100 * r, 2 * r], r) == 1  # 3r <= 100r/8, but r > 2r/8
    assert bc.level_due([100 * r, 20 * r], r) == 2  # r <= 20r/8: a delta on the delta
    assert bc.level_due([100 * r, 12 * r, r], r) == 0  # 14r > 100r/8


def history(total: int) -> tuple[float, int, int]:
    """The due rule over `total` records archived one by one (a checkpoint written as soon as
    it is due, the level's records then held): the records uploaded in checkpoints per record
    archived, the longest chain, the most records in none (what a reader GETs one by one)."""
    held: list[int] = []
    uploaded = longest = most = uncovered = 0
    for _ in range(total):
        uncovered += 1
        most = max(most, uncovered)
        level = bc.level_due(held, uncovered)
        if level is not None:
            size = sum(held[level:]) + uncovered
            uploaded += size
            held, uncovered = [*held[:level], size], 0
            longest = max(longest, len(held))
    return uploaded / total, longest, most


@pytest.mark.parametrize("total", [5_000, 86_400, 3 * 86_400, 30 * 86_400])
def test_the_due_rule_bounds_a_start_and_the_upload_per_record(total: int) -> None:
    per_record, longest, most = history(total)
    # A start: the chain (one checkpoint per level, each an eighth of the one above) and
    # fewer records than one delta's worth, one GET each...
    levels = 1 + math.ceil(math.log(total / bc.CHECKPOINT_RECORDS, bc.CHECKPOINT_SHARE))
    assert longest <= max(levels, 1) and most <= bc.CHECKPOINT_RECORDS
    # ...and each record archived is uploaded about 8 + 4 per level times (a month: 17, where
    # one checkpoint of every record, due at a 32nd, uploads 32; a cumulative delta on one
    # base, due at an eighth of it, about 160).
    assert per_record <= bc.CHECKPOINT_SHARE + 4 * levels, per_record


@pytest.mark.parametrize("keys", [None, KEYS], ids=["plain", "keyed"])
def test_deltas_are_read_edited_refused_and_deleted_survived(tmp_path: Path,
                                                              keys: BackupKeys | None) -> None:
    store = CountingStore(FileStore(tmp_path))
    for seq in range(1, 81):
        write(store, seq, keys)
    base = compact(store, keys, always=True).written
    for seq in range(81, 86):
        write(store, seq, keys)
    done = compact(store, keys, always=True)
    assert done.written is not None and done.held == (80, 5)
    assert str(done) == f"wrote {done.written} holding 5 records (a level-1 delta)"
    assert base is not None and done.written.startswith(base.removesuffix(bc.BASE_SUFFIX) + ".")
    for seq in range(86, 89):
        write(store, seq, keys)
    store.gets.clear()
    index = load_index(store, keys)
    assert store.gets[:2] == [base, done.written] and len(store.gets) == 2 + 3
    assert index.held == (80, 5) and index.records == full_read(store, keys)
    assert (f"index: 88 records, 85 of them read from checkpoints {base}, {done.written}"
            in inspect_archive(store, keys, verify=False).lines)

    # Edited: refused in one line naming it.
    path = tmp_path / done.written
    stored = path.read_bytes()
    path.write_bytes(stored[:-9] + bytes(9))
    with pytest.raises(bc.CheckpointError, match=f"^archive checkpoint {done.written} "):
        load_index(store, keys)
    # Deleted (the fix): the base and every record after it, one by one.
    path.unlink()
    store.gets.clear()
    index = load_index(store, keys)
    assert index.held == (80,) and len(store.gets) == 1 + 8
    assert index.records == full_read(store, keys)
    # The base deleted too: every record, one by one; a delta left without its base is on no
    # chain, and retention deletes it.
    path.write_bytes(stored)
    (tmp_path / base).unlink()
    index = load_index(store, keys)
    assert index.chain == () and index.records == full_read(store, keys)
    assert remove_stale(store) == [done.written] and checkpoint_names(store) == []


def _start_and_wait(job: threading.Thread) -> None:
    threading.Thread.start(job)
    job.join()


def test_the_archiver_writes_deltas_and_resumes_through_the_chain(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bc, "CHECKPOINT_RECORDS", 10)
    # Each checkpoint job waited for as it starts: how many records a job leaves uncovered
    # then depends on the due rule alone, not on how far the archiving got beside it (under
    # load the thread can lag by hundreds of records).
    monkeypatch.setattr(CompactionJob, "start", _start_and_wait)
    store = CountingStore(FileStore(tmp_path))
    assert archive(store, 300).state.segments == 300
    index = load_index(store, None)
    assert len(index.chain) >= 2, index.held  # deltas on a base, written as it archived
    assert all(b * bc.CHECKPOINT_SHARE <= a for a, b in zip(index.held, index.held[1:],
                                                             strict=False))
    assert len(index.records) - index.covered < 2 * 10
    assert index.records == full_read(store, None)
    # A restarted archiver reads the chain and the records after it, not every record.
    store.gets.clear()
    assert archive(store, 320).state.segments == 20
    assert store.gets[:len(index.chain)] == [c.name for c in index.chain]
    # Each record the chain did not hold, once; those it wrote itself, never.
    read = [n for n in store.gets if n.startswith(BINLOG_INDEX)]
    assert sorted(read) == sorted(set(read)) and len(read) == len(index.records) - index.covered
    assert load_index(store, None).records == full_read(store, None)
