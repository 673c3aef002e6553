"""Restore a backup into an empty data dir, through the clone's own steps.

The same staging dir, prepare, record and marker as `mysqlsts clone` (adapters.datadir's
`fill_data_dir`), with the store instead of a donor as the source: the parts are downloaded,
checked and unpacked as they stream into the backup tool's extractor (no staging copy of the
stream). Before anything is written the backup is checked whole: its manifest (seal, key id)
and the store's listing of its parts (every part present, at its size). A restore killed at any
instant leaves the in-progress marker, and the next run wipes and redoes it.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from mysqlsts.adapters.datadir import (
    fill_data_dir,
    state_of,
    wipe_incomplete,
    write_clone_record,
    write_set_record,
)
from mysqlsts.adapters.tools import failure
from mysqlsts.bootstrap import adopt_root
from mysqlsts.clone.pipes import widen_pipe
from mysqlsts.clone.receiver import prepare, read_coordinates
from mysqlsts.clone.tools import extract_argv, tool_for
from mysqlsts.core.backup_manifest import Manifest, ManifestError, key_problem
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.clone_record import CloneRecord, DonorAddress, record_clone
from mysqlsts.core.coordinates import Coordinates
from mysqlsts.core.datadir import Fill, plan_fill
from mysqlsts.core.version import Flavor
from mysqlsts.errors import CloneError, ConfigError
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.parts import parts_not_stored, read_parts

log = logging.getLogger(__name__)


def choose_backup(store: ObjectStore, keys: BackupKeys | None, wanted: str) -> Manifest:
    """The backup `wanted`, or the newest: ids sort by start time, so the newest is the last
    id whether its manifest verifies or not (a wrong key is named, never skipped for an older
    backup). ManifestError or ConfigError naming the problem."""
    catalog = read_catalog(store, seal_keys(keys))
    damaged = {d.backup_id: d.reason for d in catalog.damaged}
    valid = {m.backup_id: m for m in catalog.backups}
    chosen = wanted or max([*valid, *damaged], default="")
    if chosen in damaged:
        raise ManifestError(damaged[chosen])
    if chosen not in valid:
        raise ConfigError(f"store {store.describe()} holds no backup {wanted}".rstrip())
    return valid[chosen]


def seal_keys(keys: BackupKeys | None) -> Callable[[str], bytes | None]:
    """The manifest seal key for a key id, from the key file given (if any)."""
    def seal_key_for(key_id: str) -> bytes | None:
        if keys is None:
            return None
        if keys.key_id != key_id:
            raise ManifestError(f"encrypted with key id {key_id}; the key file gives key id "
                                f"{keys.key_id}")
        return keys.seal_key

    return seal_key_for


def check_restorable(store: ObjectStore, manifest: Manifest, keys: BackupKeys | None) -> None:
    """ManifestError naming what is wrong, before anything is downloaded or written."""
    problem = key_problem(manifest, None if keys is None else keys.key_id)
    if problem:
        raise ManifestError(problem)
    problems = parts_not_stored(store, manifest)
    if problems:
        raise ManifestError(f"backup {manifest.backup_id} cannot be restored: "
                            + "; ".join(problems))


def restore_skipped(data_dir: Path) -> str | None:
    """The sentence to log when `data_dir` already holds a server's data (a restore never
    overwrites it), else None."""
    if plan_fill(state_of(data_dir), "restore") is Fill.SKIP:
        return _skipped(data_dir)
    return None


def _skipped(data_dir: Path) -> str:
    return f"restore skipped: data dir {data_dir} already holds a server's data"


def restore_into(data_dir: Path, store: ObjectStore, manifest: Manifest,
                 keys: BackupKeys | None, *, parallel: int = 2,
                 prepare_memory: str = "256M", set_record: str = "",
                 root_password: str | None = None,
                 advance: Callable[[Path], str] | None = None) -> str:
    """Restore `manifest`'s backup into `data_dir`; the sentence to log. `set_record` names
    the set the data then belongs to (as a clone records it); "" writes no record.
    `root_password`: the data is adopted, its root accounts given this password (the
    restoring set's Secret) before the marker goes; None leaves the backup's accounts as they
    are. MariaDB only: a MySQL backup with a password is refused before anything is written.
    `advance(staging)`: run on the prepared data before the marker goes (point-in-time
    recovery applies the archive's transactions there, from its relay directory in the data
    dir, which this fill then keeps); it returns the data's new GTID position, which the
    record then carries."""
    fill = plan_fill(state_of(data_dir), "restore")
    if fill is Fill.SKIP:
        return _skipped(data_dir)
    if root_password is not None and manifest.flavor != Flavor.MARIADB:
        raise ConfigError(f"backup {manifest.backup_id} is {manifest.flavor}: adopting its "
                          "root password is built for mariadb only")
    check_restorable(store, manifest, keys)
    if fill is Fill.REDO:
        log.warning("data dir %s holds an interrupted restore or clone; wiping it", data_dir)
        wipe_incomplete(data_dir)
    tool = tool_for(manifest.flavor)
    source = DonorAddress(-1, f"{store.describe()}@{manifest.backup_id}", 0)
    started = time.monotonic()

    def populate(staging: Path) -> None:
        received = _extract(read_parts(store, manifest, keys),
                            extract_argv(tool, staging, parallel), tool.stream)
        prepare(staging, tool, prepare_memory)
        record = record_clone(read_coordinates(staging), source, manifest.flavor, received,
                              time.monotonic() - started,
                              datetime.now(UTC).isoformat(timespec="seconds"))
        held = record.donor_binlog.gtid if record.donor_binlog else None
        if held != manifest.gtid:
            raise CloneError(f"backup {manifest.backup_id}: the data holds GTID {held}, "
                             f"the manifest says {manifest.gtid}")
        if advance is not None:
            record = advanced(record, advance(staging))
        write_clone_record(staging, record)
        if set_record:
            write_set_record(staging, set_record)
        if root_password is not None:
            # Before the marker goes: a restore killed here is redone whole, never started
            # with the backup's root password.
            adopt_root(staging, root_password)

    fill_data_dir(data_dir, populate, relay_in_use=advance is not None)
    adopted = "; root password is this set's" if root_password is not None else ""
    return (f"restore complete: backup {manifest.backup_id} gtid={manifest.gtid} into "
            f"{data_dir}{adopted} in {time.monotonic() - started:.1f}s")


def advanced(record: CloneRecord, position: str) -> CloneRecord:
    """The record of data moved on to `position` (the binlog file and offset no longer say
    anything: the position is the GTID)."""
    moved = Coordinates(gtid=position)
    return replace(record, coordinates=moved, coordinates_origin="binlog_info",
                   donor_binlog=moved)


def _extract(chunks: Iterable[bytes], argv: list[str], name: str) -> int:
    """Feed `chunks` to the extractor; the byte count once it exited 0."""
    total = 0
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=stderr)
        assert proc.stdin is not None
        widen_pipe(proc.stdin.fileno())
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
                total += len(chunk)
        except BrokenPipeError:
            pass  # the extractor failed: its exit code and stderr say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        code = proc.wait()
        if code != 0:
            raise CloneError(failure(name, code, stderr))
    return total
