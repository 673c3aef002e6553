"""Whose turn it is to archive (core/archive_turn.py): replicas contend at once, the primary only
after the lease stayed unchanged for its patience (or at once with none), and gives the lease up
after its term; then the same through ArchiveLock on a real file:// store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mysqlsts.archive.lock import ArchiveLock, LockLost, TermOver
from mysqlsts.core.archive_turn import (
    HANDBACK_TERMS,
    Turn,
    may_contend,
    term_over,
    turn_for,
)
from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.lease import LeaseRecord, LeaseTimings, Seen
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.lease_objects import NO_RECORD, ObjectLeaseStore

FAST = LeaseTimings(duration=0.6, renew_deadline=0.4, renew_interval=0.08)


def test_replicas_and_a_set_of_one_contend_at_once_the_primary_waits_and_hands_back() -> None:
    assert turn_for(False, 15, 3) == Turn(15)
    assert turn_for(True, 15, 0) == Turn(15)  # a set of one: at once, kept for good
    assert turn_for(True, 15, 3) == Turn(15, 3, HANDBACK_TERMS * 15)


@pytest.mark.parametrize("record", [None, LeaseRecord("", 1.0, 15),
                                    LeaseRecord("mysql-1/7/ab", 1.0, 15)])
def test_the_primary_contends_only_after_the_lease_stayed_unchanged_for_its_patience(
        record: LeaseRecord | None) -> None:
    primary, replica = Turn(15, 3, 300), Turn(15)
    seen = Seen(record, "4", since=100.0)
    assert may_contend(replica, seen, "mysql-2/1/cd", 100.0) == ""
    waiting = may_contend(primary, seen, "mysql-0/1/ef", 100.0 + 44.9)
    assert "45s" in waiting and ("free" if record is None or not record.holder
                                 else "held by mysql-1/7/ab") in waiting
    assert may_contend(primary, seen, "mysql-0/1/ef", 100.0 + 45) == ""


def test_the_primary_renews_its_own_lease_whatever_its_patience() -> None:
    mine = Seen(LeaseRecord("mysql-0/1/ef", 1.0, 15), "9", since=100.0)
    assert may_contend(Turn(15, 3, 300), mine, "mysql-0/1/ef", 100.0) == ""


def test_the_term_ends_only_for_a_holder_with_one() -> None:
    assert not term_over(Turn(15), 0.0, 1e9)
    assert not term_over(Turn(15, 3, 300), None, 1e9)
    assert not term_over(Turn(15, 3, 300), 10.0, 309.9)
    assert term_over(Turn(15, 3, 300), 10.0, 310.0)


def _leases(tmp_path: Path) -> ObjectLeaseStore:
    (tmp_path / "s").mkdir()
    return ObjectLeaseStore(FileStore(tmp_path / "s"), BINLOG_LOCK)


def _acquired_at(lock: ArchiveLock, stop: threading.Event) -> list[float]:
    took: list[float] = []

    def run() -> None:
        lock.acquire(stop)
        took.append(time.monotonic())

    threading.Thread(target=run, daemon=True).start()
    return took


def test_a_replica_takes_a_free_lease_first_and_the_primary_waits_while_it_renews(
        tmp_path: Path) -> None:
    leases, stop = _leases(tmp_path), threading.Event()
    primary = ArchiveLock(leases, "mysql-0", FAST, turn=Turn(FAST.duration, 3, 100))
    replica = ArchiveLock(leases, "mysql-1", FAST)
    took = _acquired_at(primary, stop)
    time.sleep(0.3)  # both see no record; the primary does not take it
    assert took == [] and leases.read(1) == (None, NO_RECORD)
    assert primary.waiting.startswith("free; the primary's archiver contends")
    replica.acquire(stop)
    time.sleep(6 * FAST.duration)  # far past its patience, but the replica renews
    assert took == [] and replica.holds()
    assert primary.waiting.startswith("held by mysql-1")
    gone = time.monotonic()
    replica.abandon()  # the replica's pod is gone: nobody else takes it
    deadline = time.monotonic() + 10
    while not took and time.monotonic() < deadline:
        time.sleep(0.05)
    assert took and took[0] - gone >= 3 * FAST.duration  # its patience, then it archives
    primary.check()
    stop.set()
    primary.release()


def test_the_primary_gives_the_lease_up_after_its_term_and_a_replica_takes_it_at_once(
        tmp_path: Path) -> None:
    leases, stop = _leases(tmp_path), threading.Event()
    primary = ArchiveLock(leases, "mysql-0", FAST, turn=Turn(FAST.duration, 0.1, 1.0))
    primary.acquire(stop)
    replica = ArchiveLock(leases, "mysql-1", FAST)
    took = _acquired_at(replica, stop)
    time.sleep(0.5)
    primary.check()  # inside its term: it keeps writing, the replica waits
    assert took == []
    time.sleep(0.6)
    with pytest.raises(TermOver):
        primary.check()
    assert issubclass(TermOver, LockLost)  # the archiver stops writing and releases
    released = time.monotonic()
    primary.release()
    deadline = time.monotonic() + 5
    while not took and time.monotonic() < deadline:
        time.sleep(0.02)
    assert took and took[0] - released < FAST.duration  # a free lease: no expiry waited
    replica.check()
    stop.set()
    replica.release()
