"""The sidecar's probes and lag metrics tell the truth exactly when things go wrong (issue 3 §5).

A primary (mysql-0) and a replica (mysql-1): real mariadbd processes configured by
`mysqlsts init` from the manifests' role cnf, each with a `mysqlsts sidecar` *process* driven
through its environment, as in a pod. The replica replicates through a fault-injecting proxy
(tests/faultproxy.py) so a test can make the link silently dead. Every check reads the sidecar's
HTTP answers; /metrics is parsed with prometheus-client's own parser.

Ports: 23100-23999 (this suite's share of loopback). Tests run in file order and each one
restores the healthy pair before it ends; the last one stops and restarts the replica server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faultproxy import FaultProxy
from tests.integration.probe_fixtures import (
    Ports,
    Secrets,
    Server,
    Sidecar,
    bootstrap_template,
    have_mariadb,
    parse_metrics,
    prepare_pod,
    wait_until,
)
from tests.ports import PortPool

pytestmark = pytest.mark.integration

MAX_LAG = 5.0  # the replica's --max-lag: small, so lag tests stay short
LIVENESS_THRESHOLD = 8.0  # the replica's --liveness-threshold
# The replica's I/O thread would notice a dead link only after this; the dead-link test ends
# well before, which is the point: until then Seconds_Behind_Master reads 0.
SLAVE_NET_TIMEOUT = 90
LAG = "mysqlsts_replication_lag_seconds"
SBS = "mysqlsts_replication_seconds_behind_source"


@dataclass
class Pair:
    primary: Server
    replica: Server
    primary_sidecar: Sidecar
    replica_sidecar: Sidecar
    proxy: FaultProxy

    def replica_status(self) -> dict[str, object]:
        return self.replica.sql("SHOW SLAVE STATUS")[0]

    def metrics(self) -> dict[str, float]:
        return self.replica_sidecar.metrics()

    def ready(self) -> bool:
        return self.replica_sidecar.get("/readyz").status == 200

    def wait_healthy(self, timeout: float = 30) -> None:
        """Replica ready, both threads running, heartbeat lag small, link passing."""
        self.proxy.heal()

        def healthy() -> bool:
            metrics = self.metrics()
            return (self.ready() and metrics.get("mysqlsts_replication_io_running") == 1
                    and metrics.get("mysqlsts_replication_sql_running") == 1
                    and metrics.get(LAG, 99.0) < 2.0)

        try:
            wait_until(healthy, timeout, what="healthy replica")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nreplica sidecar log:\n"
                                 f"{self.replica_sidecar.log_tail()}") from None


def _sidecar(root: Path, pod: str, ports: Ports, secrets: Secrets, server: Server,
             **env: str) -> Sidecar:
    ordinal = int(pod.rsplit("-", 1)[1])
    environment = {
        **secrets.env(), **ports.env(),
        "MYSQLSTS_POD_NAME": pod,
        "MYSQLSTS_DATA_DIR": str(server.spec.data_dir),
        "MYSQLSTS_LISTEN_ADDRESS": "127.0.0.1",
        "MYSQLSTS_NO_DONOR": "1",  # the donor is not under test here
        "MYSQLSTS_LOG_LEVEL": "info",
        # The pods' primary lease, in a file both contend for (the primary starts read-only).
        "MYSQLSTS_PRIMARY_LEASE": f"file:{root / 'primary-lease.json'}",
        **{f"MYSQLSTS_{name.upper()}": value for name, value in env.items()},
    }
    return Sidecar(pod=pod, http_port=ports.of(ordinal)[2], env=environment, args=[],
                   log_path=root / f"{pod}-sidecar.log")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not have_mariadb():
        pytest.skip("mariadbd is not installed (scripts/setup-host test)")
    root = tmp_path_factory.mktemp("probes")
    pool = PortPool("probes")
    base = pool.block(20)
    ports = Ports(mysql=base, clone=base + 1, http=base + 2, stride=10)
    proxy_port = pool.one()
    secrets = Secrets.create(root / "secrets")
    template = bootstrap_template(root, secrets)
    primary = prepare_pod(root, "mysql-0", ports.of(0)[0], secrets, template)
    replica = prepare_pod(root, "mysql-1", ports.of(1)[0], secrets, template,
                          extra_cnf=f"slave_net_timeout={SLAVE_NET_TIMEOUT}\n")
    started: list[Server | Sidecar] = []
    proxy = FaultProxy(proxy_port, ports.of(0)[0])
    try:
        for server in (primary, replica):
            server.start()
            started.append(server)
        proxy.start()
        primary_sidecar = _sidecar(root, "mysql-0", ports, secrets, primary)
        replica_sidecar = _sidecar(
            root, "mysql-1", ports, secrets, replica,
            primary_host="127.0.0.1", primary_port=str(proxy_port), max_lag=str(MAX_LAG),
            liveness_threshold=str(LIVENESS_THRESHOLD), connect_retry="1",
        )
        for sidecar in (primary_sidecar, replica_sidecar):
            sidecar.start()
            started.append(sidecar)
        result = Pair(primary, replica, primary_sidecar, replica_sidecar, proxy)
        result.wait_healthy(60)
        yield result
    finally:
        for thing in reversed(started):
            thing.stop()
        proxy.close()


@pytest.fixture
def healthy(pair: Pair) -> Iterator[Pair]:
    pair.wait_healthy()
    yield pair
    pair.proxy.heal()


def _seconds_until(check: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    wait_until(check, timeout, interval=0.1, what=what)  # type: ignore[arg-type]
    return time.monotonic() - started


def test_replica_replicates_through_the_proxy(healthy: Pair) -> None:
    status = healthy.replica_status()
    assert status["Master_Port"] == healthy.proxy.listen[1]
    assert healthy.proxy.open_connections >= 1 and healthy.proxy.bytes_down > 0
    primary_metrics = healthy.primary_sidecar.metrics()
    assert primary_metrics["mysqlsts_ready"] == 1
    # The primary's heartbeat is fresh: written within the last couple of seconds.
    assert time.time() - primary_metrics["mysqlsts_heartbeat_last_write_timestamp_seconds"] < 3


def test_stop_slave_makes_replica_unready_within_3s_but_alive(healthy: Pair) -> None:
    sidecar = healthy.replica_sidecar
    healthy.replica.sql("STOP SLAVE")
    try:
        took = _seconds_until(lambda: sidecar.get("/readyz").status == 503, 3.0,
                              "unready after STOP SLAVE")
        readyz = sidecar.get("/readyz")
        assert "replication stopped" in readyz.body, readyz.body
        assert readyz.body.count("\n") == 1  # one line of reason
        assert sidecar.get("/livez").status == 200
        metrics = sidecar.metrics()
        assert metrics["mysqlsts_ready"] == 0
        assert metrics["mysqlsts_replication_io_running"] == 0
        assert metrics["mysqlsts_replication_sql_running"] == 0
        assert SBS not in metrics  # NULL while stopped: absent, never 0
        assert took <= 3.0
    finally:
        healthy.replica.sql("START SLAVE")
    _seconds_until(healthy.ready, 3.0, "ready within 3 s after START SLAVE")
    assert sidecar.get("/livez").status == 200


def _last_applied_heartbeat(replica: Server) -> str:
    rows = replica.sql("SELECT MAX(ts) AS ts FROM mysqlsts.heartbeat WHERE server_id <> "
                       "@@global.server_id")
    return str(rows[0]["ts"])


def _just_after_a_heartbeat(replica: Server) -> None:
    """Return right after a new heartbeat row was applied on the replica, so that a fault
    injected now starts the lag clock at ~0 and the heartbeat interval (1 s) does not blur
    the timing checks."""
    before = _last_applied_heartbeat(replica)
    wait_until(lambda: _last_applied_heartbeat(replica) != before, 3, interval=0.02,
               what="a fresh heartbeat applied")


def test_lag_is_time_since_sql_thread_stopped_and_sbm_is_absent(healthy: Pair) -> None:
    replica, sidecar = healthy.replica, healthy.replica_sidecar
    # From here on, lag should equal the time since the stop.
    _just_after_a_heartbeat(replica)
    replica.sql("STOP SLAVE SQL_THREAD")
    stopped_at = time.time()
    samples: list[tuple[float, float]] = []
    try:
        for target in (2.0, 4.0, 6.0):
            time.sleep(max(0.0, stopped_at + target - time.time()))
            requested = time.time()
            reply = sidecar.get("/metrics")
            elapsed = (requested + time.time()) / 2 - stopped_at
            metrics = parse_metrics(reply.body)
            assert SBS not in metrics, f"seconds behind source shown while NULL: {metrics[SBS]}"
            assert metrics["mysqlsts_replication_sql_running"] == 0
            assert metrics["mysqlsts_replication_io_running"] == 1
            samples.append((elapsed, metrics[LAG]))
        # The server itself says NULL, which the metric must not turn into 0.
        assert healthy.replica_status()["Seconds_Behind_Master"] is None
    finally:
        replica.sql("START SLAVE SQL_THREAD")
    for elapsed, lag in samples:
        assert abs(lag - elapsed) <= 1.0, f"lag {lag:.2f}s after {elapsed:.2f}s: {samples}"
    assert samples[0][1] < samples[1][1] < samples[2][1]
    wait_until(lambda: healthy.metrics().get(LAG, 99.0) < 2.0, 5, what="lag back to ~0")
    assert SBS in healthy.metrics()


def test_lag_above_max_lag_makes_unready_then_recovers(healthy: Pair) -> None:
    """Both threads run, but the SQL thread cannot apply (a global read lock on the replica):
    readiness must drop for lag alone, after --max-lag and within 3 s of crossing it."""
    sidecar = healthy.replica_sidecar
    lock = healthy.replica.connect()
    _just_after_a_heartbeat(healthy.replica)
    try:
        with lock.cursor() as cursor:
            cursor.execute("FLUSH TABLES WITH READ LOCK")
        locked_at = time.monotonic()
        time.sleep(MAX_LAG - 2.5)
        early = sidecar.get("/readyz")
        assert early.status == 200, f"unready before lag reached {MAX_LAG}s: {early.body}"
        wait_until(lambda: sidecar.get("/readyz").status == 503, MAX_LAG + 5, interval=0.1,
                   what="unready for lag")
        unready_after = time.monotonic() - locked_at
        readyz = sidecar.get("/readyz")
        metrics = sidecar.metrics()
        assert "lag" in readyz.body, readyz.body
        assert metrics["mysqlsts_replication_io_running"] == 1
        assert metrics["mysqlsts_replication_sql_running"] == 1
        assert metrics[LAG] > MAX_LAG
        # Lag crosses the limit MAX_LAG after the lock; readiness follows within 3 s.
        assert MAX_LAG - 0.5 <= unready_after <= MAX_LAG + 3, unready_after
        assert sidecar.get("/livez").status == 200
    finally:
        with lock.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")
        lock.close()
    _seconds_until(healthy.ready, 5.0, "ready after the lock is released")
    assert healthy.metrics()[LAG] < MAX_LAG


def test_silently_dead_link_shows_heartbeat_lag_while_sbm_reads_0(healthy: Pair) -> None:
    sidecar, proxy = healthy.replica_sidecar, healthy.proxy
    assert proxy.open_connections >= 1, "the replica does not replicate through the proxy"
    _just_after_a_heartbeat(healthy.replica)
    proxy.blackhole()
    cut_at = time.monotonic()
    try:
        wait_until(lambda: sidecar.get("/readyz").status == 503, MAX_LAG + 5, interval=0.1,
                   what="unready on a dead link")
        unready_after = time.monotonic() - cut_at
        readyz = sidecar.get("/readyz")
        metrics = sidecar.metrics()
        status = healthy.replica_status()
        # The usual signals lie: the server sees a running, caught-up replica...
        assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
        assert status["Seconds_Behind_Master"] == 0
        assert metrics[SBS] == 0
        assert metrics["mysqlsts_replication_io_running"] == 1
        # ...while the heartbeat tells the truth, and readiness follows it.
        assert metrics[LAG] > MAX_LAG
        assert "heartbeat lag" in readyz.body, readyz.body
        assert MAX_LAG - 0.5 <= unready_after <= MAX_LAG + 3, unready_after
        assert sidecar.get("/livez").status == 200
        assert proxy.open_connections >= 1  # nothing was closed: the link is just silent
        time.sleep(2)
        later = sidecar.metrics()
        assert later[LAG] >= metrics[LAG] + 1.5, (metrics[LAG], later[LAG])
        assert later.get(SBS) == 0
        assert time.monotonic() - cut_at < SLAVE_NET_TIMEOUT / 2  # the test is bounded
    finally:
        proxy.heal()
    _seconds_until(healthy.ready, 5.0, "ready after the link heals")
    assert healthy.metrics()[LAG] < 2.0


def test_frozen_server_unready_fast_probes_and_alive_past_the_threshold(
    healthy: Pair,
) -> None:
    """The walkthrough's "1/2 READY" experiment: SIGSTOP the replica's server."""
    sidecar = healthy.replica_sidecar
    healthy.replica.freeze()
    frozen_at = time.monotonic()
    slowest = 0.0
    live_seen: list[tuple[float, int]] = []
    unready_at: float | None = None
    try:
        while time.monotonic() - frozen_at < LIVENESS_THRESHOLD + 4:
            for path in ("/readyz", "/livez", "/metrics", "/status"):
                reply = sidecar.get(path, timeout=3)
                slowest = max(slowest, reply.seconds)
                now = time.monotonic() - frozen_at
                assert reply.status in (200, 503), (path, reply.status, reply.body[:200])
                if path == "/readyz" and reply.status == 503 and unready_at is None:
                    unready_at = now
                if path == "/livez":
                    live_seen.append((now, reply.status))
                if path == "/metrics":
                    assert reply.status == 200
            time.sleep(0.2)
        metrics = sidecar.metrics()
        assert metrics["mysqlsts_up"] == 0 and metrics["mysqlsts_ready"] == 0
        assert metrics["mysqlsts_scrape_errors_total"] >= 1
    finally:
        healthy.replica.thaw()
    assert unready_at is not None and unready_at <= 3.0, unready_at
    assert slowest < 1.0, f"a probe took {slowest:.2f}s while the server was frozen"
    # A server silent past the threshold (a long crash recovery) never fails /livez: the
    # sidecar's loop runs on, and the mysql container's own probes answer for the server.
    assert live_seen[-1][0] > LIVENESS_THRESHOLD + 3
    assert all(status == 200 for _, status in live_seen), live_seen
    healthy.wait_healthy(15)


def test_stopped_server_is_up_0_never_http_500_then_recovers(healthy: Pair) -> None:
    sidecar, replica = healthy.replica_sidecar, healthy.replica
    codes: set[int] = set()

    def scrape() -> dict[str, float]:
        reply = sidecar.get("/metrics", timeout=3)
        codes.add(reply.status)
        assert reply.seconds < 1.0
        return parse_metrics(reply.body)

    replica.stop()
    try:
        wait_until(lambda: scrape()["mysqlsts_up"] == 0, 5, what="mysqlsts_up 0")
        metrics = scrape()
        assert metrics["mysqlsts_ready"] == 0
        # No replication figures are invented for a server nobody can ask.
        assert LAG not in metrics and SBS not in metrics
        readyz = sidecar.get("/readyz")
        assert readyz.status == 503 and "unreachable" in readyz.body, readyz.body
        assert sidecar.get("/status").status == 200
    finally:
        replica.start()
    wait_until(lambda: scrape()["mysqlsts_up"] == 1, 15, what="mysqlsts_up 1 after restart")
    healthy.wait_healthy(30)
    assert codes == {200}, codes
