"""Take a base backup: the clone stream from a donor, into the store as parts, manifest last.

Here, below the capabilities, so `mysqlsts backup` and `mysqlsts local backup` run the same
code (`backup_from_donor`).

The donor serves a backup exactly as it serves a clone (the same authenticated, compressed,
sealed stream, at its own rate cap). Here the stream is not extracted: it is cut into parts as
it arrives (backup.parts) while the GTID position and the server version are picked out of it
(core.xbstream). Only when the donor's trailer has confirmed every byte and every part is
written does the manifest go in, create-only; a failure removes what was written, and what a
killed backup leaves behind (parts, no manifest) is removed by the next backup's cleanup.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mysqlsts.clone.receiver import Session, Timeouts, find_donor, open_session
from mysqlsts.core.backup_layout import backup_id, backup_started, manifest_name
from mysqlsts.core.backup_manifest import Manifest
from mysqlsts.core.backup_parts import COMPRESSION, BackupKeys
from mysqlsts.core.backupinfo import (
    BINLOG_INFO_NAMES,
    SLAVE_INFO_NAMES,
    coordinates_from_files,
    flavor_of_version,
)
from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.core.xbstream import FileCatcher
from mysqlsts.errors import MysqlstsError
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.catalog import incomplete_backups
from mysqlsts.store.parts import (
    PARALLEL,
    PART_SIZE,
    PartWriter,
    commit,
    mark,
    parts_not_stored,
    remove_backup,
)

log = logging.getLogger(__name__)

INFO_NAMES = ("mariadb_backup_info", "xtrabackup_info")
_VERSION = re.compile(r"^server_version\s*=\s*(\S+)", re.MULTILINE)
INCOMPLETE_GRACE = timedelta(hours=6)  # an incomplete backup younger than this may be running
COMMIT_MARGIN = timedelta(minutes=10)  # a backup commits this long before a cleanup may start


def backup_from_donor(store: ObjectStore, keys: BackupKeys | None, donor: DonorAddress,
                      token: str, *, set_name: str, flavor: str, deadline_seconds: float,
                      compression: str, part_size: int = PART_SIZE,
                      parallel: int = PARALLEL) -> Manifest:
    """Remove killed backups' leftovers, then take a backup from `donor` (retried with backoff
    while it is busy or unreachable, until `deadline_seconds`, as a clone does)."""
    mark("start")
    removed = remove_incomplete(store, datetime.now(UTC))
    if removed:
        log.info("removed incomplete backups %s", " ".join(removed))
    mark("cleanup_done")
    timeouts = Timeouts()
    session = find_donor(donor, lambda: [],
                         lambda candidate: open_session(candidate, token, timeouts, compression),
                         deadline_seconds)
    mark("donor_started")
    try:
        return take_backup(session, store, keys, set_name=set_name, flavor=flavor,
                           timeouts=timeouts, part_size=part_size, parallel=parallel)
    finally:
        session.close()


def take_backup(session: Session, store: ObjectStore, keys: BackupKeys | None, *,
                set_name: str, flavor: str, timeouts: Timeouts,
                part_size: int = PART_SIZE, parallel: int = PARALLEL,
                now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Manifest:
    start = now()
    backup = backup_id(start, secrets.token_hex(3))
    writer = PartWriter(store, backup, keys, part_size, parallel)
    catcher = FileCatcher((*BINLOG_INFO_NAMES, *SLAVE_INFO_NAMES, *INFO_NAMES))

    def write(view: memoryview) -> None:
        if not writer.plain_bytes:
            mark("first_byte")
        catcher.feed(view)
        writer.write(view)

    clock = time.monotonic()
    try:
        received = session.receive_to(write, timeouts)
        mark("last_byte")
        parts = writer.finish()
        mark("parts_stored")
        files = catcher.text()
        coordinates = coordinates_from_files(files).donor_binlog
        if coordinates is None or not coordinates.gtid:
            raise MysqlstsError(f"backup {backup}: the stream holds no GTID position "
                                "(no binlog info from the backup tool)")
        info = next((files[name] for name in INFO_NAMES if name in files), "")
        found = _VERSION.search(info)
        version = found.group(1) if found else ""
        if flavor_of_version(version) not in (None, flavor):
            # A restore picks its backup tool by the manifest's flavor: it must be the data's.
            raise MysqlstsError(f"backup {backup}: the donor runs {version}, not {flavor} "
                                "(--flavor)")
        manifest = Manifest(backup, set_name, flavor, version,
                            coordinates.gtid, start.isoformat(), now().isoformat(), parts,
                            COMPRESSION, "" if keys is None else keys.key_id)
        _check_in_time(manifest, start, now())
        _check_parts_still_there(store, manifest)
        mark("parts_checked")
        commit(store, manifest, keys)
        mark("manifest_written")
    except BaseException:
        writer.abandon()
        try:
            remove_backup(store, backup)
        except MysqlstsError as error:  # the next backup's cleanup removes them
            log.warning("backup failed; its parts stay until the next cleanup backup=%s "
                        "error=%s", backup, error)
        raise
    seconds = time.monotonic() - clock
    log.info("backup complete backup=%s gtid=%s bytes=%d stored_bytes=%d parts=%d "
             "seconds=%.1f mb_per_s=%.1f store=%s", backup, manifest.gtid, received,
             manifest.size, len(parts), seconds, received / 1e6 / max(seconds, 1e-9),
             store.describe())
    return manifest


def _check_in_time(manifest: Manifest, start: datetime, end: datetime) -> None:
    """A backup must commit within the cleanup's grace: past it, any other backup's cleanup
    may be removing its parts, so it can no longer vouch for them (it fails in one line)."""
    if end - start >= INCOMPLETE_GRACE - COMMIT_MARGIN:
        raise MysqlstsError(f"backup {manifest.backup_id} took {end - start}, past the "
                            f"{INCOMPLETE_GRACE} after which a cleanup takes an unfinished "
                            "backup for killed: not committed (raise the donor's rate cap, "
                            "or take it from a faster donor)")


def _check_parts_still_there(store: ObjectStore, manifest: Manifest) -> None:
    """Before the manifest goes in: every part listed at its size. A backup that ran longer
    than INCOMPLETE_GRACE looks killed to another backup's cleanup, which may have removed
    parts under it; such a backup must fail, never commit a manifest naming missing parts."""
    problems = parts_not_stored(store, manifest)
    if problems:
        raise MysqlstsError(f"backup {manifest.backup_id} lost parts while it ran (removed by "
                            f"a cleanup that took it for a killed backup?): "
                            + "; ".join(problems))


def remove_incomplete(store: ObjectStore, now: datetime,
                      grace: timedelta = INCOMPLETE_GRACE) -> list[str]:
    """Remove the parts of backups that never got a manifest and started more than `grace`
    ago (killed); the ids removed. A backup's id is its start time, so no clock of the
    store's is trusted. One listing finds them: no manifest is read."""
    removed = []
    for backup in incomplete_backups(store):
        started = backup_started(backup)
        if started is not None and started < now - grace:
            if any(True for _ in store.list(manifest_name(backup))):
                continue  # committed since the listing: a backup, not leftovers
            remove_backup(store, backup)
            removed.append(backup)
    return removed
