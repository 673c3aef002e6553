# ruff: noqa: F401, F811 (pytest fixtures imported from sidecar_servers are parameters here)
"""The watchdog on real servers: the server runs under `mysqlsts server` and the sidecar is
`mysqlsts sidecar`, each its own process as in a pod, sharing a heartbeat file.

- the primary's sidecar (holding the file-backed lease, so its server is writable) SIGKILLed,
  or SIGSTOPped, while root commits a row every ~20 ms: mariadbd stops accepting writes within
  the bound. 20 trials of each, min/median/max of (last accepted write - the signal) printed;
- a replica's watchdog keeps mariadbd running while its sidecar lives (no false stop over three
  timeouts, replication working), and stops it once the sidecar is killed;
- the primary lease fence's marker in the data dir keeps `mysqlsts server` from starting
  mariadbd until it is removed;
- the primary's Lease claims renew deadline + the stop bound `mysqlsts server` enforces (and
  states beside the heartbeat), even when the sidecar's own watchdog settings differ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from mysqlsts.adapters.lease_store import FileLeaseStore
from mysqlsts.core.lease import FENCE_FILE
from mysqlsts.core.watchdog import WATCHDOG_EXIT
from mysqlsts.local.mariadbd import ServerSpec, prepare, supervised_argv, wait_until_up
from mysqlsts.local.procs import console_script
from mysqlsts.options import (
    DataDirOptions,
    DonorOptions,
    IsolationOptions,
    ListenOptions,
    LoopOptions,
    PeerOptions,
    PodOptions,
    PrimaryLeaseOptions,
    ReplicationOptions,
    RootPasswordOptions,
    SecretOptions,
    WatchdogOptions,
    to_env,
)
from tests.integration.sidecar_servers import (
    REPLICA_CNF,
    ROLE_CNF,
    Harness,
    RootWriter,
    harness,
    sidecar_ports,
    sidecar_template,
    wait_for,
)
from tests.servers import Server

pytestmark = pytest.mark.integration

# Short timings so 40 trials fit in a few minutes.
LEASE = dict(lease_duration=3.0, lease_renew_deadline=2.0, lease_renew_interval=0.25)
WATCHDOG = WatchdogOptions(watchdog_timeout=1.0, watchdog_grace=1.0, watchdog_startup=30.0)
# The documented bound (docs/takeover.md, "The watchdog"): from the start of the last renew,
# the renew deadline, then the watchdog's poll + timeout + grace.
BOUND = LEASE["lease_renew_deadline"] + WATCHDOG.stop_bound()
TRIALS = 20
WRITE_EVERY = 0.02


class Pod:
    """One pod's two processes: `mysqlsts server` (and its mariadbd) and `mysqlsts sidecar`,
    each leading its own process group, with a shared heartbeat file."""

    def __init__(self, h: Harness, name: str, server_id: int, *, replica: bool,
                 primary: Server | None = None) -> None:
        self.h = h
        self.name = name
        self.ordinal = int(name.rsplit("-", 1)[1])
        home = h.base / name
        (home / "conf.d").mkdir(parents=True)
        (home / "conf.d" / "role.cnf").write_text(ROLE_CNF + (REPLICA_CNF if replica else ""))
        (home / "conf.d" / "server-id.cnf").write_text(f"[mysqld]\nserver_id={server_id}\n")
        shutil.copytree(h.template, home / "data")
        self.home = home
        self.spec = ServerSpec(data_dir=home / "data", conf_dir=home / "conf.d",
                               run_dir=home / "run", port=h.ports())
        self.http_port = h.ports()
        self.server = Server(self.spec, h.secrets.root, name=name)
        self.heartbeat = home / "run" / "heartbeat"
        self.lease_file = h.base / "primary-lease"
        self.primary = primary
        self.server_process: subprocess.Popen[bytes] | None = None
        self.sidecar_process: subprocess.Popen[bytes] | None = None
        self.sidecar_watchdog = WATCHDOG  # the sidecar container's own settings

    def env(self, watchdog: WatchdogOptions = WATCHDOG) -> dict[str, str]:
        files = self.h.secrets.files()
        primary = self.primary or self.server
        groups: list[Any] = [
            PodOptions(self.name),
            PeerOptions(mysql_port=self.spec.port, http_port=self.http_port),
            ListenOptions(listen_address="127.0.0.1"),
            # A replica's heartbeat comes from its control loop's rounds: well inside the
            # short watchdog timeout (the defaults, 1 s and 10 s, have the same margin).
            LoopOptions(poll_interval=0.2),
            DataDirOptions(self.spec.data_dir),
            RootPasswordOptions(files.root_password),
            SecretOptions(replication_password_file=files.replication_password,
                          backup_password_file=files.backup_password,
                          clone_token_file=files.clone_token),
            DonorOptions(no_donor=True),
            IsolationOptions(isolation_api_endpoint=""),
            ReplicationOptions(primary_host="127.0.0.1", primary_port=primary.port,
                               connect_retry=1),
            PrimaryLeaseOptions(primary_lease=f"file:{self.lease_file}", **LEASE),
            dataclasses.replace(watchdog, watchdog_file=str(self.heartbeat)),
        ]
        return {"PATH": os.environ["PATH"], **to_env(*groups)}

    def _spawn(self, argv: list[str], log: str,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.home / log).open("ab") as out:
            return subprocess.Popen(argv, env=env or self.env(), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def start_server(self, wait: bool = True) -> None:
        prepare(self.spec)
        self.server_process = self._spawn(supervised_argv(self.spec, console_script()),
                                          "server.log")
        if wait:
            self.wait_until_up()

    def wait_until_up(self) -> None:
        wait_until_up("127.0.0.1", self.spec.port, "root", self.h.secrets.root, 60,
                      self.server_process)

    def start_sidecar(self) -> None:
        self.sidecar_process = self._spawn([*console_script(), "sidecar"], "sidecar.log",
                                           self.env(self.sidecar_watchdog))

    def signal_sidecar(self, signum: int) -> None:
        assert self.sidecar_process is not None
        os.kill(self.sidecar_process.pid, signum)

    def end_sidecar(self) -> None:
        process, self.sidecar_process = self.sidecar_process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def server_exit(self, timeout: float) -> int:
        assert self.server_process is not None
        return self.server_process.wait(timeout)

    def close(self) -> None:
        self.end_sidecar()
        process, self.server_process = self.server_process, None
        if process is not None and process.poll() is None:
            process.terminate()  # passed on to mariadbd: a clean shutdown
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n" + (self.home / name).read_text()[-3000:]
                         for name in ("server.log", "sidecar.log")
                         if (self.home / name).exists())




def _read_only(server: Server) -> int | None:
    try:
        return int(server.value("SELECT @@global.read_only"))
    except pymysql.MySQLError:
        return None


@pytest.fixture
def pods(harness: Harness) -> Iterator[list[Pod]]:
    made: list[Pod] = []
    try:
        yield made
    finally:
        for pod in made:
            pod.close()


def _primary(harness: Harness, pods: list[Pod]) -> Pod:
    pod = Pod(harness, "mysql-0", 100, replica=True)  # starts read-only: the lease lifts it
    pods.append(pod)
    pod.start_server()
    pod.server.sql("CREATE DATABASE IF NOT EXISTS app",
                   "CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
    return pod


def _trial(pod: Pod, signum: int) -> float:
    """Start the server if it is not running, the sidecar, wait for the lease to make the
    server writable, then stop the sidecar with `signum` under a writer: the seconds from the
    signal to the last write the server accepted."""
    restart = pod.server_process is None or pod.server_process.poll() is not None
    if restart:
        # The heartbeat file is the earlier run's: a restart inside the pod, so `mysqlsts
        # server` starts mariadbd only once the sidecar's heartbeat changes.
        pod.start_server(wait=False)
    pod.start_sidecar()
    try:
        if restart:
            pod.wait_until_up()
        wait_for("lease held: the server writable", lambda: _read_only(pod.server) == 0, 30)
        with RootWriter(pod.server, WRITE_EVERY) as writer:
            wait_for("root writing", lambda: writer.commits > 10, 10)
            pod.signal_sidecar(signum)
            signalled = time.monotonic()
            assert pod.server_exit(BOUND + 10) == WATCHDOG_EXIT
        assert writer.last_commit is not None
        return writer.last_commit - signalled
    except BaseException:
        print(pod.logs())
        raise
    finally:
        pod.end_sidecar()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
def test_a_dead_or_hung_sidecar_stops_its_primary_within_the_bound(
        harness: Harness, pods: list[Pod], signum: int) -> None:
    pod = _primary(harness, pods)
    observed = [_trial(pod, signum) for _ in range(TRIALS)]
    name = signal.Signals(signum).name
    print(f"\nsidecar {name} -> last accepted write over {len(observed)} trials (watchdog "
          f"timeout {WATCHDOG.watchdog_timeout:g}s, grace {WATCHDOG.watchdog_grace:g}s, poll "
          f"{WATCHDOG.poll:g}s; renew deadline {LEASE['lease_renew_deadline']:g}s): min "
          f"{min(observed):.3f}s median {statistics.median(observed):.3f}s max "
          f"{max(observed):.3f}s; bound {BOUND:g}s")
    assert max(observed) < BOUND
    # Each trial's server ended with the watchdog's exit code (3), not a SHUTDOWN by a lease
    # fence: the sidecar was dead or frozen; and the watchdog said why.
    assert (pod.home / "server.log").read_text().count("heartbeat has not changed") == TRIALS


def test_a_replicas_watchdog_keeps_it_running_while_its_sidecar_lives(
        harness: Harness, pods: list[Pod]) -> None:
    primary = harness.server("mysql-0", 100)  # writable, no lease: the replica's source
    harness.sidecar(harness.settings(0, primary, primary))  # its accounts, in-process
    primary.sql("CREATE DATABASE IF NOT EXISTS app",
                "CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
    replica = Pod(harness, "mysql-1", 101, replica=True, primary=primary)
    pods.append(replica)
    replica.start_server()
    replica.start_sidecar()
    watched_until = time.monotonic() + max(3 * WATCHDOG.watchdog_timeout, 5.0)
    rows = 0
    while time.monotonic() < watched_until:
        assert replica.server_process is not None and replica.server_process.poll() is None, \
            replica.logs()
        primary.sql("INSERT INTO app.t (v) VALUES (1)")
        rows += 1
        time.sleep(0.2)
    try:
        wait_for("the replica replicates", lambda: _count(replica.server) == rows, 10)
    except AssertionError:
        print(replica.logs())
        raise
    assert replica.heartbeat.exists()
    replica.signal_sidecar(signal.SIGKILL)
    killed = time.monotonic()
    assert replica.server_exit(10) == WATCHDOG_EXIT
    assert time.monotonic() - killed < WATCHDOG.stop_bound() + 1.0


def _count(server: Server) -> int | None:
    try:
        return int(server.value("SELECT COUNT(*) FROM app.t"))
    except pymysql.MySQLError:
        return None


def test_a_fenced_server_does_not_start_until_the_fence_goes(
        harness: Harness, pods: list[Pod]) -> None:
    pod = Pod(harness, "mysql-0", 100, replica=True)
    pods.append(pod)
    fence = pod.spec.data_dir / FENCE_FILE
    fence.write_text('{"reason": "the lease was lost"}\n')
    pod.start_server(wait=False)
    time.sleep(3.0)  # long enough for mariadbd to have answered, had it been started
    assert pod.server_process is not None and pod.server_process.poll() is None
    with pytest.raises(pymysql.MySQLError):
        pod.server.value("SELECT 1")
    fence.unlink()  # as the sidecar does once it holds the lease again
    pod.wait_until_up()
    assert _read_only(pod.server) == 1  # started read-only, as always
    log = (pod.home / "server.log").read_text()
    assert log.count("not starting: the primary lease fence holds") == 1


def test_the_primary_claims_the_bound_its_servers_watchdog_enforces(
        harness: Harness, pods: list[Pod]) -> None:
    """Only the sidecar container's watchdog settings changed (longer timeout and grace): the
    Lease still says renew deadline + the server's bound, the one that stops it."""
    pod = _primary(harness, pods)
    pod.sidecar_watchdog = dataclasses.replace(WATCHDOG, watchdog_timeout=5.0,
                                               watchdog_grace=4.0)
    bound_file = pod.heartbeat.with_name("heartbeat.bound")
    assert bound_file.read_text() == "2.1\n"  # poll 0.1 + timeout 1 + grace 1, before it ran
    pod.start_sidecar()
    try:
        wait_for("lease held: the server writable", lambda: _read_only(pod.server) == 0, 30)
        record, _ = FileLeaseStore(pod.lease_file).read(1)
        assert record is not None and record.self_fence == BOUND
        bound_file.unlink()  # as under a server image without `mysqlsts server`
        wait_for("no self-fence claimed", lambda: _claimed(pod) == 0, 5)
        assert "no watchdog bound at" in (pod.home / "sidecar.log").read_text()
    except BaseException:
        print(pod.logs())
        raise


def _claimed(pod: Pod) -> float | None:
    record, _ = FileLeaseStore(pod.lease_file).read(1)
    return None if record is None else record.self_fence
