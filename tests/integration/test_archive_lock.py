"""One archiver at a time on real MariaDB: two `mysqlsts archive` processes started at once on
one store (one writes, the other waits; the holder SIGKILLed: the other takes over after the
lease expires), and a holder cut off from the store that must not write once it heals, both
under steady writes: the archive ends contiguous, without overlap, and replays equal."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mysqlsts.adapters.binlog_stream import BinlogStream, primary_position
from mysqlsts.archive.archiver import Archiver, ArchiveSettings
from mysqlsts.archive.lock import ArchiveLock, lease_timings
from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.binlog_index import breaks
from mysqlsts.store.base import ObjectInfo, StoreError
from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.lease_objects import ObjectLeaseStore
from tests.integration.archive_helpers import (
    archive_cli_env,
    make_app_table,
    replay,
    source,
    wait_archived,
)
from tests.servers import MakeServer, Server

LEASE = 2.0  # seconds: the holder writes for 2/3 of it after a renew began


@contextlib.contextmanager
def _writing(primary: Server) -> Iterator[list[int]]:
    """Rows inserted one by one until the block ends; yields [rows written]."""
    done, written = threading.Event(), [0]

    def writer() -> None:
        with contextlib.closing(primary.connect()) as conn, conn.cursor() as cursor:
            while not done.is_set():
                cursor.execute("INSERT INTO app.t (id, v) VALUES (%s, 'x')", (written[0] + 1,))
                written[0] += 1
                time.sleep(0.005)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield written
    finally:
        done.set()
        thread.join(timeout=10)


def _check_archive(store: FileStore, primary: Server, restored: Server, written: int,
                   work: Path) -> None:
    records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"), 60)
    assert breaks(records) == []  # no overlap, no gap
    assert sum(r.transactions for r in records) == written + 2  # + CREATE DATABASE/TABLE
    replay(records, store, None, restored, work)
    assert restored.checksum("app.t") == primary.checksum("app.t")


def test_two_archivers_at_once_one_writes_the_killed_holders_lease_passes_after_expiry(
        mariadb: MakeServer, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    primary = mariadb("p", server_id=100)
    restored = mariadb("r", server_id=200)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    make_app_table(primary)
    env = {**archive_cli_env(primary, tmp_path / "store", "oldest", LEASE),
           "MYSQLSTS_LOG_LEVEL": "info"}
    logs = [tmp_path / f"archiver-{n}.log" for n in range(2)]
    processes = []
    for n, path in enumerate(logs):
        out = path.open("ab")
        request.addfinalizer(out.close)
        # Distinct server ids: the primary would end the older of two streams with one id.
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "mysqlsts", "archive"],
            env={**env, "MYSQLSTS_ARCHIVE_SERVER_ID": str(4000000001 + n)},
            stdout=out, stderr=out, start_new_session=True))

    def stop_all() -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)

    request.addfinalizer(stop_all)
    try:
        with _writing(primary) as written:
            deadline = time.monotonic() + 20
            while not any("took the archive lease" in p.read_text() for p in logs):
                assert time.monotonic() < deadline, "no archiver took the lease"
                time.sleep(0.1)
            time.sleep(2 * LEASE)
            texts = [p.read_text() for p in logs]
            holders = [n for n, text in enumerate(texts) if "took the archive lease" in text]
            assert len(holders) == 1, texts
            holder, other = holders[0], 1 - holders[0]
            assert "waiting for the archive lease: held by" in texts[other], texts[other]
            assert load_records(store, None), "the holder wrote nothing"
            os.killpg(processes[holder].pid, signal.SIGKILL)
            processes[holder].wait(timeout=10)
            killed = time.monotonic()
            while "took the archive lease" not in logs[other].read_text():
                assert time.monotonic() - killed < 10 * LEASE, "nobody took over"
                time.sleep(0.05)
            assert time.monotonic() - killed >= LEASE * 0.9  # only once it had expired
            time.sleep(2)
    finally:
        stop_all()
        processes[:] = []
    processes.append(subprocess.Popen(  # the survivor was stopped: one more catches up
        [sys.executable, "-m", "mysqlsts", "archive"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    _check_archive(store, primary, restored, written[0], tmp_path / "replay")


class _Partitioned:
    """A FileStore that fails every call while `cut` is set: the holder is cut off."""

    def __init__(self, inner: FileStore, cut: threading.Event) -> None:
        self.inner, self.cut = inner, cut

    def _gate(self) -> None:
        if self.cut.is_set():
            raise StoreError("partitioned (test)")

    def put_new(self, name: str, data: bytes) -> None:
        self._gate()
        self.inner.put_new(name, data)

    def get(self, name: str) -> Iterator[bytes]:
        self._gate()
        return self.inner.get(name)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._gate()
        return self.inner.list(prefix)

    def delete(self, name: str) -> None:
        self._gate()
        self.inner.delete(name)

    def describe(self) -> str:
        return self.inner.describe()


def _archiver(primary: Server, store: object, holder: str, server_id: int,
              stop: threading.Event) -> Archiver:
    src = source(primary, server_id)
    password = primary.root_password
    lock = ArchiveLock(ObjectLeaseStore(store, BINLOG_LOCK), holder,  # type: ignore[arg-type]
                       lease_timings(LEASE))
    return Archiver(store, None, lambda: BinlogStream(src, password),  # type: ignore[arg-type]
                    lambda: primary_position(src, password),
                    ArchiveSettings(start_position="oldest", retry_first=0.05, retry_cap=0.2),
                    stop, lock=lock)


def test_a_holder_cut_off_from_the_store_writes_nothing_once_the_other_took_over(
        mariadb: MakeServer, tmp_path: Path) -> None:
    primary = mariadb("p", server_id=100)
    restored = mariadb("r", server_id=200)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    make_app_table(primary)
    cut = threading.Event()
    stop_a, stop_b = threading.Event(), threading.Event()
    a = _archiver(primary, _Partitioned(store, cut), "a", 4000000001, stop_a)
    threads = [threading.Thread(target=a.run, daemon=True)]
    threads[0].start()
    with _writing(primary) as written:
        deadline = time.monotonic() + 20
        while not load_records(store, None):
            assert time.monotonic() < deadline, "a wrote nothing"
            time.sleep(0.05)
        b = _archiver(primary, store, "b", 4000000002, stop_b)
        threads.append(threading.Thread(target=b.run, daemon=True))
        threads[1].start()
        time.sleep(LEASE)
        assert b.state.segments == 0  # b waits while a holds
        cut.set()  # a loses the store: it can neither renew nor write
        cut_at = time.monotonic()
        while b.state.segments == 0:
            assert time.monotonic() - cut_at < 10 * LEASE, "b never took over"
            time.sleep(0.05)
        assert time.monotonic() - cut_at >= LEASE * 0.9
        a_segments = a.state.segments
        cut.clear()  # a heals: its lease is gone, it must not write what it still holds
        time.sleep(2 * LEASE)
        assert a.state.segments == a_segments
        assert not a.lock.holds()  # type: ignore[union-attr]
    for stop in (stop_a, stop_b):
        stop.set()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    stop_c = threading.Event()
    c = _archiver(primary, store, "c", 4000000003, stop_c)  # catches up what b left
    catch_up = threading.Thread(target=c.run, daemon=True)
    catch_up.start()
    try:
        _check_archive(store, primary, restored, written[0], tmp_path / "replay")
    finally:
        stop_c.set()
        catch_up.join(timeout=30)
