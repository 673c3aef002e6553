"""Read a store's backups: one listing, then each manifest (I/O around core.backup_catalog).
The listing also names each backup's restore drills (core.backup_verify): no object is read
for them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mysqlsts.core.backup_catalog import Catalog, Damaged, build_catalog, recoverable
from mysqlsts.core.backup_layout import BACKUPS, BINLOG_SEGMENTS, backup_of, manifest_name
from mysqlsts.core.backup_manifest import Manifest, ManifestError, parse_manifest
from mysqlsts.core.backup_metrics import StoreContents, store_kind
from mysqlsts.core.backup_verify import latest
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.store.base import ObjectMissing, ObjectStore, read_all


def read_contents(store: ObjectStore,
                  seal_key_for: Callable[[str], bytes | None] | None = None,
                  records: Callable[[], Sequence[SegmentRecord]] | None = None) -> StoreContents:
    """The catalog and the bytes the store holds by kind: the catalog's own listing of the
    backups, and one listing of the archive's segments; with `records` (the archive's index,
    e.g. an IndexCache's), the recoverable window `backup list` reports too. An index that
    cannot be read fails the read, as the catalog does."""
    sizes: dict[str, int] = {}
    catalog = read_catalog(store, seal_key_for, sizes)
    for info in store.list(BINLOG_SEGMENTS):
        _count(sizes, info.name, info.size)
    window = None if records is None else recoverable(catalog, records())
    return StoreContents(catalog, sizes, window)


def read_catalog(store: ObjectStore,
                 seal_key_for: Callable[[str], bytes | None] | None = None,
                 sizes: dict[str, int] | None = None) -> Catalog:
    """The store's backups; `sizes` given, the bytes of every listed object are added up in
    it by kind (core.backup_metrics.store_kind)."""
    ids, with_manifest, names = _listing(store, sizes)
    manifests: list[Manifest] = []
    damaged: list[Damaged] = []
    for backup in sorted(with_manifest):
        try:
            manifests.append(parse_manifest(read_all(store, manifest_name(backup)), backup,
                                            seal_key_for or (lambda key_id: None)))
        except (ManifestError, ObjectMissing) as error:  # deleted meanwhile: gone
            if isinstance(error, ManifestError):
                damaged.append(Damaged(backup, str(error)))
    return build_catalog(manifests, damaged, sorted(ids), latest(names))


def incomplete_backups(store: ObjectStore) -> list[str]:
    """The ids of the backups that have objects but no manifest (running or killed), from the
    listing alone: no manifest is read (a backup's cleanup before it starts costs one listing,
    however many backups the store holds)."""
    ids, with_manifest, _ = _listing(store, None)
    return sorted(ids - with_manifest)


def _listing(store: ObjectStore,
             sizes: dict[str, int] | None) -> tuple[set[str], set[str], list[str]]:
    """One listing of the backups: the ids with objects, those with a manifest, every name."""
    ids: set[str] = set()
    with_manifest: set[str] = set()
    names: list[str] = []
    for info in store.list(BACKUPS):
        names.append(info.name)
        if sizes is not None:
            _count(sizes, info.name, info.size)
        backup = backup_of(info.name)
        if backup is None:
            continue
        ids.add(backup)
        if info.name == manifest_name(backup):
            with_manifest.add(backup)
    return ids, with_manifest, names


def _count(sizes: dict[str, int], name: str, size: int) -> None:
    kind = store_kind(name)
    if kind is not None:
        sizes[kind] = sizes.get(kind, 0) + size
