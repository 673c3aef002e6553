"""Point-in-time recovery into a data dir: plan from the store's manifests and index records
(core.pitr), refuse before anything is downloaded, read and cut the segments one at a time,
writing the chosen transactions to relay log files in the data dir as they are read (memory
holds one segment, whatever the range), restore the base backup (clone.from_backup's
`restore_into`) and, before its in-progress marker goes, apply exactly the chosen transactions
on a scratch server over a socket, then remove the relay files.

The apply is the server's own: on a scratch server over the restored data (no network, no
grant tables, so no password exists to pass), the chosen transactions are written as relay log
files (each segment's FORMAT_DESCRIPTION, then only the chosen transactions, so nothing after
the target can be applied whatever the server does) and its SQL thread applies them, with
parallel workers, as a replica applies its primary's (MyHoard's and WAL-G's method; unlike
`mariadb-binlog | mariadb`, a row-format `CREATE TABLE ... SELECT` stays one transaction). It
writes its binary log into the data dir (`mysql-bin`, the set's name) under
`gtid_strict_mode=ON`, its binlog state and `gtid_slave_pos` set first to the backup's position:
a transaction at or before it is refused by the server itself. Afterwards `gtid_binlog_pos`,
`gtid_slave_pos` and `gtid_current_pos` must all be the expected position (per domain, the last
transaction applied in it, else the backup's), else the recovery fails (and the data dir stays
marked unfinished).

A recovery killed at any instant leaves the restore's in-progress marker, or (killed while it
still read the archive) only its relay files, which no reader takes for data: the next run
wipes either and starts over, so nothing a killed run wrote is ever applied (and a clone or a
restore without a target, filling the data dir instead, removes the relay files too).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from mysqlsts.adapters.datadir import state_of, wipe_incomplete
from mysqlsts.adapters.db import query
from mysqlsts.adapters.scratch import error_log_tail, scratch_server
from mysqlsts.clone.from_backup import (
    check_restorable,
    choose_backup,
    restore_into,
    restore_skipped,
    seal_keys,
)
from mysqlsts.clone.relay_files import RELAY_NAME, RelayFiles, relay_dir
from mysqlsts.core.backup_catalog import Catalog
from mysqlsts.core.backup_layout import BINLOG_SEGMENTS
from mysqlsts.core.backup_manifest import Manifest
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.backup_verify import FAILED
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.core.datadir import DataDirState
from mysqlsts.core.gtid import mariadb_same_position
from mysqlsts.core.pitr import (
    BaseBackup,
    Cutter,
    Plan,
    RecoveryRefused,
    Target,
    applied_since,
    large_transaction,
    latest_of,
    plan_recovery,
    prefer_drilled,
    transactions_of,
)
from mysqlsts.core.replay_rate import ReplayRate
from mysqlsts.core.version import Flavor
from mysqlsts.errors import ConfigError, MysqlstsError, describe
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.binlog_archive import index_names, load_records, read_chunks, read_segment
from mysqlsts.store.catalog import read_catalog

log = logging.getLogger(__name__)

BINLOG_BASENAME = "mysql-bin"  # the set's cnf names its binary log so (images/cnf)
APPLY_SECONDS = 24 * 3600.0

# Told how a recovery's apply goes, at each poll of the SQL thread (the clone step's metrics).
OnReplay = Callable[[ReplayRate], None]


class RecoveryFailed(MysqlstsError):
    """The transactions could not be applied, or the server's GTID state is not the target's."""


@dataclass(frozen=True)
class Recovery:
    plan: Plan
    manifest: Manifest
    relay: Path  # the relay log's base name: the server's --relay-log
    files: tuple[Path, ...]  # the relay log files holding only the chosen transactions
    transactions: int  # how many they hold
    server_id: int  # one no chosen transaction carries (the SQL thread skips its own id's)
    position: str  # the GTID position once they are applied


def plan_for(store: ObjectStore, keys: BackupKeys | None, target: Target) -> tuple[Plan,
                                                                                  Manifest]:
    """The plan, refused (RecoveryRefused naming the window, or the missing segment) before
    any segment or part is read."""
    plan, manifest, _ = _planned(store, keys, target)
    return plan, manifest


def _planned(store: ObjectStore, keys: BackupKeys | None,
             target: Target) -> tuple[Plan, Manifest, list[SegmentRecord]]:
    catalog = read_catalog(store, seal_keys(keys))
    manifests = {m.backup_id: m for m in catalog.backups if m.flavor == Flavor.MARIADB}
    records = load_records(store, keys)
    failed = _drill_failed(catalog)
    plan = plan_recovery([BaseBackup(m.backup_id, m.gtid, m.end_time, m.backup_id in failed)
                          for m in manifests.values()], records, target)
    stored = {info.name: info.size for info in store.list(BINLOG_SEGMENTS)}
    by_name = {r.segment: r for r in records}
    for name in plan.segments:
        record = by_name[name]
        for n, (obj, size) in enumerate(record.stored.items()):
            if stored.get(obj) != size:
                state = "is missing from" if obj not in stored else "has another size in"
                what = f" chunk {n} ({obj})" if record.chunks else ""
                raise RecoveryRefused(f"archive segment {name}{what} ({_range(record)}) "
                                      f"{state} the store: cannot recover to {target}")
    manifest = manifests[plan.backup_id]
    check_restorable(store, manifest, keys)
    return plan, manifest, records


def _drill_failed(catalog: Catalog) -> set[str]:
    return {backup for backup, last in catalog.verified.items() if last.result == FAILED}


def _noted(plan: Plan) -> str:
    return f" ({plan.note})" if plan.note else ""


@dataclass(frozen=True)
class Choice:
    """What a restore given no target and no backup does: the latest recoverable point."""

    manifest: Manifest  # the base backup
    plan: Plan | None  # the recovery to the latest point; None: the backup alone is it
    said: str  # one line naming the point chosen
    records: tuple[SegmentRecord, ...] = ()  # the index the plan was made from


def choose_latest(store: ObjectStore, keys: BackupKeys | None) -> Choice:
    """The latest recoverable point: the newest backup (choose_backup's, a damaged one named,
    never skipped) and every archived transaction through the end of the archive's contiguous
    run after it; the backup alone when the archive holds nothing after it, the store holds
    no archive, or the backup is MySQL's (the archive is MariaDB's). An archive that cannot
    be read or used is an error naming it, never a silently older point."""
    newest, note = _newest_not_failed(store, keys)
    alone = (f"restore: no target: backup {newest.backup_id} alone, at gtid={newest.gtid}"
             f"{note}")
    if newest.flavor != Flavor.MARIADB:
        return Choice(newest, None, f"{alone} ({newest.flavor}: point-in-time recovery is "
                      "mariadb's)")
    if next(index_names(store), None) is None:
        return Choice(newest, None, f"{alone} (the store holds no binlog archive)")
    try:
        plan, manifest, records = _planned(store, keys, Target())
    except RecoveryRefused as error:
        raise RecoveryRefused(f"cannot find the latest recoverable point: {error} "
                              "(--backup ID restores that backup alone)") from None
    latest = latest_of(plan, records)
    return Choice(manifest, plan if plan.segments else None,
                  f"restore: no target: the latest point, {latest}{_noted(plan)}",
                  tuple(records))


def _newest_not_failed(store: ObjectStore, keys: BackupKeys | None) -> tuple[Manifest, str]:
    """choose_backup's newest (a damaged one named, never skipped) or, when its last drill
    failed, the newest whose last drill did not fail; and the note saying so ("" when the
    newest is taken as it is)."""
    newest = choose_backup(store, keys, "")
    catalog = read_catalog(store, seal_keys(keys))
    failed = _drill_failed(catalog)
    if newest.backup_id not in failed:
        return newest, ""
    older = [m for m in reversed(catalog.backups) if m.backup_id <= newest.backup_id]
    index, note = prefer_drilled([(m.backup_id, m.backup_id in failed) for m in older])
    return older[index], f" ({note})"


def _range(record: SegmentRecord) -> str:
    return ", ".join(f"{d.first} .. {d.last}" for d in record.domains)


def fetch(store: ObjectStore, keys: BackupKeys | None, plan: Plan, manifest: Manifest,
          directory: Path, index: Sequence[SegmentRecord] | None = None) -> Recovery:
    """The planned segments read and checked one at a time, each cut (core.pitr's `Cutter`)
    and its chosen transactions written on to relay log files in `directory` as it is read:
    memory holds one segment, whatever the range. A missing, corrupt or non-contiguous segment
    is refused here, before anything is restored. A chunked segment (a large transaction) is
    never held whole: its chunks go on to the relay file one at a time, each checked first.
    `index`: the records the plan was made from (else the index is read again)."""
    records = {r.segment: r for r in (load_records(store, keys) if index is None else index)}
    cutter = Cutter(plan)
    relay = RelayFiles(directory / RELAY_NAME)
    for name in plan.segments:
        record = records[name]
        if record.chunks:  # a large transaction: decided from its record, read chunk by chunk
            if cutter.take(record):
                relay.add_chunks(large_transaction(record), read_chunks(store, record, keys))
            continue
        segment = transactions_of(read_segment(store, record, keys), name)
        relay.add(cutter.feed(segment))
        del segment  # dropped before the next is read: one segment held at a time
    position = cutter.finish()
    files = relay.close()
    return Recovery(plan, manifest, relay.relay, tuple(files), cutter.chosen,
                    own_server_id(relay.server_ids), position)


def recover_into(data_dir: Path, store: ObjectStore, keys: BackupKeys | None, target: Target,
                 *, prepare_memory: str = "256M", buffer_pool: str = "128M",
                 set_record: str = "", root_password: str | None = None,
                 on_replay: OnReplay | None = None,
                 planned: tuple[Plan, Manifest] | None = None,
                 index: Sequence[SegmentRecord] | None = None) -> str:
    """Restore `data_dir` to `target`; the sentence to log. `on_replay` follows the apply
    (the clone step's metrics), called at each poll of the SQL thread. `planned`: the plan
    already made for `target` (choose_latest's), else it is made here; `index`: the records
    it was made from (choose_latest's), so the archive's index is read once.

    The chosen transactions are written to relay log files in the data dir (PITR_RELAY, on
    the data volume) before the base backup is restored, and removed before its marker goes:
    a recovery killed at any instant leaves the marker, or (still reading the archive) only
    the relay files, and the next run wipes what it left before it reads the archive again."""
    skipped = restore_skipped(data_dir)
    if skipped:
        raise ConfigError(f"{skipped}: a recovery never overwrites it")
    if planned is None:
        plan, manifest, records = _planned(store, keys, target)
        index = records
    else:
        plan, manifest = planned
    log.info("recover: to %s from backup %s (gtid %s), %d archive segments", target,
             plan.backup_id, plan.base_gtid or "none", len(plan.segments))
    if state_of(data_dir) is DataDirState.INCOMPLETE:
        log.warning("data dir %s holds an interrupted restore or clone; wiping it", data_dir)
        wipe_incomplete(data_dir)
    with relay_dir(data_dir) as directory:
        recovery = fetch(store, keys, plan, manifest, directory, index)
        started = time.monotonic()
        replay = ReplayRate(recovery.transactions)

        def advance(staging: Path) -> str:
            position = apply(staging, recovery, buffer_pool, replay, on_replay)
            shutil.rmtree(directory)  # before the marker goes: finished data never holds it
            return position

        said = restore_into(data_dir, store, manifest, keys, prepare_memory=prepare_memory,
                            set_record=set_record, root_password=root_password,
                            advance=advance)
    log.info("recover: %s", said)
    return (f"recovery complete: {data_dir} at gtid={recovery.position or 'none'} ({target}): "
            f"backup {plan.backup_id}{_noted(plan)} and {recovery.transactions} archived "
            f"transactions, in {time.monotonic() - started:.1f}s ({replay.summary()})")


def apply(data_dir: Path, recovery: Recovery, buffer_pool: str,
          replay: ReplayRate | None = None, on_replay: OnReplay | None = None) -> str:
    """Apply the recovery's transactions on a scratch server over `data_dir` through its own
    SQL thread, the chosen transactions presented as relay logs; the position. `replay`
    counts the transactions applied (a progress line logged every few seconds), from the
    moment the SQL thread starts."""
    replay = ReplayRate(recovery.transactions) if replay is None else replay
    relay = recovery.relay
    with _run_dir() as run_dir:
        options = (f"--log-bin={BINLOG_BASENAME}", "--gtid-strict-mode=ON",
                   "--log-slave-updates", "--binlog-format=ROW", f"--relay-log={relay}",
                   f"--relay-log-index={relay}.index", "--relay-log-purge=OFF",
                   f"--server-id={recovery.server_id}",
                   f"--slave-parallel-threads={PARALLEL}",
                   # Each commit reaches the OS, not the disk: a server killed loses nothing,
                   # and restore_into syncs the whole data dir before its marker goes (a
                   # machine lost meanwhile leaves the marker: the recovery is redone).
                   "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0")
        with scratch_server(data_dir, run_dir, buffer_pool, options) as conn:
            try:
                base = recovery.plan.base_gtid
                with conn.cursor() as cursor:
                    cursor.execute("RESET MASTER")
                    if base:
                        cursor.execute("SET GLOBAL gtid_binlog_state = %s", (base,))
                    cursor.execute("SET GLOBAL gtid_slave_pos = %s", (base,))
                if recovery.files:
                    _run_sql_thread(conn, recovery.files[0], recovery.position, run_dir,
                                    _follow(recovery.plan, replay, on_replay))
                _check_position(conn, recovery.position)
                with conn.cursor() as cursor:
                    cursor.execute("FLUSH BINARY LOGS")
            except pymysql.MySQLError as error:
                raise RecoveryFailed(f"applying the archive failed: {describe(error)} (the "
                                     f"scratch server's log: {error_log_tail(run_dir)})"
                                     ) from None
    return recovery.position


# The SQL thread's workers (MariaDB 10.11's default optimistic mode: conflicts are retried,
# commits stay in the relay log's order).
PARALLEL = 4


def own_server_id(taken: set[int]) -> int:
    """A server id none of `taken` is (the SQL thread skips its own id's transactions)."""
    return next(n for n in range(4294967295, 0, -1) if n not in taken)


def _follow(plan: Plan, replay: ReplayRate,
            on_replay: OnReplay | None) -> Callable[[str], None]:
    """What each poll of the SQL thread does with the position reached: count the
    transactions applied since the backup's, log a progress line when one is due."""
    def follow(reached: str) -> None:
        line = replay.update(applied_since(plan.base_gtid, reached), time.monotonic())
        if line is not None:
            log.info("recover: %s", line)
        if on_replay is not None:
            on_replay(replay)

    return follow


def _run_sql_thread(conn: pymysql.connections.Connection[Any], first: Path, position: str,
                    run_dir: Path, follow: Callable[[str], None]) -> None:
    """CHANGE MASTER to the first relay log, START SLAVE SQL_THREAD, wait for `position`
    (the files hold nothing after it), stop, forget the replication set-up. `follow` is
    given the position reached at each poll, the last one `position` itself."""
    with conn.cursor() as cursor:
        cursor.execute("CHANGE MASTER TO MASTER_HOST='pitr.invalid', MASTER_USER='pitr', "
                       "MASTER_USE_GTID=no, RELAY_LOG_FILE=%s, RELAY_LOG_POS=4",
                       (first.name,))
        cursor.execute("START SLAVE SQL_THREAD")
    deadline = time.monotonic() + APPLY_SECONDS
    try:
        while True:
            status = query(conn, "SHOW SLAVE STATUS")[0]
            reached = str(query(conn, "SELECT @@global.gtid_slave_pos AS p")[0]["p"] or "")
            follow(reached)
            if mariadb_same_position(reached, position):
                break
            if status.get("Last_SQL_Errno"):
                raise RecoveryFailed(f"applying the archive failed after {reached or 'none'}: "
                                     f"{status.get('Last_SQL_Error')}")
            if status.get("Slave_SQL_Running") != "Yes" or time.monotonic() > deadline:
                raise RecoveryFailed("the SQL thread stopped before reaching "
                                     f"{position} (the scratch server's log: "
                                     f"{error_log_tail(run_dir)})")
            time.sleep(0.1)
    finally:
        with conn.cursor() as cursor:
            cursor.execute("STOP SLAVE")
            cursor.execute("RESET SLAVE ALL")


@contextlib.contextmanager
def _run_dir() -> Iterator[Path]:
    """A short private directory for the socket (a socket's path has a 107-byte limit)."""
    run_dir = Path(tempfile.mkdtemp(prefix="mysqlsts-pitr-run-"))
    try:
        yield run_dir
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _check_position(conn: pymysql.connections.Connection[Any], position: str) -> None:
    row = query(conn, "SELECT @@global.gtid_binlog_pos AS b, @@global.gtid_slave_pos AS s, "
                "@@global.gtid_current_pos AS c")[0]
    held = {name: str(row[key] or "") for name, key in
            (("gtid_binlog_pos", "b"), ("gtid_slave_pos", "s"), ("gtid_current_pos", "c"))}
    wrong = {name: value for name, value in held.items()
             if not mariadb_same_position(value, position)}
    if wrong:
        raise RecoveryFailed(f"after applying the archive the server is not at {position}: "
                             + ", ".join(f"{name}={value or '(empty)'}"
                                         for name, value in wrong.items()))

