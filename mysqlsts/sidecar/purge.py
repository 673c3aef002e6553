"""The primary's sidecar owns purging its binary logs when the set archives: every `interval`
it purges the files whose every transaction is in the archive (core/binlog_purge.py) and whose
successor this process has seen for `--archive-binlog-keep-hours`, and nothing else. The cnf
sets no expiry (the server's default: never), so no binary log leaves the primary unarchived.
An archive that is not contiguous (a gap or an overlap), a domain the archive does not hold, or
a store that cannot be read: nothing is purged, said once.

Each round also leaves what the metrics export (`backlog`, core/binlog_purge.py): the bytes of
the binary logs left after it, those not archived yet, and what blocks the purge for good. A
round that cannot read the index or the server leaves the last figures as they were.
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
from mysqlsts.core.binlog_purge import Backlog, archive_begins, backlog, purge_to
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
        self.backlog: Backlog | None = None  # the last round's figures; None before one

    def round(self) -> float:
        try:
            self.purge_once()
        except (MysqlstsError, pymysql.MySQLError) as error:
            self.failed("purge: no binary log purged", describe(error))
            return self.interval
        blocked = self.backlog.blocked if self.backlog is not None else ""
        if blocked:  # said once, as a failure: it lasts until a person acts
            self.failed("purge: no archived binary log can be purged", blocked)
        else:
            self.recovered("purge: purging archived binary logs again")
        return self.interval

    def purge_once(self) -> str | None:
        """Purge what is archived; the file purged up to, or None."""
        records = self.index.records()
        found = breaks(records)
        archived = archived_position(records)
        begins = archive_begins([dr.first for record in records for dr in record.domains])
        conn = self._connect()
        try:
            files = binlog_files(conn)
            now = self._monotonic()
            self._first_seen = {f.name: self._first_seen.get(f.name, now) for f in files}
            ages = {name: now - seen for name, seen in self._first_seen.items()}
            target = None if found else purge_to(files, archived, begins, ages, self.keep)
            if target is not None:
                purge_before(conn, target)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        # What is left: the files from the one purged to (the server may keep one a moment
        # longer for its binlog checkpoint: the next round counts it).
        left = files[[f.name for f in files].index(target):] if target is not None else files
        self.backlog = backlog(left, archived, begins,
                               f"the archive is not contiguous ({found[0]})" if found else "")
        if found:
            raise MysqlstsError(f"the archive in {self.index.store.describe()} is not "
                                f"contiguous ({found[0]}): nothing is purged unarchived")
        if target is None:
            return None
        if target != self.purged_to:
            log.info("purge: binary logs before %s purged (archived up to %s)", target,
                     position_text(archived))
            self.purged_to = target
        return target
