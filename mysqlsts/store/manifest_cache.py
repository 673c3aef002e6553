"""The store's backup manifests, read incrementally: a manifest is written once, last, and
never changes, so each call lists the backups and GETs only the manifests it has not read
before; one no longer listed (its backup deleted) is dropped. The primary's purger reads the
store's bases every minute while a gap stays in the archive: a listing, not a GET per
backup. The same listing says which backups' newest restore drill failed (a verdict's name
holds its result), so the purger never stands on a backup known not to restore."""

from __future__ import annotations

from collections.abc import Callable

from mysqlsts.core.backup_layout import BACKUPS, backup_of, manifest_name
from mysqlsts.core.backup_manifest import Manifest, ManifestError, parse_manifest
from mysqlsts.core.backup_verify import FAILED, latest
from mysqlsts.store.base import ObjectMissing, ObjectStore, read_all


class ManifestCache:
    def __init__(self, store: ObjectStore,
                 seal_key_for: Callable[[str], bytes | None] | None = None) -> None:
        self.store, self._seal_key_for = store, seal_key_for or (lambda key_id: None)
        self._manifests: dict[str, Manifest] = {}  # by backup id
        self.drill_failed: set[str] = set()  # backups whose newest drill failed, as listed

    def manifests(self) -> list[Manifest]:
        """The valid manifests listed now, by backup id. A damaged one is left out (and read
        again next time: `backup list` names it); one deleted meanwhile is gone."""
        names = [info.name for info in self.store.list(BACKUPS)]
        listed = [backup for name in names
                  if (backup := backup_of(name)) is not None and name == manifest_name(backup)]
        self.drill_failed = {backup for backup, verification in latest(names).items()
                             if verification.result == FAILED}
        for backup in listed:
            if backup not in self._manifests:
                try:
                    self._manifests[backup] = parse_manifest(
                        read_all(self.store, manifest_name(backup)), backup,
                        self._seal_key_for)
                except (ManifestError, ObjectMissing):
                    continue
        self._manifests = {b: self._manifests[b] for b in listed if b in self._manifests}
        return list(self._manifests.values())
