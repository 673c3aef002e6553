"""The primary's sidecar owns purging its binary logs when the set archives: every `interval`
it purges the files whose every transaction is in the archive (core/binlog_purge.py) and whose
successor this process has seen for `--archive-binlog-keep-hours`, and nothing else. The cnf
sets no expiry (the server's default: never), so no binary log leaves the primary unarchived.
An archive that is not contiguous (a gap or an overlap), a domain the archive does not hold, or
a store that cannot be read: nothing is purged, said once; until a base backup in the store
stands at or after the first break (`bases`: the store's backups' GTID positions, read only
when the round says the archive alone is blocked: `PurgeRound.needs_bases`), and then the
files before its position and the archived ones after it, up to the next break, go
(core/binlog_purge.py, `PurgeRound.plan`).

Each round also leaves what the metrics export (`backlog`, core/binlog_purge.py): the bytes of
the binary logs left after it, those not held yet, and what blocks the purge for good. A round
that cannot read the index or the server leaves the last figures as they were.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pymysql

from mysqlsts.adapters.binlog_files import binlog_files, purge_before
from mysqlsts.core.binlog_index import archived_position, position_text
from mysqlsts.core.binlog_purge import Backlog, purge_round
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.sidecar.worker import Worker
from mysqlsts.store.binlog_archive import IndexCache
from mysqlsts.store.manifest_cache import ManifestCache

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection
    from mysqlsts.store.base import ObjectStore

log = logging.getLogger(__name__)

INTERVAL = 60.0


class BinlogPurger(Worker):
    def __init__(self, index: IndexCache, connect: Callable[[], Connection],
                 stop: threading.Event, keep: float, interval: float = INTERVAL,
                 monotonic: Callable[[], float] = time.monotonic,
                 bases: Callable[[], Sequence[str]] | None = None) -> None:
        super().__init__("purge", stop)
        self._bases = bases
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
        conn = self._connect()
        try:
            files = binlog_files(conn)
            now = self._monotonic()
            self._first_seen = {f.name: self._first_seen.get(f.name, now) for f in files}
            ages = {name: now - seen for name, seen in self._first_seen.items()}
            # The store's backups are read only when the archive alone is blocked (a break,
            # or files from before it): then a base backup past the block may let them go.
            this_round = purge_round(files, records, ages, self.keep)
            bases = self._bases() if self._bases is not None and this_round.needs_bases else []
            plan = this_round.plan(bases)
            if plan.target is not None:
                purge_before(conn, plan.target)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        self.backlog = plan.backlog
        if plan.target is None:
            if plan.uncovered is not None:
                raise MysqlstsError(
                    f"the archive in {self.index.store.describe()} is not contiguous "
                    f"({plan.uncovered}) and no base backup stands after it: nothing more is "
                    "purged unarchived")
            return None
        if plan.target != self.purged_to:
            log.info("purge: binary logs before %s purged (archived up to %s%s)", plan.target,
                     position_text(archived_position(records)),
                     f"; base backup at {plan.base}" if plan.base else "")
            self.purged_to = plan.target
        return plan.target


def store_bases(store: ObjectStore,
                seal_key_for: Callable[[str], bytes | None]) -> Callable[[], list[str]]:
    """The GTID positions of the store's complete MariaDB backups (valid manifests) whose
    newest restore drill did not fail, listed at each call, each manifest read once: the bases
    a purge past a gap may stand on (the binary logs it frees exist nowhere else)."""
    cache = ManifestCache(store, seal_key_for)

    def bases() -> list[str]:
        return [m.gtid for m in cache.manifests()
                if m.flavor == "mariadb" and m.backup_id not in cache.drill_failed]
    return bases
