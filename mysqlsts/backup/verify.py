"""The restore drill: restore a backup into a scratch server, start it, check it, record it.

The restore is `restore_into`, the code path of every restore and of a set created from a
backup, into a scratch dir. The scratch server is a `mariadbd` of its own: no network (a socket
in a private directory), no grant tables (so no account or password is needed or exposed), no
binlog, no replication started, the event scheduler off with the grant tables; it dies with this
process (PR_SET_PDEATHSIG), is stopped on any failure or Ctrl-C, and the scratch dir is removed
after it. The server is asked: `CHECK TABLE` on every base table (core.backup_verify says which
and what fails), its GTID position once the restore's recorded position is applied, and the
heartbeat row's GTID. The verdict goes beside the backup, create-only (core.backup_verify).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pymysql
import pymysql.cursors

from mysqlsts.adapters.datadir import read_clone_record
from mysqlsts.adapters.db import query
from mysqlsts.adapters.scratch import error_log_tail, scratch_server
from mysqlsts.clone.from_backup import restore_into
from mysqlsts.core.backup_manifest import Manifest, key_problem
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.backup_verify import (
    FAILED,
    OK,
    CheckedTable,
    Verdict,
    check_failure,
    gtid_problem,
    heartbeat_problem,
    record_name,
    render_verdict,
    tables_to_check,
)
from mysqlsts.core.gtid import start_from_record
from mysqlsts.core.sql import quote_identifier
from mysqlsts.errors import ConfigError, MysqlstsError, describe
from mysqlsts.store.base import ObjectMissing, ObjectStore, StoreError

log = logging.getLogger(__name__)



class DrillFailed(MysqlstsError):
    """The backup did not pass: restored, started or checked, something was wrong."""


class BackupUnverified(MysqlstsError):
    """The command's answer to a failed drill: the backup exists and is recorded `failed`.
    Its own exit code, so the CronJob fails its Job at once (podFailurePolicy) rather than
    retry: a new backup of the same data fails the same way."""

    exit_code = 3


@dataclass(frozen=True)
class DrillSettings:
    scratch_dir: Path | None  # where the scratch data dir goes; None: the system's temp dir
    heartbeat_database: str = "mysqlsts"
    prepare_memory: str = "256M"
    buffer_pool: str = "128M"


def verify_backup(store: ObjectStore, manifest: Manifest, keys: BackupKeys | None,
                  settings: DrillSettings,
                  now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Verdict:
    """Run the drill on `manifest`'s backup; the verdict (also when it failed). Raises only
    for what says nothing about the backup (a bad scratch dir, an interrupt)."""
    if manifest.flavor != "mariadb":
        raise ConfigError(f"backup {manifest.backup_id} is a {manifest.flavor} backup: the "
                          "drill restores MariaDB backups only")
    wrong_key = key_problem(manifest, None if keys is None else keys.key_id)
    if wrong_key:  # the caller's mistake, not the backup's: no verdict is recorded
        raise ConfigError(wrong_key)
    if settings.scratch_dir is not None and not settings.scratch_dir.is_dir():
        raise ConfigError(f"scratch dir {settings.scratch_dir}: no such directory")
    started, clock = now(), time.monotonic()
    gtid, heartbeat = "", ""
    tables: tuple[CheckedTable, ...] = ()
    try:
        with _sigterm_interrupts(), _scratch(settings.scratch_dir) as (data_dir, run_dir):
            log.info("verify: restoring backup=%s into %s", manifest.backup_id, data_dir)
            log.info("verify: %s", restore_into(data_dir, store, manifest, keys,
                                                prepare_memory=settings.prepare_memory))
            with scratch_server(data_dir, run_dir, settings.buffer_pool) as conn:
                gtid = _gtid(conn, data_dir, manifest)
                tables = _check_tables(conn, lambda: error_log_tail(run_dir))
                failed = [table for table in tables if table.failure]
                if failed:
                    more = f" (and {len(failed) - 1} more tables)" if len(failed) > 1 else ""
                    raise DrillFailed(f"CHECK TABLE {failed[0].name} failed: "
                                      f"{failed[0].failure}{more}")
                heartbeat = _heartbeat(conn, settings.heartbeat_database, manifest)
    except (MysqlstsError, pymysql.MySQLError) as error:
        if _not_the_backups(error):
            raise
        reason = describe(error) if isinstance(error, pymysql.MySQLError) else str(error)
        return Verdict(manifest.backup_id, FAILED, reason, started,
                       time.monotonic() - clock, gtid, tables, heartbeat)
    except OSError as error:  # a full scratch disk, a missing mariadbd: not the backup's fault
        raise MysqlstsError(f"the drill of backup {manifest.backup_id} could not run: "
                            f"{error}") from None
    return Verdict(manifest.backup_id, OK, "", started, time.monotonic() - clock, gtid,
                   tables, heartbeat)


def _not_the_backups(error: Exception) -> bool:
    """A failure that says nothing about the backup, so no verdict is recorded: the store not
    answering (but an object of the backup missing is the backup's), bad configuration."""
    if isinstance(error, StoreError):
        return not isinstance(error, ObjectMissing)
    return isinstance(error, ConfigError)


def record_verdict(store: ObjectStore, verdict: Verdict) -> str:
    """Write the verdict beside its backup, create-only; its object name."""
    name = record_name(verdict.backup_id, verdict.started, verdict.result)
    store.put_new(name, render_verdict(verdict))
    return name


@contextlib.contextmanager
def _scratch(parent: Path | None) -> Iterator[tuple[Path, Path]]:
    """(data dir, run dir), both removed on the way out whatever happened. The run dir (the
    socket) is a short private path of its own: a socket's path has a 107-byte limit."""
    root = Path(tempfile.mkdtemp(prefix="mysqlsts-verify-", dir=parent))
    run_dir = Path(tempfile.mkdtemp(prefix="mysqlsts-verify-run-"))
    try:
        yield root / "data", run_dir
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a CronJob's pod deleted, `kill`) unwinds like Ctrl-C, so the scratch server is
    stopped and its dir removed. Only in the main thread, where Python delivers signals."""
    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _gtid(conn: pymysql.connections.Connection[Any], data_dir: Path,
          manifest: Manifest) -> str:
    """The restored server's position once the restore's recorded one is applied (as a
    replica's set-up applies it to a server that has none of its own)."""
    startup = str(query(conn, "SELECT @@global.gtid_slave_pos AS p")[0]["p"] or "")
    record = read_clone_record(data_dir)
    recorded = record.donor_binlog.gtid if record and record.donor_binlog else None
    if recorded and start_from_record(startup, recorded, is_mariadb=True):
        with conn.cursor() as cursor:
            cursor.execute("SET GLOBAL gtid_slave_pos = %s", (recorded,))
    position = str(query(conn, "SELECT @@global.gtid_current_pos AS p")[0]["p"] or "")
    try:
        problem = gtid_problem(manifest.gtid, startup, position)
    except ValueError as error:
        problem = f"unreadable GTID position: {error}"
    if problem:
        raise DrillFailed(problem)
    return position


def _check_tables(conn: pymysql.connections.Connection[Any],
                  error_log: Callable[[], str]) -> tuple[CheckedTable, ...]:
    """Every table checked (a failure does not stop the others: the verdict names them all),
    with the checksum of each that passed. A server that fails on a table (InnoDB aborts on a
    page it cannot read) fails the drill naming that table and the server's last words."""
    names = tables_to_check(query(
        conn, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"))
    checked = []
    for name in names:
        quoted = ".".join(quote_identifier(part) for part in name.split(".", 1))
        try:
            failure = check_failure(query(conn, f"CHECK TABLE {quoted}"))
            if failure:
                checked.append(CheckedTable(name, None, failure))
                continue
            checksum = query(conn, f"CHECKSUM TABLE {quoted}")[0]["Checksum"]
        except pymysql.MySQLError as error:
            raise DrillFailed(f"the scratch server failed on table {name}: {describe(error)} "
                              f"(its error log: {error_log()})") from None
        checked.append(CheckedTable(name, None if checksum is None else int(checksum)))
    log.info("verify: CHECK TABLE on %d tables, %d failed", len(checked),
             sum(1 for table in checked if table.failure))
    return tuple(checked)


def _heartbeat(conn: pymysql.connections.Connection[Any], database: str,
               manifest: Manifest) -> str:
    """The newest heartbeat row's GTID ("" without the table or a row with one); DrillFailed
    when a row is one the backup's position cannot hold."""
    table = f"{quote_identifier(database)}.`heartbeat`"
    exists = query(conn, "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE "
                   "TABLE_SCHEMA = %s AND TABLE_NAME = 'heartbeat' AND COLUMN_NAME = 'gtid'",
                   (database,))
    if not exists[0]["n"]:
        return ""
    rows = query(conn, f"SELECT ts, gtid FROM {table} WHERE gtid IS NOT NULL AND gtid <> '' "
                 "ORDER BY ts DESC")
    for row in rows:
        try:
            problem = heartbeat_problem(manifest.gtid, str(row["gtid"]))
        except ValueError as error:
            problem = f"the heartbeat row holds an unreadable GTID: {error}"
        if problem:
            raise DrillFailed(problem)
    return str(rows[0]["gtid"]) if rows else ""
