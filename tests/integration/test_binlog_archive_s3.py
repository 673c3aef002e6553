"""The archiver against a real S3 server (moto's, over HTTP), encrypted, through a stall."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mysqlsts.adapters.lease_store import LeaseConflict
from mysqlsts.archive.lock import ArchiveLock
from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import breaks
from mysqlsts.core.lease import LeaseRecord, LeaseTimings
from mysqlsts.store.lease_objects import NO_RECORD, ObjectLeaseStore
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.faultproxy import FaultProxy
from tests.integration.archive_helpers import (
    archiver_for,
    make_app_table,
    replay,
    running,
    wait_archived,
    write_rows,
)
from tests.ports import PortPool
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket
from tests.servers import MakeServer

pytestmark = pytest.mark.integration

BUCKET = "archive"


@pytest.fixture(scope="module")
def ports() -> PortPool:
    return PortPool("store")


@pytest.fixture(scope="module")
def s3(ports: PortPool) -> Iterator[S3Server]:
    with S3Server(ports.one()) as server:
        create_bucket(server.endpoint, BUCKET)
        yield server


def s3_settings(endpoint: str, directory: Path) -> S3Settings:
    (directory / "access").write_text(ACCESS_KEY)
    (directory / "secret").write_text(SECRET_KEY)
    return S3Settings(endpoint=endpoint, region=REGION, path_style=True,
                      access_key_file=directory / "access",
                      secret_key_file=directory / "secret", timeout_seconds=2, retry_seconds=3)


def test_a_stalled_store_delays_the_archive_and_loses_nothing(
        s3: S3Server, ports: PortPool, mariadb: MakeServer, tmp_path: Path) -> None:
    primary = mariadb("p", server_id=100)
    restored = mariadb("r", server_id=200)
    keys = BackupKeys.from_secret(b"s" * 32)
    start = primary.value("SELECT @@gtid_binlog_pos") or "oldest"
    with FaultProxy(ports.one(), s3.port) as proxy:
        store = open_store(f"s3://{BUCKET}/set-a",
                           s3_settings(f"http://127.0.0.1:{proxy.listen[1]}", tmp_path))
        archiver, stop = archiver_for(primary, store, keys, start=start)
        with running(archiver, stop):
            make_app_table(primary)
            write_rows(primary, 1, 20)
            wait_archived(store, keys, primary.value("SELECT @@gtid_binlog_pos"))
            proxy.blackhole()
            write_rows(primary, 100, 20)
            time.sleep(6)  # the writes time out and are retried
            proxy.heal()
            records = wait_archived(store, keys, primary.value("SELECT @@gtid_binlog_pos"),
                                    timeout=60)
    assert archiver.state.store_failures >= 1
    direct = open_store(f"s3://{BUCKET}/set-a", s3_settings(s3.endpoint, tmp_path))
    assert breaks(records) == []
    assert all(r.key_id == keys.key_id for r in records)
    replay(records, direct, keys, restored, tmp_path / "replay")
    assert restored.checksum("app.t") == primary.checksum("app.t")
    assert restored.value("SELECT @@gtid_binlog_pos") == primary.value(
        "SELECT @@gtid_binlog_pos")


def test_the_archive_lease_on_s3_one_writer_per_generation_and_a_takeover(
        s3: S3Server, tmp_path: Path) -> None:
    """The lease's generations on real S3 (create-only is If-None-Match there): one of two
    writers after the same generation wins, a stale writer is refused, and a second lock waits
    until the first stops renewing, then takes over after the duration."""
    store = open_store(f"s3://{BUCKET}/lease-test", s3_settings(s3.endpoint, tmp_path))
    leases = ObjectLeaseStore(store, BINLOG_LOCK)
    assert leases.read(5) == (None, NO_RECORD)
    assert leases.write(LeaseRecord("a", 1.0, 2), NO_RECORD, 5) == "1"
    with pytest.raises(LeaseConflict):
        leases.write(LeaseRecord("b", 1.0, 15), NO_RECORD, 5)
    for version in range(1, 4):
        leases.write(LeaseRecord("a", 1.0, 2), str(version), 5)
    with pytest.raises(LeaseConflict):
        leases.write(LeaseRecord("b", 1.0, 15), "1", 5)  # re-creates a cleaned generation
    assert leases.read(5)[0] == LeaseRecord("a", 1.0, 2)
    timings = LeaseTimings(duration=1.5, renew_deadline=1.0, renew_interval=0.2)
    first, second = ArchiveLock(leases, "first", timings), ArchiveLock(leases, "second", timings)
    stop = threading.Event()
    started = time.monotonic()
    first.acquire(stop)  # "a" holds a 2 s record it never renews: taken only after 2 s
    assert time.monotonic() - started >= 2 * 0.9
    taken: list[float] = []
    thread = threading.Thread(target=lambda: (second.acquire(stop),
                                              taken.append(time.monotonic())), daemon=True)
    thread.start()
    time.sleep(3 * timings.duration)
    assert taken == []
    first.abandon()
    abandoned = time.monotonic()
    thread.join(timeout=20)
    assert taken and taken[0] - abandoned >= timings.duration * 0.9
    second.check()
    second.release()
