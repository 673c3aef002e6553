"""The archive index's checkpoints in a store (core/binlog_checkpoint.py): list them, read the
newest, write one, delete those retention no longer keeps."""

from __future__ import annotations

from collections.abc import Sequence

from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_checkpoint import (
    Checkpoint,
    newest_checkpoint,
    parse_checkpoint,
    render_checkpoint,
    stale_checkpoints,
)
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.store.base import ObjectMissing, ObjectStore, read_all


def checkpoint_names(store: ObjectStore) -> list[str]:
    return [info.name for info in store.list(BINLOG_CHECKPOINTS)]


def read_newest(store: ObjectStore, keys: BackupKeys | None) -> Checkpoint | None:
    """The newest checkpoint, checked (CheckpointError naming it when it is not as written);
    None when there is none."""
    try:
        return _read_newest(store, keys)
    except ObjectMissing:  # retention deleted it after the listing, two newer ones written
        return _read_newest(store, keys)  # meanwhile: look once more


def _read_newest(store: ObjectStore, keys: BackupKeys | None) -> Checkpoint | None:
    name = newest_checkpoint(checkpoint_names(store))
    if name is None:
        return None
    return parse_checkpoint(name, read_all(store, name), keys.seal_key if keys else None)


def write_checkpoint(store: ObjectStore, keys: BackupKeys | None, serial: int,
                     records: Sequence[SegmentRecord]) -> str:
    """A checkpoint holding `records` (each already written), create-only; its name."""
    name, stored = render_checkpoint(serial, records, keys.key_id if keys else "",
                                     keys.seal_key if keys else None)
    store.put_new(name, stored)
    return name


def remove_stale(store: ObjectStore, *, dry_run: bool = False) -> list[str]:
    """Retention's delete of the checkpoints older than the newest two (never the newest);
    the names (deleted, or that would be under `dry_run`)."""
    stale = stale_checkpoints(checkpoint_names(store))
    if not dry_run:
        for name in stale:
            store.delete(name)
    return stale
