"""The archive index's checkpoints in a store (core/binlog_checkpoint.py): list them, read the
chain a reader takes, write one, delete those retention no longer keeps."""

from __future__ import annotations

from collections.abc import Sequence

from mysqlsts.core.backup_layout import BINLOG_CHECKPOINTS
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_checkpoint import (
    Checkpoint,
    chain,
    parse_checkpoint,
    render_checkpoint,
    stale_checkpoints,
)
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.store.base import ObjectMissing, ObjectStore, read_all


def checkpoint_names(store: ObjectStore) -> list[str]:
    return [info.name for info in store.list(BINLOG_CHECKPOINTS)]


def read_chain(store: ObjectStore, keys: BackupKeys | None) -> tuple[Checkpoint, ...]:
    """The chain of checkpoints a reader takes (the newest base first), each checked
    (CheckpointError naming it when it is not as written); empty when there is none."""
    try:
        return _read_chain(store, keys)
    except ObjectMissing:  # retention deleted one after the listing, newer ones written
        return _read_chain(store, keys)  # meanwhile: look once more


def _read_chain(store: ObjectStore, keys: BackupKeys | None) -> tuple[Checkpoint, ...]:
    seal_key = keys.seal_key if keys else None
    return tuple(parse_checkpoint(name, read_all(store, name), seal_key)
                 for name in chain(checkpoint_names(store)))


def write_checkpoint(store: ObjectStore, keys: BackupKeys | None, serial: int,
                     records: Sequence[SegmentRecord], on: str = "") -> str:
    """A checkpoint holding `records` (each already written), create-only: a base, or (`on`)
    a delta on that checkpoint; its name."""
    name, stored = render_checkpoint(serial, records, keys.key_id if keys else "",
                                     keys.seal_key if keys else None, on)
    store.put_new(name, stored)
    return name


def remove_stale(store: ObjectStore, *, dry_run: bool = False) -> list[str]:
    """Retention's delete of the checkpoints no reader's chain needs (core: the newest two
    bases and the newest two on each kept one; never the chain); the names (deleted, or that
    would be under `dry_run`), deltas before what they are on."""
    stale = sorted(stale_checkpoints(checkpoint_names(store)), key=len, reverse=True)
    if not dry_run:
        for name in stale:
            store.delete(name)
    return stale
