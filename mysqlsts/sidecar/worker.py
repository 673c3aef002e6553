"""The sidecar's threads, written once: each repeats one round until the sidecar stops, with a
pause the round chooses, says once when it starts failing and once when it recovers, and
closes what it holds when it ends. `join_all` stops them within one deadline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)


class Worker:
    """A daemon thread running `round()` until `stop` is set; `round()` returns the seconds to
    wait before the next. Subclasses hold their own connection and close it in `close()`,
    which runs on the worker's thread when it ends."""

    def __init__(self, name: str, stop: threading.Event) -> None:
        self.name = name
        self._stop = stop
        self._failing = ""
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def round(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the worker holds; on its own thread, after its last round."""

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    pause = self.round()
                except Exception:  # the thread's edge: a bug in one round must not end it
                    log.exception("%s: round failed unexpectedly", self.name)
                    pause = 1.0
                self._stop.wait(max(0.0, pause - (time.monotonic() - began)))
        finally:
            self.close()

    def failed(self, message: str, reason: str) -> None:
        """Log `message: reason` once per distinct reason, not once per round."""
        if reason != self._failing:
            log.warning("%s: %s", message, reason)
            self._failing = reason

    def recovered(self, message: str) -> None:
        """Log `message` once when rounds succeed again after failing."""
        if self._failing:
            log.info("%s", message)
            self._failing = ""


def join_all(workers: Iterable[Worker], deadline: float) -> list[Worker]:
    """Wait for the started workers until the monotonic `deadline`; the ones still running."""
    busy = []
    for worker in workers:
        if worker.thread.ident is None:
            continue  # never started
        worker.thread.join(max(0.1, deadline - time.monotonic()))
        if worker.thread.is_alive():
            busy.append(worker)
    return busy
