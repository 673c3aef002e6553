"""The sidecar's heartbeat for the watchdog (sidecar/watchdog.py) and who vouches: the lease
worker's round only while its guard does not say FENCE; otherwise the control loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pymysql
import pytest

from mysqlsts.adapters.lease_store import FileLeaseStore
from mysqlsts.core.identity import identify
from mysqlsts.core.lease import LeaseRecord, LeaseTimings
from mysqlsts.options import PrimaryLeaseOptions, WatchdogOptions
from mysqlsts.settings import LocalServer, SecretFiles
from mysqlsts.sidecar.app import SidecarApp
from mysqlsts.sidecar.lease import PrimaryLease
from mysqlsts.sidecar.settings import Endpoint, SidecarSettings
from mysqlsts.sidecar.watchdog import WatchdogHeartbeat
from tests.ports import PortPool

free_port = PortPool("sidecar-unit")


def test_every_beat_changes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    heartbeat = WatchdogHeartbeat(path)
    seen = set()
    for _ in range(5):
        heartbeat.beat()
        seen.add(path.read_bytes())
    assert len(seen) == 5
    assert not (tmp_path / ".heartbeat.tmp").exists()  # written whole, by rename


def test_a_beat_that_cannot_be_written_is_logged_once_never_raised(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    heartbeat = WatchdogHeartbeat(tmp_path / "missing-dir" / "heartbeat")
    for _ in range(3):
        heartbeat.beat()
    assert [r.message for r in caplog.records].count(
        f"cannot write the watchdog heartbeat {tmp_path}/missing-dir/heartbeat: "
        "No such file or directory") == 1
    (tmp_path / "missing-dir").mkdir()
    heartbeat.beat()
    assert (tmp_path / "missing-dir" / "heartbeat").exists()
    WatchdogHeartbeat(None).beat()  # no watchdog: nothing at all


def _lease_worker(tmp_path: Path, beats: list[float]) -> PrimaryLease:
    port = free_port()  # nothing listens: the server's side is not this test's

    def connect() -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(host="127.0.0.1", port=port, user="root", password="x",
                               connect_timeout=0.5)

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return PrimaryLease(FileLeaseStore(tmp_path / "lease"), LeaseTimings(15, 10, 2),
                        holder="mysql-0", self_fence=lambda: 23.5, data_dir=data, connect=connect,
                        heartbeat=lambda: beats.append(time.monotonic()),
                        stop=threading.Event())


def test_the_lease_worker_vouches_only_while_its_guard_allows_the_server(
        tmp_path: Path) -> None:
    beats: list[float] = []
    worker = _lease_worker(tmp_path, beats)
    worker.round()  # acquired: the server may run
    assert len(beats) == 1
    worker.round()
    assert len(beats) == 2
    record, version = worker.store.read(1)
    assert record is not None
    worker.store.write(LeaseRecord("intruder", 1.7e9, 15, 1), version, 1)
    worker.round()  # another holder: FENCE, and no heartbeat
    worker.round()
    assert len(beats) == 2


def _settings(tmp_path: Path, ordinal: int, lease: str) -> SidecarSettings:
    for name in ("root", "repl", "backup", "token"):
        (tmp_path / name).write_text("secret\n")
    return SidecarSettings(
        identity=identify(f"mysql-{ordinal}", "mysql", 100),
        local=LocalServer("127.0.0.1", free_port()),
        secrets=SecretFiles(*(tmp_path / n for n in ("root", "repl", "backup", "token"))),
        primary=Endpoint("127.0.0.1", free_port()), data_dir=tmp_path, listen_address="127.0.0.1",
        http_port=0, clone_port=None,
        lease=PrimaryLeaseOptions(primary_lease=lease),
        watchdog=WatchdogOptions(watchdog_file=str(tmp_path / "heartbeat")),
    )


@pytest.mark.parametrize(("ordinal", "lease", "loop_vouches"), [
    (1, "none", True),  # a replica: its control loop
    (1, "file:LEASE", True),  # a replica has no lease worker
    (0, "none", True),  # a primary without a lease worker: its loop
    (0, "file:LEASE", False),  # a primary with one: only the lease worker's round
])
def test_who_vouches(tmp_path: Path, ordinal: int, lease: str, loop_vouches: bool) -> None:
    lease = lease.replace("LEASE", str(tmp_path / "lease"))
    app = SidecarApp(_settings(tmp_path, ordinal, lease))
    heartbeat = tmp_path / "heartbeat"
    app.loop.round()
    assert heartbeat.exists() is loop_vouches
    assert (app.lease is not None) is (not loop_vouches)
    if app.lease is not None:
        app.lease.round()
        assert heartbeat.exists()
