"""The archive index's checkpoints on a file:// store and on moto's S3 server: an archive of a
few thousand small records is compacted by `mysqlsts archive compact`, after which a reader
GETs the checkpoint and the records written after it (counted at the store) and returns the
same records as reading every one; deltas on it (a few records each) are read with it, the
base and the newest delta and the records after it; an edited checkpoint is refused in one line
naming it; prune keeps the newest checkpoints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_backup_faults import s3_args

from mysqlsts.core.binlog_checkpoint import CHECKPOINT_RECORDS
from mysqlsts.core.binlog_index import SegmentRecord, parse_record
from mysqlsts.store.archive_checkpoints import checkpoint_names
from mysqlsts.store.base import ObjectStore, read_all
from mysqlsts.store.binlog_archive import (
    IndexCache,
    index_names,
    load_records,
    seal_segment,
    write_segment,
)
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.countingstore import CountingStore
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket
from tests.unit.test_pitr_plan import make_segment, transaction

pytestmark = pytest.mark.integration

RECORDS = 2 * CHECKPOINT_RECORDS + 500  # records archived before the checkpoint
AFTER = 20  # records archived after it


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    try:
        yield server
    finally:
        server.close()


def _store(kind: str, s3: S3Server, tmp_path: Path) -> tuple[ObjectStore, list[str]]:
    """The store, and the CLI's arguments for it."""
    if kind == "file":
        (tmp_path / "store").mkdir()
        return FileStore(tmp_path / "store"), ["--store", f"file://{tmp_path / 'store'}"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "s3-access").write_text(ACCESS_KEY)
    (secrets / "s3-secret").write_text(SECRET_KEY)
    bucket = f"compact-{tmp_path.name.lower().replace('_', '-')}"[:60]
    create_bucket(s3.endpoint, bucket)
    store = open_store(f"s3://{bucket}/set", S3Settings(
        endpoint=s3.endpoint, region=REGION, path_style=True,
        access_key_file=secrets / "s3-access", secret_key_file=secrets / "s3-secret"))
    return store, ["--store", f"s3://{bucket}/set", *s3_args(s3.endpoint, secrets)]


def _archive(store: ObjectStore, seqs: range) -> None:
    """One small segment per transaction, written as the archiver writes them (segment, then
    record), eight at a time."""
    def one(seq: int) -> None:
        write_segment(store, *seal_segment(make_segment([transaction(seq, 1000 + seq)]), None),
                      None)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, seqs))


def _every_record(store: ObjectStore) -> list[SegmentRecord]:
    return [parse_record(name, read_all(store, name), None) for name in index_names(store)]


def _mysqlsts(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mysqlsts", *args], text=True,
                          capture_output=True, timeout=300)


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_compacted_index_is_read_in_few_gets(kind: str, s3: S3Server, tmp_path: Path) -> None:
    store, args = _store(kind, s3, tmp_path)
    _archive(store, range(1, RECORDS + 1))
    done = _mysqlsts("archive", "compact", *args)
    assert done.returncode == 0, done.stderr
    (checkpoint,) = checkpoint_names(store)
    assert f"archive compact: wrote {checkpoint} holding {RECORDS} records" in done.stderr
    _archive(store, range(RECORDS + 1, RECORDS + AFTER + 1))

    counting = CountingStore(store)
    records = load_records(counting, None)
    assert len(counting.gets) == 1 + AFTER  # the checkpoint, and each record after it
    assert records == _every_record(store)
    assert len(records) == RECORDS + AFTER
    cache = IndexCache(counting, None)
    counting.gets.clear()
    assert cache.records() == records and len(counting.gets) == 1 + AFTER

    # The checkpoint edited in the store: every reader refuses it, in one line naming it.
    stored = read_all(store, checkpoint)
    store.delete(checkpoint)
    store.put_new(checkpoint, stored[:-9] + bytes(9))
    refused = _mysqlsts("archive", "check", *args)
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert f"archive checkpoint {checkpoint}" in refused.stderr
    store.delete(checkpoint)
    store.put_new(checkpoint, stored)

    # Three more checkpoints, each a delta on it (the records since it are well under an
    # eighth of it), each holding every record since it: a reader GETs the base and the newest
    # delta. Prune (no backups: no segment goes) keeps the base and the newest two deltas.
    deltas = []
    for low in (RECORDS + AFTER + 5 * n for n in range(3)):
        _archive(store, range(low + 1, low + 6))
        done = _mysqlsts("archive", "compact", *args)
        assert done.returncode == 0, done.stderr
        (written,) = set(checkpoint_names(store)) - {checkpoint, *deltas}
        assert f"wrote {written} holding {low + 5 - RECORDS} records (a level-1 delta)" in (
            done.stderr)
        deltas.append(written)
    _archive(store, range(RECORDS + AFTER + 16, RECORDS + AFTER + 16 + AFTER))
    counting.gets.clear()
    assert load_records(counting, None) == _every_record(store)
    assert len(counting.gets) == 2 + AFTER
    pruned = _mysqlsts("backup", "prune", *args, "--retain-window", "7d")
    assert pruned.returncode == 0, pruned.stderr
    assert "checkpoints_deleted=1" in pruned.stderr
    assert sorted(checkpoint_names(store)) == sorted([checkpoint, *deltas[1:]])
    counting.gets.clear()
    assert load_records(counting, None) == _every_record(store)
    assert len(counting.gets) == 2 + AFTER
