"""The backups of the archive's store, read for the metrics (on the pod holding the archive
lease only).

Every `EVERY` seconds one catalog read (one listing and one GET per manifest, as `backup list`,
one listing of the archive's segments for the bytes by kind, and the archive's index, each
record read once, for the recoverable window `backup list` reports) gives the figures
`mysqlsts_backup_*` and `mysqlsts_store_bytes` export (core.backup_metrics). A read that fails is
counted and said once; the figures of the last good read stay, with its time, so an alert on
their age still fires while the store cannot be read. It runs on its own thread: a slow or
stalled store never holds a probe or a scrape, which only read the last figures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mysqlsts.core.backup_metrics import BackupFigures, StoreContents, backup_figures
from mysqlsts.errors import describe
from mysqlsts.sidecar.worker import Worker

EVERY = 300.0  # seconds between catalog reads: about 290 listings a day, plus one GET a backup
IDLE_CHECK = 2.0  # seconds between asking whether this pod archives, while it does not


@dataclass(frozen=True)
class CatalogState:
    """What the scrape shows: the last good read's figures (None before one) and the counts."""

    figures: BackupFigures | None = None
    read_at: float | None = None  # Unix time of the last good read
    reads_ok: int = 0
    reads_failed: int = 0


class BackupCatalogWorker(Worker):
    def __init__(self, read: Callable[[], StoreContents], stop: threading.Event,
                 every: float = EVERY, wall: Callable[[], float] = time.time,
                 active: Callable[[], bool] = lambda: True) -> None:
        super().__init__("backup-catalog", stop)
        self._read, self._every, self._wall, self._active = read, every, wall, active
        self.state = CatalogState()  # replaced whole, so a scrape never sees half a read

    def round(self) -> float:
        # Only on the pod whose archiver holds the archive lease: asked again every few
        # seconds, and read at once when this pod takes the lease over.
        if not self._active():
            return IDLE_CHECK
        s = self.state
        try:
            contents = self._read()
            figures = backup_figures(contents.catalog, contents.bytes_by_kind,
                                     contents.recoverable)
        except Exception as error:  # noqa: BLE001 (any store or manifest failure is one count)
            self.state = CatalogState(s.figures, s.read_at, s.reads_ok, s.reads_failed + 1)
            self.failed("backup-catalog: cannot read the store's backups, figures kept from "
                        "the last read", describe(error))
            return self._every
        self.state = CatalogState(figures, self._wall(), s.reads_ok + 1, s.reads_failed)
        self.recovered("backup-catalog: the store's backups are read again")
        return self._every
