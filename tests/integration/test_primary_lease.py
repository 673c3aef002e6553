# ruff: noqa: F401, F811 (pytest fixtures imported from sidecar_servers are parameters here)
"""The primary lease on real servers, with the file-backed store: the server is writable only
while its sidecar holds the lease; when another holder takes it, or the store stops answering,
no account (root included) commits a write past the renew deadline, because the sidecar shuts
the server down; a restarted sidecar without the lease keeps it stopped; holding the lease
again makes it writable. The last test measures lease loss -> last accepted write over 20
trials and prints min/median/max.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest

from mysqlsts.adapters.lease_store import FileLeaseStore
from mysqlsts.core.lease import FENCE_FILE, LeaseRecord, LeaseTimings
from mysqlsts.local.mariadbd import start_server
from mysqlsts.options import PrimaryLeaseOptions
from mysqlsts.sidecar.app import SidecarApp
from mysqlsts.sidecar.lease import PrimaryLease
from tests.integration.sidecar_servers import Harness, RootWriter, Server, http_get, wait_for

pytestmark = pytest.mark.integration

DURATION, DEADLINE, INTERVAL = 3.0, 2.0, 0.25
MARGIN = 1.5  # the shutdown itself: connect, read_only, SHUTDOWN, the last commit's flush
READ_ONLY = 1290


def _options(path: Path) -> PrimaryLeaseOptions:
    return PrimaryLeaseOptions(primary_lease=f"file:{path}", lease_duration=DURATION,
                               lease_renew_deadline=DEADLINE, lease_renew_interval=INTERVAL)


def _root_write(server: Server) -> bool:
    """Whether root commits one row now (connect and insert on a fresh connection)."""
    try:
        conn = server.connect(read_timeout=2, write_timeout=2)
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO app.t (v) VALUES (1)")
            return True
        finally:
            conn.close()
    except pymysql.MySQLError:
        return False


def _app_write(server: Server) -> int | None:
    """None when an account without SUPER commits, else the error number."""
    try:
        conn = pymysql.connect(host="127.0.0.1", port=server.port, user="app", password="app-pw",
                               database="app", autocommit=True, connect_timeout=2, read_timeout=2)
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO app.t (v) VALUES (1)")
            return None
        finally:
            conn.close()
    except pymysql.MySQLError as exc:
        return int(exc.args[0])




@contextmanager
def _store_locked(store: FileLeaseStore) -> Iterator[None]:
    """The store stops answering: someone holds its lock."""
    fd = os.open(store.lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _take(store: FileLeaseStore, holder: str = "intruder") -> None:
    record, version = store.read(5)
    transitions = 0 if record is None else record.transitions + 1
    store.write(LeaseRecord(holder, time.time(), DURATION, transitions), version, 5)


def _stopped(server: Server, timeout: float = 30) -> float:
    assert server.process is not None
    started = time.monotonic()
    server.process.wait(timeout)
    return time.monotonic() - started


@pytest.fixture
def lease_set(harness: Harness, tmp_path: Path) -> tuple[Harness, Server, FileLeaseStore]:
    # Started read-only (the replica cnf): only the lease makes it writable.
    primary = harness.server("mysql-0", 100, replica=True)
    primary.sql("CREATE DATABASE IF NOT EXISTS app",
                "CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)",
                "CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'", "GRANT ALL ON app.* TO 'app'@'%'")
    return harness, primary, FileLeaseStore(tmp_path / "primary-lease")


def _sidecar(h: Harness, primary: Server, store: FileLeaseStore) -> SidecarApp:
    return h.sidecar(h.settings(0, primary, primary, lease=_options(store.path)))


def _held(app: SidecarApp, primary: Server) -> None:
    wait_for("lease held and server writable", lambda: _app_write(primary) is None, 30)
    assert app.lease is not None and app.lease.held


def test_writable_only_under_the_lease_and_fenced_when_another_holder_takes_it(
        lease_set: tuple[Harness, Server, FileLeaseStore]) -> None:
    h, primary, store = lease_set
    assert _app_write(primary) == READ_ONLY  # nothing made it writable yet
    app = _sidecar(h, primary, store)
    _held(app, primary)
    record, _ = store.read(1)
    assert record is not None and record.holder == "mysql-0"
    assert "mysqlsts_primary_lease_held 1.0" in http_get(app.http_port, "/metrics")[1]

    with RootWriter(primary) as writer:
        wait_for("root writing", lambda: writer.commits > 10, 10)
        _take(store)
        lost = time.monotonic()
        _stopped(primary)
    assert writer.last_commit is not None
    assert writer.last_commit - lost < DEADLINE + MARGIN
    assert not _root_write(primary)  # no account connects, root included
    assert (primary.data_dir / FENCE_FILE).exists()
    status, body, _ = http_get(app.http_port, "/readyz")
    assert status == 503 and "primary lease fence" in body
    assert "mysqlsts_primary_lease_held 0.0" in http_get(app.http_port, "/metrics")[1]
    # the sidecar never took the lease back from a live holder
    record, _ = store.read(1)
    assert record is not None and record.holder == "intruder"


def test_an_isolation_fence_racing_the_lift_has_the_last_word(
        lease_set: tuple[Harness, Server, FileLeaseStore], tmp_path: Path) -> None:
    """The isolation fence sets its flag, then read-only, on its own thread; the lease worker
    lifting read-only looks at the flag again after its statement and undoes it. Here the
    flag comes up between the worker's check and its statement."""
    _, primary, store = lease_set
    answers = iter([False])  # not blocked when checked first; the fence came in after

    worker = PrimaryLease(
        store, LeaseTimings(DURATION, DEADLINE, INTERVAL), holder="mysql-0", self_fence=lambda: 0.0,
        data_dir=tmp_path, connect=lambda: primary.connect(read_timeout=5),
        blocked=lambda: next(answers, True), stop=threading.Event())
    assert worker.renew() is not None and worker.held
    worker.enforce()  # held: lifts read-only, then sees the fence and puts it back
    assert _app_write(primary) == READ_ONLY
    assert not worker.summary()["fenced"]  # not the lease's fence: the isolation fence's


def test_a_store_that_stops_answering_fences_within_the_deadline(
        lease_set: tuple[Harness, Server, FileLeaseStore]) -> None:
    h, primary, store = lease_set
    app = _sidecar(h, primary, store)
    _held(app, primary)
    with RootWriter(primary) as writer:
        # Writing first, then the store goes silent: waiting for commits with the store
        # already locked would eat into the deadline on a loaded machine.
        wait_for("root writing", lambda: writer.commits > 10, 10)
        with _store_locked(store):
            lost = time.monotonic()  # the last renew began before this
            _stopped(primary)
            stopped_after = time.monotonic() - lost
            # The worker's own verdict, while the store is still silent (/status repeats it
            # from the loop's last round, which lags a backed-off loop on a loaded machine).
            assert app.lease is not None and app.lease.fenced
    assert writer.last_commit is not None
    assert writer.last_commit - lost < DEADLINE + MARGIN
    assert stopped_after > DEADLINE - 2 * INTERVAL - 0.2  # not before the deadline either


def test_a_restarted_sidecar_without_the_lease_keeps_its_server_fenced(
        lease_set: tuple[Harness, Server, FileLeaseStore]) -> None:
    h, primary, store = lease_set
    app = _sidecar(h, primary, store)
    _held(app, primary)
    _take(store)
    _stopped(primary)
    h.stop_sidecar(app)

    # Restarted without the lease: someone (a kubelet) starts the server again; the sidecar,
    # reading its persisted fence, stops it again before long, and never lifts read_only.
    second = _sidecar(h, primary, store)
    assert second.lease is not None and second.lease.fenced  # read from the data dir at start
    shutdowns = primary.spec.error_log.read_text().count("initiated by: root")
    primary.process = start_server(primary.spec)  # not waited for: it may not stay up
    assert _stopped(primary) < 2 * INTERVAL + 10
    # it came up and was shut down over SQL by the sidecar (not a failed start)
    assert primary.spec.error_log.read_text().count("initiated by: root") == shutdowns + 1
    assert not _root_write(primary)
    assert (primary.data_dir / FENCE_FILE).exists()
    h.stop_sidecar(second)

    # The intruder lets go (released): a third run takes the lease, lifts the fence, and the
    # server, started again, becomes writable.
    record, version = store.read(1)
    assert record is not None
    store.write(LeaseRecord("", time.time(), DURATION, record.transitions), version, 1)
    third = _sidecar(h, primary, store)
    wait_for("fence lifted", lambda: not (primary.data_dir / FENCE_FILE).exists(), 10)
    primary.start()
    _held(third, primary)
    assert _root_write(primary)


def test_a_sidecar_without_the_lease_keeps_its_server_read_only_then_releases_at_stop(
        lease_set: tuple[Harness, Server, FileLeaseStore]) -> None:
    h, primary, store = lease_set
    _take(store)  # a holder that is alive now (and then stops renewing)
    app = _sidecar(h, primary, store)
    # The server started read-only (as every server does) and is left so, up, not stopped:
    # a new pod waits out a dead holder's lease without being restarted over and over.
    watched_until = time.monotonic() + DURATION - 1
    while time.monotonic() < watched_until:
        assert _app_write(primary) == READ_ONLY
        assert primary.process is not None and primary.process.poll() is None
        time.sleep(0.2)
    assert app.lease is not None and not app.lease.held and not app.lease.fenced
    status, body, _ = http_get(app.http_port, "/readyz")
    assert status == 503 and "until it holds the lease" in body, body
    # The holder never renewed: watched unchanged for its duration, the lease is taken.
    _held(app, primary)
    record, _ = store.read(1)
    assert record is not None and (record.holder, record.transitions) == ("mysql-0", 1)
    assert not (primary.data_dir / FENCE_FILE).exists()

    # A graceful stop makes the server read-only, then gives the lease up.
    h.stop_sidecar(app)
    record, _ = store.read(1)
    assert record is not None and (record.holder, record.transitions) == ("", 1)
    assert _app_write(primary) == READ_ONLY
    assert primary.value("SELECT @@global.read_only") == 1
    # The next holder takes it at once, without waiting a duration.
    again = _sidecar(h, primary, store)
    took = wait_for("lease held again", lambda: _app_write(primary) is None, DURATION - 1)
    assert again.lease is not None and again.lease.held and took < DURATION - 1


def test_without_a_lease_the_set_up_makes_the_read_only_primary_writable(
        lease_set: tuple[Harness, Server, FileLeaseStore]) -> None:
    h, primary, store = lease_set
    assert _app_write(primary) == READ_ONLY  # started read-only, as every server does
    app = h.sidecar(h.settings(0, primary, primary,
                               lease=PrimaryLeaseOptions(primary_lease="none")))
    wait_for("writable after the set-up", lambda: _app_write(primary) is None, 30)
    assert app.lease is None and app.state.setup_done
    assert "read-only lifted (no primary lease)" in app.state.setup_message
    assert not store.path.exists()  # no lease was taken


def test_seconds_from_lease_loss_to_the_last_accepted_write(
        lease_set: tuple[Harness, Server, FileLeaseStore]) -> None:
    """20 trials, alternating another holder and a store that stops answering; prints
    min/median/max of (last accepted write - lease loss)."""
    h, primary, store = lease_set
    observed: list[float] = []
    for trial in range(20):
        app = _sidecar(h, primary, store)
        if trial:
            primary.start()
        _held(app, primary)
        with RootWriter(primary) as writer:
            wait_for("root writing", lambda w=writer: w.commits > 5, 10)  # type: ignore[misc]
            if trial % 2:
                with _store_locked(store):
                    lost = time.monotonic()
                    _stopped(primary)
            else:
                _take(store)
                lost = time.monotonic()
                _stopped(primary)
        assert writer.last_commit is not None
        observed.append(writer.last_commit - lost)
        h.stop_sidecar(app)
        # hand the lease back for the next trial (released, as a finished intruder would)
        record, version = store.read(5)
        assert record is not None
        store.write(LeaseRecord("", time.time(), DURATION, record.transitions), version, 5)
    print(f"\nlease loss -> last accepted write over {len(observed)} trials (renew deadline "
          f"{DEADLINE:g}s, interval {INTERVAL:g}s): min {min(observed):.3f}s median "
          f"{statistics.median(observed):.3f}s max {max(observed):.3f}s")
    assert max(observed) < DEADLINE + MARGIN
