"""The store's backup manifests read incrementally (store/manifest_cache.py), over a file://
store: a second pass lists the backups and GETs no manifest, yet sees a backup deleted or
added since; through `store_bases`, what the primary's purger reads every minute."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mysqlsts.core.backup_layout import backup_id, manifest_name
from mysqlsts.core.backup_manifest import Manifest
from mysqlsts.core.backup_verify import FAILED, OK, record_name
from mysqlsts.sidecar.purge import store_bases
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.manifest_cache import ManifestCache
from mysqlsts.store.parts import PartWriter, commit, remove_backup
from tests.countingstore import CountingStore


def take(store: ObjectStore, suffix: str, gtid: str, flavor: str = "mariadb") -> str:
    """A complete backup at `gtid`: one part, then its manifest."""
    backup = backup_id(datetime(2026, 12, 5, 5, 0, tzinfo=UTC), suffix)
    writer = PartWriter(store, backup, None, part_size=1000, parallel=1)
    writer.write(b"base backup bytes")
    commit(store, Manifest(backup, "mysql", flavor, "10.11.6", gtid, "2026-12-05T05:00:00+00:00",
                           "2026-12-05T05:01:00+00:00", writer.finish(), "zstd", ""), None)
    return backup


def test_a_second_pass_reads_no_manifest_and_still_sees_deleted_and_new_backups(
        tmp_path: Path) -> None:
    store = CountingStore(FileStore(tmp_path))
    first = take(store, "aaaaaa", "0-100-5")
    take(store, "bbbbbb", "0-100-9")
    take(store, "cccccc", "0-100-7", flavor="mysql")  # not a base for MariaDB's binary logs
    bases = store_bases(store, lambda key_id: None)
    assert sorted(bases()) == ["0-100-5", "0-100-9"]
    assert len(store.gets) == 3 and manifest_name(first) in store.gets
    store.gets.clear()
    assert sorted(bases()) == ["0-100-5", "0-100-9"]
    assert store.gets == []  # a listing only
    remove_backup(store, first)
    third = take(store, "dddddd", "0-100-12")
    assert sorted(bases()) == ["0-100-12", "0-100-9"]
    assert store.gets == [manifest_name(third)]  # the one still listed is not read again


def test_a_damaged_manifest_is_left_out_and_read_again(tmp_path: Path) -> None:
    store = CountingStore(FileStore(tmp_path))
    good = take(store, "aaaaaa", "0-100-5")
    bad = take(store, "bbbbbb", "0-100-9")
    path = tmp_path / manifest_name(bad)
    path.write_bytes(path.read_bytes().replace(b"0-100-9", b"0-100-8"))  # the seal breaks
    cache = ManifestCache(store)
    assert [m.backup_id for m in cache.manifests()] == [good]
    store.gets.clear()
    assert [m.backup_id for m in cache.manifests()] == [good]
    assert store.gets == [manifest_name(bad)]


def test_a_backup_whose_newest_drill_failed_is_no_base(tmp_path: Path) -> None:
    store = CountingStore(FileStore(tmp_path))
    take(store, "aaaaaa", "0-100-5")
    proven = take(store, "bbbbbb", "0-100-9")
    bases = store_bases(store, lambda key_id: None)
    store.put_new(record_name(proven, datetime(2026, 12, 5, 6, 0, tzinfo=UTC), FAILED), b"{}")
    assert bases() == ["0-100-5"]  # the purge never stands on a backup known not to restore
    store.put_new(record_name(proven, datetime(2026, 12, 5, 7, 0, tzinfo=UTC), OK), b"{}")
    assert sorted(bases()) == ["0-100-5", "0-100-9"]  # its newest drill passed
