"""The sidecar against real mariadbd servers: set-up on the primary, replication on a replica,
idempotent restarts, probes and metrics that follow the server's real state."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from mysqlsts.options import LoopOptions, ReplicationOptions
from mysqlsts.sidecar.app import SidecarApp
from tests.integration.sidecar_servers import Harness, Server, http_get, wait_for

pytestmark = pytest.mark.integration


def _ready(app: SidecarApp) -> bool:
    return http_get(app.http_port, "/readyz")[0] == 200


def _primary_and_replica(harness: Harness) -> tuple[Server, SidecarApp, Server, SidecarApp]:
    primary = harness.server("p", 100)
    replica = harness.server("r", 101, replica=True)
    p_app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready", lambda: _ready(p_app), 20)
    r_app = harness.sidecar(harness.settings(1, replica, primary))
    wait_for("replica ready", lambda: _ready(r_app), 30)
    return primary, p_app, replica, r_app


def _grants(server: Server, user: str) -> str:
    rows = server.sql(f"SHOW GRANTS FOR '{user}'@'%'")
    return " ".join(str(next(iter(row.values()))) for row in rows)


def test_primary_creates_accounts_and_heartbeat(harness: Harness) -> None:
    primary = harness.server("p", 100)
    app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready", lambda: _ready(app), 20)

    assert "REPLICATION SLAVE ON *.*" in _grants(primary, "repl")
    backup = _grants(primary, "mysqlsts_backup")
    for privilege in ("RELOAD", "PROCESS", "LOCK TABLES", "BINLOG MONITOR", "SLAVE MONITOR"):
        assert privilege in backup
    assert "SUPER" not in backup and "ALL PRIVILEGES" not in backup
    # The accounts log in with the passwords from the Secret files (quotes and all).
    for user, password in (("repl", harness.secrets.replication),
                           ("mysqlsts_backup", harness.secrets.backup)):
        primary.connect(user=user, password=password).close()

    wait_for("heartbeat rows", lambda: primary.value(
        "SELECT COUNT(*) FROM mysqlsts.heartbeat WHERE server_id = 100") == 1, 5)
    first = primary.value("SELECT ts FROM mysqlsts.heartbeat")
    wait_for("heartbeat advances",
             lambda: primary.value("SELECT ts FROM mysqlsts.heartbeat") != first, 5)
    assert len(first) == 26 and first[10] == "T"

    status = json.loads(http_get(app.http_port, "/status")[1])
    assert status["role"] == "primary" and status["setup"]["done"] is True
    assert status["heartbeat"]["last_write"] is not None
    metrics = http_get(app.http_port, "/metrics")[1]
    assert "mysqlsts_up 1.0" in metrics and "mysqlsts_ready 1.0" in metrics
    assert "mysqlsts_heartbeat_last_write_timestamp_seconds" in metrics
    assert 'mysqlsts_info{flavor="mariadb",role="primary",server_id="100"' in metrics
    # No password in anything the sidecar serves.
    for path in ("/metrics", "/status", "/readyz", "/livez"):
        body = http_get(app.http_port, path)[1]
        assert harness.secrets.replication not in body and harness.secrets.backup not in body


def test_a_second_start_follows_a_rotated_password(harness: Harness) -> None:
    primary = harness.server("p", 100)
    app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready", lambda: _ready(app), 20)
    harness.stop_sidecar(app)
    path = harness.secrets.files().replication_password
    path.write_text("rotated'-secret\n")
    app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready again", lambda: _ready(app), 20)
    primary.connect(user="repl", password="rotated'-secret").close()


def test_replica_replicates_and_reports_lag(harness: Harness) -> None:
    primary, _, replica, r_app = _primary_and_replica(harness)
    status = replica.sql("SHOW SLAVE STATUS")[0]
    assert status["Using_Gtid"] == "Slave_Pos"
    assert status["Master_Port"] == primary.port
    primary.sql("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
                "INSERT INTO app.t VALUES (1), (2), (3)")
    wait_for("rows replicate", lambda: replica.value(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'app'") == 1
        and replica.value("SELECT COUNT(*) FROM app.t") == 3, 10)
    # The accounts reached the replica through replication.
    replica.connect(user="repl", password=harness.secrets.replication).close()

    # The lag needs a heartbeat written, replicated and observed: a cycle or two after the rows.
    def replication() -> dict[str, Any]:
        return dict(json.loads(http_get(r_app.http_port, "/status")[1]))

    wait_for("heartbeat lag reported",
             lambda: replication()["replication"]["lag_seconds"] is not None, 10)
    body = replication()
    repl = body["replication"]
    assert repl["io_running"] == "Yes" and repl["sql_running"] == "Yes"
    assert repl["lag_seconds"] < 3
    assert body["gtid"]["gtid_slave_pos"]
    metrics = http_get(r_app.http_port, "/metrics")[1]
    lag = float(next(line.split()[1] for line in metrics.splitlines()
                     if line.startswith("mysqlsts_replication_lag_seconds ")))
    assert 0 <= lag < 3
    assert "mysqlsts_replication_io_running 1.0" in metrics
    assert "mysqlsts_replication_last_errno 0.0" in metrics
    assert "mysqlsts_replication_seconds_behind_source 0.0" in metrics


def test_restarting_the_replica_sidecar_leaves_healthy_replication_alone(
    harness: Harness,
) -> None:
    primary, _, replica, r_app = _primary_and_replica(harness)
    primary.sql("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
                "INSERT INTO app.t VALUES (1)")
    wait_for("row replicates", lambda: replica.value(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'app'") == 1, 10)
    harness.stop_sidecar(r_app)
    # The primary's heartbeats keep the relay log moving; compare with heartbeats stopped.
    time.sleep(0.5)
    before = replica.sql("SHOW SLAVE STATUS")[0]
    threads_before = {row["Id"] for row in replica.sql(
        "SELECT Id FROM information_schema.processlist WHERE User = 'system user'")}
    r_app = harness.sidecar(harness.settings(1, replica, primary))
    wait_for("replica ready", lambda: _ready(r_app), 10)
    after = replica.sql("SHOW SLAVE STATUS")[0]
    threads_after = {row["Id"] for row in replica.sql(
        "SELECT Id FROM information_schema.processlist WHERE User = 'system user'")}
    # Same replication threads (no STOP/START), same relay log (no reset, no CHANGE MASTER).
    assert threads_after == threads_before
    assert after["Relay_Log_File"] == before["Relay_Log_File"]
    assert after["Relay_Log_Pos"] >= before["Relay_Log_Pos"]
    assert "already running" in r_app.state.setup_message


def test_a_broken_replica_is_reported_and_left_as_is(harness: Harness) -> None:
    primary, _, replica, r_app = _primary_and_replica(harness)
    # A write made directly on the replica, then the same key from the primary: 1062.
    replica.sql("SET GLOBAL read_only = OFF", "SET SESSION sql_log_bin = 0",
                "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
                "INSERT INTO app.t VALUES (1)", "SET GLOBAL read_only = ON")
    primary.sql("SET SESSION sql_log_bin = 0", "CREATE DATABASE app",
                "CREATE TABLE app.t (id INT PRIMARY KEY)", "SET SESSION sql_log_bin = 1",
                "INSERT INTO app.t VALUES (1)")
    wait_for("readiness drops", lambda: not _ready(r_app), 5)
    code, body, _ = http_get(r_app.http_port, "/readyz")
    assert code == 503 and "1062" in body and body.count("\n") == 1
    metrics = http_get(r_app.http_port, "/metrics")[1]
    assert "mysqlsts_replication_last_errno 1062.0" in metrics
    assert "mysqlsts_replication_sql_running 0.0" in metrics
    # NULL while the SQL thread is stopped: no sample, never 0.
    assert "mysqlsts_replication_seconds_behind_source" not in metrics

    before = replica.sql("SHOW SLAVE STATUS")[0]
    harness.stop_sidecar(r_app)
    r_app = harness.sidecar(harness.settings(1, replica, primary))
    wait_for("set-up decided", lambda: r_app.state.setup_done, 10)
    assert "broken" in r_app.state.setup_message and "1062" in r_app.state.setup_message
    after = replica.sql("SHOW SLAVE STATUS")[0]
    for column in ("Last_SQL_Errno", "Relay_Log_File", "Relay_Log_Pos", "Exec_Master_Log_Pos",
                   "Slave_SQL_Running", "Master_Host", "Master_Port"):
        assert after[column] == before[column], column
    assert http_get(r_app.http_port, "/readyz")[0] == 503


def test_stop_and_start_slave_flip_readiness_within_3s(harness: Harness) -> None:
    _, _, replica, r_app = _primary_and_replica(harness)
    replica.sql("STOP SLAVE")
    took = wait_for("unready after STOP SLAVE", lambda: not _ready(r_app), 3.0)
    code, body, _ = http_get(r_app.http_port, "/readyz")
    assert code == 503 and "replication stopped" in body, (took, body)
    # The sidecar does not undo an operator's STOP SLAVE.
    time.sleep(2)
    assert replica.sql("SHOW SLAVE STATUS")[0]["Slave_SQL_Running"] == "No"
    replica.sql("START SLAVE")
    wait_for("ready after START SLAVE", lambda: _ready(r_app), 3.0)


def test_a_frozen_server_makes_the_replica_unready_but_not_dead(harness: Harness) -> None:
    _, _, replica, r_app = _primary_and_replica(harness)
    harness.stop_sidecar(r_app)
    r_app = harness.sidecar(harness.settings(
        1, replica, harness.servers[0], loop=LoopOptions(liveness_threshold=6.0, max_backoff=1.0)))
    wait_for("replica ready", lambda: _ready(r_app), 10)
    replica.signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        wait_for("unready while frozen", lambda: not _ready(r_app), 3.0)
        code, body, took = http_get(r_app.http_port, "/readyz")
        assert code == 503 and "server unreachable" in body and took < 1.0
        code, _, took = http_get(r_app.http_port, "/livez")
        assert code == 200 and took < 1.0
        metrics_code, metrics, took = http_get(r_app.http_port, "/metrics")
        assert metrics_code == 200 and "mysqlsts_up 0.0" in metrics and took < 1.0
        # A server silent past the threshold (a long crash recovery) is the mysql container's
        # probes' business: the sidecar's loop runs, so /livez stays 200.
        while time.monotonic() - frozen_at < 8.0:
            assert http_get(r_app.http_port, "/livez")[0] == 200
            time.sleep(0.5)
        scrape_errors = float(next(
            line.split()[1] for line in http_get(r_app.http_port, "/metrics")[1].splitlines()
            if line.startswith("mysqlsts_scrape_errors_total ")))
        assert scrape_errors >= 1
    finally:
        replica.signal(signal.SIGCONT)
    wait_for("ready after thawing", lambda: _ready(r_app), 10)
    assert http_get(r_app.http_port, "/livez")[0] == 200


def _questions(server: Server) -> int:
    return int(server.sql("SHOW GLOBAL STATUS LIKE 'Questions'")[0]["Value"])


def test_a_burst_of_probes_is_not_a_burst_of_queries(harness: Harness) -> None:
    primary = harness.server("p", 100)
    app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready", lambda: _ready(app), 20)

    def queries_during(window: float, requests: int) -> int:
        before = _questions(primary)
        started = time.monotonic()
        for n in range(requests):
            path = ("/readyz", "/livez", "/metrics", "/status")[n % 4]
            assert http_get(app.http_port, path)[0] in (200, 503)
        time.sleep(max(0.0, window - (time.monotonic() - started)))
        return _questions(primary) - before

    quiet = queries_during(3.0, 0)
    busy = queries_during(3.0, 400)
    # The loop's own cadence (observation, heartbeat) costs the same in both windows; 400 probe
    # requests answered from its snapshot add nothing but timing jitter of a cycle or two.
    assert busy - quiet < 20, (quiet, busy)


def _io_running(replica: Server) -> bool:
    rows = replica.sql("SHOW SLAVE STATUS")
    return bool(rows) and rows[0]["Slave_IO_Running"] == "Yes"


def test_a_replica_reconnects_as_soon_as_its_primary_listens_again(harness: Harness) -> None:
    """Without the sidecar, the I/O thread would wait out MASTER_CONNECT_RETRY (60 s here)
    after the primary is back, and the replica would say "source unreachable" meanwhile."""
    primary = harness.server("p", 100)
    replica = harness.server("r", 101, replica=True)
    p_app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready", lambda: _ready(p_app), 20)
    r_app = harness.sidecar(harness.settings(
        1, replica, primary, replication=ReplicationOptions(connect_retry=60)))
    wait_for("replica ready", lambda: _ready(r_app), 30)
    primary.stop()

    def unreachable() -> bool:
        status = r_app.state.observation.replica
        return status is not None and status.source_unreachable

    wait_for("the replica sees its source unreachable", unreachable, 30)
    primary.start()
    took = wait_for("the I/O thread reconnected", lambda: _io_running(replica), 10)
    assert took < 5.0, f"reconnected {took:.1f}s after the primary was back"
    primary.sql("CREATE DATABASE after_outage")
    wait_for("the replica applies new writes",
             lambda: bool(replica.sql("SHOW DATABASES LIKE 'after_outage'")), 10)
