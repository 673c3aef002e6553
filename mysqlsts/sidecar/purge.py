"""The primary's sidecar owns purging its binary logs when the set archives: every `interval`
it purges the files whose every transaction is in the archive (core/binlog_purge.py) and whose
successor this process has seen for `--archive-binlog-keep-hours`, and nothing else. The cnf
sets no expiry (the server's default: never), so no binary log leaves the primary unarchived.
An archive that is not contiguous (a gap or an overlap), a domain the archive does not hold, or
a store that cannot be read: nothing is purged, said once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pymysql

from mysqlsts.adapters.binlog_files import binlog_files, purge_before
from mysqlsts.core.binlog_index import archived_position, breaks, position_text
from mysqlsts.core.binlog_purge import archive_begins, purge_to
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.sidecar.worker import Worker
from mysqlsts.store.binlog_archive import IndexCache

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection

log = logging.getLogger(__name__)

INTERVAL = 60.0


class BinlogPurger(Worker):
    def __init__(self, index: IndexCache, connect: Callable[[], Connection],
                 stop: threading.Event, keep: float, interval: float = INTERVAL,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__("purge", stop)
        self.index, self._connect, self.interval = index, connect, interval
        self.keep, self._monotonic = keep, monotonic
        self._first_seen: dict[str, float] = {}  # when this process first saw each file
        self.purged_to = ""  # the file the last purge named, for tests and status

    def round(self) -> float:
        try:
            self.purge_once()
            self.recovered("purge: purging archived binary logs again")
        except (MysqlstsError, pymysql.MySQLError) as error:
            self.failed("purge: no binary log purged", describe(error))
        return self.interval

    def purge_once(self) -> str | None:
        """Purge what is archived; the file purged up to, or None."""
        records = self.index.records()
        found = breaks(records)
        if found:
            raise MysqlstsError(f"the archive in {self.index.store.describe()} is not "
                                f"contiguous ({found[0]}): nothing is purged unarchived")
        archived = archived_position(records)
        begins = archive_begins([dr.first for record in records for dr in record.domains])
        conn = self._connect()
        try:
            files = binlog_files(conn)
            now = self._monotonic()
            self._first_seen = {f.name: self._first_seen.get(f.name, now) for f in files}
            ages = {name: now - seen for name, seen in self._first_seen.items()}
            target = purge_to(files, archived, begins, ages, self.keep)
            if target is None:
                return None
            purge_before(conn, target)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        if target != self.purged_to:
            log.info("purge: binary logs before %s purged (archived up to %s)", target,
                     position_text(archived))
            self.purged_to = target
        return target
