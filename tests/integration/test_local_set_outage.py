"""Reads through a primary outage, and errant transactions, on a real local set (issue #10).

One set of 3 pods, its sidecars run with a short `--max-staleness-primary-down` (WINDOW). The
tests build on each other in file order: a healthy set has no errant transactions → mysql-0
stopped, the replicas serve reads within the window and turn unready after it → mysql-0 started,
writes resume, every pod converges → mysql-0 SIGKILLed three times, the replicas serve throughout
→ a write on a replica is detected as errant (last: that replica stays diverged).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import pytest
from test_local_set import assert_converged, checksums

from tests.localset import LocalSet, LocalSetFactory

pytestmark = pytest.mark.integration

WINDOW = 50.0
# A SIGKILLed mysql-0's successor waits out its lease (the longer of the duration and the
# self-fence, renew deadline + the watchdog's 13.5 s: 17.5 s here) read-only, then writes the
# next heartbeat: well inside the window, on a loaded machine too.
SHORT_LEASE = {"MYSQLSTS_LEASE_DURATION": "6", "MYSQLSTS_LEASE_RENEW_DEADLINE": "4",
               "MYSQLSTS_LEASE_RENEW_INTERVAL": "1"}


@pytest.fixture(scope="module")
def local(local_set_module: LocalSetFactory) -> LocalSet:
    return local_set_module(
        replicas=3, env={"MYSQLSTS_MAX_STALENESS_PRIMARY_DOWN": str(WINDOW), **SHORT_LEASE},
        setup_sql=["CREATE DATABASE IF NOT EXISTS app",
                   "CREATE TABLE IF NOT EXISTS app.items (id INT AUTO_INCREMENT PRIMARY KEY,"
                   " tag VARCHAR(32), n INT)"])


def get(local: LocalSet, ordinal: int, path: str) -> tuple[int, str]:
    http = local.pod(ordinal)["http"]
    url = f"http://{http['host']}:{http['port']}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def status(local: LocalSet, ordinal: int) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(get(local, ordinal, "/status")[1])
    return loaded


def metric(local: LocalSet, ordinal: int, name: str) -> float | None:
    for line in get(local, ordinal, "/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def insert(local: LocalSet, tag: str, count: int = 50) -> None:
    local.sql(0, *(f"INSERT INTO app.items (tag, n) VALUES ('{tag}', {n})" for n in range(count)))


def wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.5)


def test_a_healthy_set_has_no_errant_transactions(local: LocalSet) -> None:
    insert(local, "healthy")
    assert_converged(local, [0, 1, 2])
    for ordinal in (1, 2):
        # A heartbeat carrying the primary's GTIDs has reached the replica.
        wait("a heartbeat with GTIDs", lambda o=ordinal: status(local, o)["replication"]
             is not None and metric(local, o, "mysqlsts_replication_errant_transactions")
             is not None, 10)
        body = status(local, ordinal)
        assert body["replication"]["errant_transactions"] == []
        assert body["replication"]["source_reachable"] is True
        assert metric(local, ordinal, "mysqlsts_replication_errant_transactions") == 0
        assert metric(local, ordinal, "mysqlsts_replication_source_reachable") == 1
        assert get(local, ordinal, "/readyz")[0] == 200


def last_heartbeat(local: LocalSet, ordinal: int) -> float:
    applied = status(local, ordinal)["heartbeat"]["last_applied"]
    return datetime.fromisoformat(applied).timestamp()


def test_replicas_serve_reads_while_the_primary_is_down_then_follow_the_window(
    local: LocalSet,
) -> None:
    insert(local, "before-outage")
    assert_converged(local, [0, 1, 2])
    expected = checksums(local, 1)
    local.run("stop", "--dir", str(local.directory), "0", timeout=400)
    lost_at = min(last_heartbeat(local, 1), last_heartbeat(local, 2))
    # Within the window: both replicas ready, answering reads, saying the source is gone.
    seen_unreachable = set()
    while time.time() < lost_at + WINDOW - 4:
        for ordinal in (1, 2):
            code, reason = get(local, ordinal, "/readyz")
            assert code == 200, f"mysql-{ordinal} unready within the window: {reason}"
            assert checksums(local, ordinal) == expected
            if "source unreachable" in reason:
                seen_unreachable.add(ordinal)
        time.sleep(1)
    assert seen_unreachable == {1, 2}
    for ordinal in (1, 2):
        assert status(local, ordinal)["replication"]["source_reachable"] is False
        assert metric(local, ordinal, "mysqlsts_replication_source_reachable") == 0
        # Lag keeps growing honestly.
        lag = metric(local, ordinal, "mysqlsts_replication_lag_seconds")
        assert lag is not None and lag > WINDOW - 6
    # Past the window: unready, and the reason says why.
    for ordinal in (1, 2):
        wait(f"mysql-{ordinal} unready past the window",
             lambda o=ordinal: get(local, o, "/readyz")[0] == 503, 15)
        code, reason = get(local, ordinal, "/readyz")
        assert "source unreachable" in reason, reason
        assert f"max staleness while the primary is down {WINDOW:g}s" in reason, reason
        assert time.time() >= lost_at + WINDOW
    done = local.run("start", "--dir", str(local.directory), "0", timeout=700)
    assert "mysql-0 is back and ready" in done.stderr
    insert(local, "after-outage")
    assert_converged(local, [0, 1, 2])
    for ordinal in (1, 2):
        wait(f"mysql-{ordinal} ready again", lambda o=ordinal: get(local, o, "/readyz")[0] == 200,
             30)
        assert metric(local, ordinal, "mysqlsts_replication_source_reachable") == 1


def test_replicas_stay_ready_while_the_primary_is_sigkilled_repeatedly(local: LocalSet) -> None:
    insert(local, "before-kills")
    assert_converged(local, [0, 1, 2])
    for round_ in range(3):
        before = local.pod(0)["pid"]
        local.kill(0)
        # Until the supervisor has re-created mysql-0 and it serves again, the replicas serve.
        deadline = time.monotonic() + 180
        while not (local.pod(0)["ready"] and local.pod(0)["pid"] not in (None, before)):
            assert time.monotonic() < deadline, f"mysql-0 not back (round {round_})"
            for ordinal in (1, 2):
                code, reason = get(local, ordinal, "/readyz")
                assert code == 200, f"round {round_}: mysql-{ordinal} unready: {reason}"
                assert local.value(ordinal, "SELECT COUNT(*) FROM app.items") > 0
            time.sleep(0.5)
        insert(local, f"after-kill-{round_}", 10)
    assert_converged(local, [0, 1, 2])
    for ordinal in (1, 2):
        wait(f"mysql-{ordinal} reconnected", lambda o=ordinal: metric(
            local, o, "mysqlsts_replication_source_reachable") == 1, 30)


def test_a_write_on_a_replica_is_an_errant_transaction(local: LocalSet) -> None:
    assert get(local, 2, "/readyz")[0] == 200
    local.sql(2, "SET GLOBAL read_only = OFF", "SET SESSION sql_log_bin = 1",
              "CREATE TABLE app.local_only (id INT PRIMARY KEY)",
              "INSERT INTO app.local_only VALUES (1)", "SET GLOBAL read_only = ON")
    written_at = time.monotonic()
    wait("errant transactions detected", lambda: get(local, 2, "/readyz")[0] == 503, 10)
    assert time.monotonic() - written_at < 5
    code, reason = get(local, 2, "/readyz")
    own = local.value(2, "SELECT @@server_id")
    assert reason.startswith("errant transactions the primary never had: 0-"), reason
    errant = status(local, 2)["replication"]["errant_transactions"]
    assert len(errant) == 1 and errant[0].split("-")[1] == str(own), errant
    assert errant[0] in reason
    assert metric(local, 2, "mysqlsts_replication_errant_transactions") == 1
    # Its neighbour stays clean.
    assert status(local, 1)["replication"]["errant_transactions"] == []
    assert get(local, 1, "/readyz")[0] == 200
