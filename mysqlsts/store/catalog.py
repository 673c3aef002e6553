"""Read a store's backups: one listing, then each manifest (I/O around core.backup_catalog).
The listing also names each backup's restore drills (core.backup_verify): no object is read
for them."""

from __future__ import annotations

from collections.abc import Callable

from mysqlsts.core.backup_catalog import Catalog, Damaged, build_catalog
from mysqlsts.core.backup_layout import BACKUPS, backup_of, manifest_name
from mysqlsts.core.backup_manifest import Manifest, ManifestError, parse_manifest
from mysqlsts.core.backup_verify import latest
from mysqlsts.store.base import ObjectMissing, ObjectStore, read_all


def read_catalog(store: ObjectStore,
                 seal_key_for: Callable[[str], bytes | None] | None = None) -> Catalog:
    ids: set[str] = set()
    with_manifest: set[str] = set()
    names: list[str] = []
    for info in store.list(BACKUPS):
        names.append(info.name)
        backup = backup_of(info.name)
        if backup is None:
            continue
        ids.add(backup)
        if info.name == manifest_name(backup):
            with_manifest.add(backup)
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

