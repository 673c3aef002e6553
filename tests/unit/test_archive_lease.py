"""The archive lease in a store with create-only writes only (a real file:// store): one
generation per write, one winner per generation, a stale writer refused, and the lock's
waiting, taking over after expiry, fencing writes past the renew deadline and releasing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mysqlsts.adapters.lease_store import LeaseConflict
from mysqlsts.archive.lock import ArchiveLock, LockLost, LockStopped, lease_timings
from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.lease import LeaseRecord, LeaseTimings
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.lease_objects import NO_RECORD, ObjectLeaseStore

FAST = LeaseTimings(duration=0.6, renew_deadline=0.4, renew_interval=0.08)


def _store(tmp_path: Path) -> tuple[FileStore, ObjectLeaseStore]:
    (tmp_path / "s").mkdir()
    objects = FileStore(tmp_path / "s")
    return objects, ObjectLeaseStore(objects, BINLOG_LOCK)


def test_one_writer_wins_each_generation_and_a_stale_writer_is_refused(tmp_path: Path) -> None:
    objects, leases = _store(tmp_path)
    assert leases.read(1) == (None, NO_RECORD)
    a, b = LeaseRecord("a", 1.0, 15), LeaseRecord("b", 1.0, 15)
    assert leases.write(a, NO_RECORD, 1) == "1"
    with pytest.raises(LeaseConflict):
        leases.write(b, NO_RECORD, 1)  # the same generation: create-only refuses it
    assert leases.read(1) == (a, "1")
    for version in range(1, 6):
        assert leases.write(a, str(version), 1) == str(version + 1)
    # Only the newest two generations are kept.
    assert [i.name for i in objects.list(BINLOG_LOCK)] == [
        f"{BINLOG_LOCK}000000000005", f"{BINLOG_LOCK}000000000006"]
    # A writer that read generation 1 long ago re-creates generation 2 (cleaned away): it is
    # not the newest, so it is no record and its write a conflict.
    with pytest.raises(LeaseConflict):
        leases.write(b, "1", 1)
    assert leases.read(1) == (a, "6")


def test_equal_records_from_two_writers_are_still_two_objects(tmp_path: Path) -> None:
    _, leases = _store(tmp_path)
    same = LeaseRecord("x", 1.0, 15)
    leases.write(same, NO_RECORD, 1)
    with pytest.raises(LeaseConflict):  # a random token: never "its own earlier bytes"
        leases.write(same, NO_RECORD, 1)


def test_the_second_waits_and_takes_over_only_after_the_holder_stops_renewing(
        tmp_path: Path) -> None:
    _, leases = _store(tmp_path)
    first, second = ArchiveLock(leases, "first", FAST), ArchiveLock(leases, "second", FAST)
    stop = threading.Event()
    first.acquire(stop)
    first.check()
    took: list[float] = []

    def contend() -> None:
        second.acquire(stop)
        took.append(time.monotonic())

    thread = threading.Thread(target=contend, daemon=True)
    thread.start()
    time.sleep(3 * FAST.duration)
    assert took == [] and first.holds()  # renewed all along: the second still waits
    abandoned = time.monotonic()
    first.abandon()  # as if killed: no more renews, no release
    thread.join(timeout=10)
    assert took and took[0] - abandoned >= FAST.duration
    assert not first.holds()  # past its renew deadline long before the takeover
    with pytest.raises(LockLost):
        first.check()
    second.check()
    assert leases.read(1)[0].holder == "second"  # type: ignore[union-attr]
    second.release()
    assert leases.read(1)[0].holder == ""  # type: ignore[union-attr]


def test_a_released_lease_is_taken_at_once_and_a_stopped_wait_ends(tmp_path: Path) -> None:
    _, leases = _store(tmp_path)
    first, second = ArchiveLock(leases, "first", FAST), ArchiveLock(leases, "second", FAST)
    stop = threading.Event()
    first.acquire(stop)
    first.release()
    started = time.monotonic()
    second.acquire(stop)
    assert time.monotonic() - started < FAST.duration
    waiting = threading.Event()
    waiting.set()
    with pytest.raises(LockStopped):
        first.acquire(waiting)
    second.release()


def test_the_lease_timings_keep_the_deadline_inside_the_duration() -> None:
    assert lease_timings(15.0) == LeaseTimings(15.0, 10.0, 2.0)
    assert lease_timings(1.0).problems() == []
