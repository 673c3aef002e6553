"""A primary that refuses the archive's position on every attempt (error 1236 comes after the
dump request, with the first packet read): the archiver backs off further each time, and says it
streams again only once an event arrived."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mysqlsts.adapters.binlog_stream import PositionRefused
from mysqlsts.archive.archiver import Archiver, ArchiveSettings
from mysqlsts.core import binlog_event as ev
from mysqlsts.store.filestore import FileStore
from tests.unit.test_binlog_core import fde, txn


class CountedStop(threading.Event):
    """A stop event that records each pause the archiver asks for, and is set after `pauses`."""

    def __init__(self, pauses: int) -> None:
        super().__init__()
        self.pauses: list[float] = []
        self._limit = pauses

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout or 0.0)
        if len(self.pauses) >= self._limit:
            self.set()
        return self.is_set()


class Refusing:
    """Opens fine, then refuses: what the primary does with a GTID it cannot stream from. After
    `refusals` attempts it streams one transaction and stops the archiver."""

    attempts = 0

    def __init__(self, refusals: int, stop: threading.Event) -> None:
        self.refusals, self.stop = refusals, stop

    def open(self, position: str) -> None:
        type(self).attempts += 1

    def events(self) -> Iterator[ev.Event]:
        if type(self).attempts <= self.refusals:
            raise PositionRefused("the primary 127.0.0.1:1 cannot stream from this position: "
                                  "(1236) injected")
        yield ev.parse_event(fde(), checksum=True)
        for data in txn(1, ts=1001):
            yield ev.parse_event(data, checksum=True)
        self.stop.set()

    def close(self) -> None:
        pass


def _run(tmp_path: Path, refusals: int, pauses: int) -> CountedStop:
    Refusing.attempts = 0
    stop = CountedStop(pauses)
    archiver = Archiver(FileStore(tmp_path), None,
                        lambda: Refusing(refusals, stop),  # type: ignore[arg-type, return-value]
                        lambda: "0-100-0", ArchiveSettings(max_bytes=1, retry_first=0.2,
                                                           retry_cap=5.0), stop)
    archiver.run()
    return stop


def test_a_refusal_on_every_attempt_backs_off_further_each_time(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mysqlsts.archive.archiver")
    stop = _run(tmp_path, refusals=100, pauses=7)
    assert stop.pauses == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert "streaming again" not in caplog.text
    assert caplog.text.count("cannot stream from this position") == 7


def test_streaming_again_is_said_once_an_event_arrived(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mysqlsts.archive.archiver")
    stop = _run(tmp_path, refusals=3, pauses=100)
    assert stop.pauses == [0.2, 0.4, 0.8]
    assert "streaming again from the primary after 3 failures" in caplog.text
