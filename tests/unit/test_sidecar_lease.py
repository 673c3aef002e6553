"""The PrimaryLease worker's bookkeeping with the real file store and an injected monotonic
clock; the server is a loopback port nothing listens on (what the server does under the fence is
tests/integration/test_primary_lease.py's): acquire, renew, lose to another holder at once, lose
to a silent store at the deadline, the fence persisted and read back by a restarted worker, and
store timeouts that never reach past the deadline."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest

from mysqlsts.adapters.lease_store import FileLeaseStore
from mysqlsts.core.lease import FENCE_FILE, GuardAction, LeaseRecord, LeaseTimings
from mysqlsts.core.watchdog import self_fence_claim
from mysqlsts.options import PrimaryLeaseOptions
from mysqlsts.sidecar.lease import PrimaryLease
from mysqlsts.sidecar.watchdog import WatchdogBound
from tests.ports import PortPool

TIMINGS = LeaseTimings(duration=15, renew_deadline=10, renew_interval=2)
free_port = PortPool("sidecar-unit")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def nothing_listens() -> int:
    return free_port()


def _worker(tmp_path: Path, clock: Clock, port: int,
            self_fence: Callable[[], float] = lambda: 12.5) -> PrimaryLease:
    def connect() -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(host="127.0.0.1", port=port, user="root", password="x",
                               connect_timeout=0.5)

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return PrimaryLease(FileLeaseStore(tmp_path / "lease"), TIMINGS, holder="mysql-0",
                        self_fence=self_fence, data_dir=data, connect=connect, monotonic=clock,
                        wall=lambda: 1.7e9, stop=threading.Event())


def test_acquire_renew_and_the_deadline(tmp_path: Path, nothing_listens: int) -> None:
    clock = Clock()
    worker = _worker(tmp_path, clock, nothing_listens)
    assert not worker.held
    assert worker.round() == 2  # acquired: next renew in one interval
    record, _ = worker.store.read(1)
    assert record == LeaseRecord("mysql-0", 1.7e9, 15, 0, self_fence=12.5)  # in every record
    assert worker.held and not worker.fenced
    clock.now += 9.9
    assert worker.held
    # the store goes silent: no renew, and the deadline counts from the last renew's start
    fd = os.open(worker.store.lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert worker._timeout() == pytest.approx(0.1)  # never waits past the deadline
        assert worker.renew() is None
        clock.now += 0.1
        assert worker.enforce() is GuardAction.FENCE
    finally:
        os.close(fd)
    assert worker.fenced and (worker.fence_file.parent / FENCE_FILE).exists()
    assert "locked" in worker.summary()["reason"]


def test_another_holder_ends_the_lease_at_once_and_the_fence_outlives_the_worker(
        tmp_path: Path, nothing_listens: int) -> None:
    clock = Clock()
    worker = _worker(tmp_path, clock, nothing_listens)
    worker.round()
    record, version = worker.store.read(1)
    assert record is not None
    worker.store.write(LeaseRecord("intruder", 0.0, 15, 1), version, 1)
    clock.now += 1  # well inside the deadline
    worker.round()
    assert not worker.held and worker.fenced
    assert worker.summary()["holder"] == "intruder"
    # a restarted worker reads the fence, and a live holder's record is not taken from it
    again = _worker(tmp_path, clock, nothing_listens)
    assert again.fenced
    again.round()
    clock.now += 14.9
    again.round()
    assert again.fenced and not again.held
    # the holder stopped renewing: after watching it unchanged for its duration, take it
    clock.now += 0.2
    again.round()
    assert again.held and not again.fenced
    assert not (again.fence_file.parent / FENCE_FILE).exists()
    record, _ = again.store.read(1)
    assert record is not None and (record.holder, record.transitions) == ("mysql-0", 2)


def test_the_holder_carries_the_pod_uid_when_there_is_one() -> None:
    assert PrimaryLeaseOptions().holder("mysql-0") == "mysql-0"
    assert PrimaryLeaseOptions(lease_holder_uid="3f2a").holder("mysql-0") == "mysql-0/3f2a"


def test_a_new_worker_waits_out_a_live_holder_without_fencing(
        tmp_path: Path, nothing_listens: int) -> None:
    clock = Clock()
    worker = _worker(tmp_path, clock, nothing_listens)
    record, version = worker.store.read(1)
    worker.store.write(LeaseRecord("mysql-0/dead-pod", 0.0, 15, 3), version, 1)
    # Not held, never lifted in this run, the server not (yet) answering: it stays as it
    # started, read-only; no fence, no marker (a fence would only restart it, and a contender
    # must stay up for the duration to take a dead holder's lease).
    assert worker.round() == 2
    assert worker.enforce() is GuardAction.NONE
    assert not worker.held and not worker.fenced
    assert not (worker.fence_file.parent / FENCE_FILE).exists()
    clock.now += 15
    worker.round()
    assert worker.held
    record, _ = worker.store.read(1)
    assert record == LeaseRecord("mysql-0", 1.7e9, 15, 4, 12.5)


def test_a_graceful_stop_releases_only_a_lease_it_holds(
        tmp_path: Path, nothing_listens: int) -> None:
    clock = Clock()
    worker = _worker(tmp_path, clock, nothing_listens)
    worker.round()
    # Nothing listens on the server's port: a server that no longer answers takes no writes,
    # so the record is written free, with its transitions kept.
    worker.close()
    record, _ = worker.store.read(1)
    assert record == LeaseRecord("", 1.7e9, 15, 0, 12.5)  # the bound stays
    # Not ours (any more): a second stop writes nothing.
    record, version = worker.store.read(1)
    worker.store.write(LeaseRecord("mysql-0/next", 1.7e9, 15, 1), version, 1)
    worker.close()
    assert worker.store.read(1)[0] == LeaseRecord("mysql-0/next", 1.7e9, 15, 1)


def test_the_self_fence_claimed_is_the_bound_the_servers_watchdog_states(
        tmp_path: Path, nothing_listens: int, caplog: pytest.LogCaptureFixture) -> None:
    """No bound file (an image without `mysqlsts server`, or it has not started yet): no
    self-fence claimed, said once; then the renew deadline + the file's bound, following it."""
    caplog.set_level(logging.INFO)
    clock = Clock()
    bound_file = tmp_path / "heartbeat.bound"
    bound = WatchdogBound(bound_file)
    worker = _worker(tmp_path, clock, nothing_listens,
                     lambda: self_fence_claim(TIMINGS.renew_deadline, bound()))

    def claimed() -> float:
        record, _ = worker.store.read(1)
        assert record is not None and record.holder == "mysql-0"
        return record.self_fence

    worker.round()
    worker.round()
    assert claimed() == 0 and worker.summary()["self_fence"] == 0
    warned = (f"no watchdog bound at {bound_file}: claiming no self-fence (No such file or "
              "directory)")
    assert [r.message for r in caplog.records].count(warned) == 1  # once, not every round
    bound_file.write_text("13.5\n")
    worker.round()
    assert claimed() == 10 + 13.5 and worker.summary()["self_fence"] == 23.5
    bound_file.write_text("4.1\n")  # a changed file is followed at the next renew
    worker.round()
    assert claimed() == 10 + 4.1
    bound_file.write_text("a lot\n")  # unreadable: no bound, none claimed
    worker.round()
    assert claimed() == 0
    assert f"no watchdog bound at {bound_file}: claiming no self-fence (not a decimal number " \
           "of seconds: 'a lot')" in caplog.messages
    assert WatchdogBound(None)() is None  # no watchdog file configured: nothing to read
