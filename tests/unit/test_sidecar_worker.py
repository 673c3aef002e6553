"""The sidecar's worker base: one round after another until stopped, a failing round logged
once per reason, a bug in a round never ends the thread, and one deadline for all."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from mysqlsts.sidecar.worker import Worker, join_all


class Counting(Worker):
    def __init__(self, stop: threading.Event, results: list[str]) -> None:
        super().__init__("counting", stop)
        self.results = results
        self.rounds = 0
        self.closed_on: str | None = None

    def round(self) -> float:
        self.rounds += 1
        outcome = self.results[min(self.rounds, len(self.results)) - 1]
        if outcome == "bug":
            raise RuntimeError("a bug")
        if outcome == "ok":
            self.recovered("counting works again")
        else:
            self.failed("counting failed", outcome)
        if self.rounds >= len(self.results):
            self._stop.set()
        return 0.0

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


def test_failures_are_logged_once_per_reason_and_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    worker = Counting(stop, ["down", "down", "bug", "down", "other", "ok", "ok"])
    with caplog.at_level(logging.INFO):
        worker.start()
        assert not join_all([worker], time.monotonic() + 5)
    messages = [r.getMessage() for r in caplog.records if r.name == "mysqlsts.sidecar.worker"]
    assert messages == ["counting failed: down", "counting: round failed unexpectedly",
                        "counting failed: other", "counting works again"]
    assert worker.rounds == 7, "a bug in one round ended the thread"
    assert worker.closed_on == "counting", "close() runs on the worker's own thread"


def test_join_all_waits_for_one_deadline_and_names_the_busy() -> None:
    stop = threading.Event()
    release = threading.Event()

    class Stuck(Worker):
        def round(self) -> float:
            release.wait(10)
            return 0.0

    stuck, never = Stuck("stuck", stop), Stuck("never-started", stop)
    stuck.start()
    stop.set()
    began = time.monotonic()
    assert join_all([stuck, never], time.monotonic() + 0.3) == [stuck]
    assert time.monotonic() - began < 2
    release.set()
    assert not join_all([stuck], time.monotonic() + 5)
