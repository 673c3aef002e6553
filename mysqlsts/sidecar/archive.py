"""The binlog archiver as a sidecar worker (opt-in, on every pod; the one holding the store's
archive lease writes, core/archive_turn.py says who contends when).

Its one round runs the archiver until the sidecar stops (the archiver has its own loop, its
reconnects and its store retries). What ends it early is what a person must fix (the store
cannot be read, an index record is damaged, a name holds other bytes) or what comes right
(a new set's primary has not made the replication account yet): said once, retried after 1 s,
then twice as long each time up to `RETRY` seconds, and the rest of the sidecar carries on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mysqlsts.archive.archiver import Archiver
from mysqlsts.core.backoff import backoff
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.sidecar.worker import Worker

RETRY = 30.0
FIRST_RETRY = 1.0


class ArchiveWorker(Worker):
    def __init__(self, make: Callable[[], Archiver], stop: threading.Event) -> None:
        super().__init__("archive", stop)
        self._make = make
        self.archiver: Archiver | None = None
        self._failures = 0

    def round(self) -> float:
        try:
            self.archiver = self._make()
            self.archiver.run()
        except MysqlstsError as error:
            self._failures += 1
            wait = backoff(self._failures, FIRST_RETRY, RETRY)
            self.failed("archive: the archiver stopped, retrying", describe(error))
            return wait
        self._failures = 0
        return 0.0
