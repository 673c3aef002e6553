"""The sidecar's donor serves `mysqlsts clone`; the clone's replica is then set up from the
record by its own sidecar, and both sides' clone metrics count what happened."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.integration.sidecar_servers import Harness, http_get, wait_for

pytestmark = pytest.mark.integration

STRIDE = 10  # per ordinal: mysql +0, clone +1, http +2


def _metric(port: int, sample: str) -> float:
    for line in http_get(port, "/metrics")[1].splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[1])
    raise AssertionError(f"{sample} not exported")


def test_clone_from_the_sidecars_donor_then_replicate_from_the_record(
    harness: Harness,
) -> None:
    base = harness.ports.block(2 * STRIDE)
    primary = harness.server("p", 100, port=base)
    p_app = harness.sidecar(harness.settings(0, primary, primary, clone_port=base + 1,
                                             http_port=base + 2))
    wait_for("primary ready", lambda: http_get(base + 2, "/readyz")[0] == 200, 20)
    primary.sql("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, note TEXT)",
                "INSERT INTO app.t VALUES (1, 'before the clone'), (2, 'also before')")

    # A client without the token is refused and counted.
    with socket.create_connection(("127.0.0.1", base + 1), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
        sock.settimeout(10)
        while sock.recv(4096):
            pass
    wait_for("refused stream counted", lambda: _metric(
        base + 2, 'mysqlsts_clone_streams_served_total{result="refused"}') == 1, 10)

    secrets = harness.secrets.files()
    data_dir = harness.base / "r-data"
    clone = subprocess.run(
        [sys.executable, "-m", "mysqlsts", "clone", "--pod-name", "mysql-1",
         "--peer-host-template", "127.0.0.1", "--mysql-port", str(base),
         "--clone-port", str(base + 1), "--http-port", str(base + 2),
         "--peer-port-stride", str(STRIDE), "--data-dir", str(data_dir), "--srv-name", "",
         "--clone-deadline", "60",
         "--root-password-file", str(secrets.root_password),
         "--replication-password-file", str(secrets.replication_password),
         "--backup-password-file", str(secrets.backup_password),
         "--clone-token-file", str(secrets.clone_token)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "MYSQLSTS_LOG_LEVEL": "info"},
    )
    assert clone.returncode == 0, clone.stderr[-3000:]
    assert _metric(base + 2, 'mysqlsts_clone_streams_served_total{result="ok"}') == 1
    donor = json.loads(http_get(base + 2, "/status")[1])["clone"]["donor"]
    assert donor["streams"]["ok"] == 1 and donor["bytes_served"] > 1_000_000

    primary.sql("INSERT INTO app.t VALUES (3, 'after the clone')")
    replica = harness.server("r", 101, replica=True, port=base + STRIDE, data_dir=data_dir)
    r_app = harness.sidecar(harness.settings(1, replica, primary, clone_port=base + STRIDE + 1,
                                             http_port=base + STRIDE + 2))
    wait_for("replica ready", lambda: http_get(base + STRIDE + 2, "/readyz")[0] == 200, 30)
    # The donor was the primary: its backup carries an empty gtid_slave_pos, so the record counts.
    assert "from the clone record's GTID 0-100-" in r_app.state.setup_message
    wait_for("rows after the clone replicate",
             lambda: replica.value("SELECT COUNT(*) FROM app.t") == 3, 10)
    rows = replica.sql("SELECT id, note FROM app.t ORDER BY id")
    assert [r["note"] for r in rows] == ["before the clone", "also before", "after the clone"]

    record = json.loads(http_get(base + STRIDE + 2, "/status")[1])["clone"]["record"]
    assert record["bytes"] > 1_000_000 and record["donor"].endswith(str(base + 1))
    assert _metric(base + STRIDE + 2, "mysqlsts_clone_bytes_total") == record["bytes"]
    assert _metric(base + STRIDE + 2, "mysqlsts_clone_duration_seconds") > 0
    assert p_app.state.setup_done
