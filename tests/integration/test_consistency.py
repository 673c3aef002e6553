"""The consistency check on a real local set (issue 13, item 14): relay-log recovery as shipped,
a pass that finds nothing on a healthy set (also under concurrent writes), and replicas that
silently lost or changed rows named by `local checksum`, /metrics and /status.

One set of 3 pods; the tests build on each other in file order (the last leaves two replicas
diverged).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pymysql
import pytest

from mysqlsts.local.plan import pod_env
from mysqlsts.local.spec import SetLayout, SetSpec
from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration

LINE = re.compile(r"^(mysql-\d+): (\d+) chunks checked, (\d+) diverged(?:: (.*))?$")
ROWS = 6000


@pytest.fixture(scope="module")
def local(local_set_module: LocalSetFactory) -> LocalSet:
    started = local_set_module(replicas=3, setup_sql=[
            "CREATE DATABASE app",
            "CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(32), "
            "n INT, price DECIMAL(10,2), at TIMESTAMP(3) NULL)",
            # No primary key: checked as one chunk.
            "CREATE TABLE app.events (happened DATETIME, what TEXT, weight DOUBLE)",
            # A composite key whose first column repeats; columns of two collations, and of
            # types that are not strings (all enter the checksum as binary strings).
            "CREATE TABLE app.pairs (tenant INT, id INT, v VARCHAR(20) COLLATE utf8mb4_bin, "
            "w VARCHAR(20) COLLATE utf8mb4_unicode_ci, blob_col VARBINARY(16), "
            "doc JSON, ip INET6, u UUID, flags SET('a', 'b'), bits BIT(5), pt POINT, "
            "PRIMARY KEY (tenant, id))",
            f"INSERT INTO app.items (tag, n, price, at) SELECT CONCAT('t', seq), seq, seq / 7, "
            f"FROM_UNIXTIME(1700000000 + seq) FROM app.seq_1_to_{ROWS}",
            "INSERT INTO app.events VALUES (NOW(), 'start', 0.5), (NOW(), NULL, NULL), "
            "(NULL, 'x', 1e-300)",
            f"INSERT INTO app.pairs SELECT seq % 4, seq, CONCAT('v', seq), CONCAT('W', seq), "
            "UNHEX(MD5(seq)), JSON_OBJECT('n', seq), CONCAT('::ffff:10.0.0.', seq % 250), "
            "UUID(), IF(seq % 2, 'a', 'a,b'), seq % 32, POINT(seq, seq / 3) "
            f"FROM app.seq_1_to_{ROWS}",
    ])
    started.wait_caught_up([1, 2])
    return started


def checksum(local: LocalSet, *args: str, timeout: float = 300,
             ) -> tuple[int, dict[str, tuple[int, int, str]], str]:
    """`local checksum`: exit code, {pod: (checked, diverged, tables)}, stderr."""
    done = local.run("checksum", "--dir", str(local.directory), "--timeout", str(timeout),
                     *args, check=False, timeout=timeout + 120)
    pods = {}
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        assert match, f"unexpected line {line!r} in:\n{done.stdout}\n{done.stderr}"
        pods[match[1]] = (int(match[2]), int(match[3]), match[4] or "")
    return done.returncode, pods, done.stderr


def get(local: LocalSet, ordinal: int, path: str) -> str:
    http = local.pod(ordinal)["http"]
    try:
        with urllib.request.urlopen(f"http://{http['host']}:{http['port']}{path}",
                                    timeout=5) as answer:
            return str(answer.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())


def metric(local: LocalSet, ordinal: int, name: str) -> float | None:
    for line in get(local, ordinal, "/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def consistency_status(local: LocalSet, ordinal: int) -> dict[str, Any] | None:
    section: dict[str, Any] | None = json.loads(get(local, ordinal, "/status"))["consistency"]
    return section


def wait_for_sidecar(local: LocalSet, ordinal: int, checked: int, diverged: int) -> None:
    """The pod's sidecar re-reads its checksum table when the pass record changes (every few
    seconds): its metrics and /status follow the pass."""
    deadline = time.monotonic() + 30
    while True:
        seen = (metric(local, ordinal, "mysqlsts_consistency_checked_chunks"),
                metric(local, ordinal, "mysqlsts_consistency_diverged_chunks"))
        if seen == (checked, diverged):
            return
        assert time.monotonic() < deadline, (
            f"mysql-{ordinal}'s metrics say {seen}, not ({checked}, {diverged})")
        time.sleep(0.5)


def test_relay_log_recovery_and_a_crash_safe_gtid_position_on_a_real_replica(
    local: LocalSet,
) -> None:
    for ordinal in (1, 2):
        assert local.value(ordinal, "SELECT @@relay_log_recovery") == 1
        status = local.connect(ordinal)
        try:
            with status.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                row = cursor.fetchone()
        finally:
            status.close()
        assert row is not None and row["Using_Gtid"] == "Slave_Pos"
        # The applied position commits with the transactions it records: crash-safe only in
        # a transactional engine.
        assert local.value(ordinal, "SELECT ENGINE FROM information_schema.TABLES WHERE "
                                    "TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'gtid_slave_pos'"
                           ) == "InnoDB"


def test_a_healthy_set_has_no_diverged_chunk(local: LocalSet) -> None:
    code, pods, stderr = checksum(local)
    assert code == 0, stderr
    assert set(pods) == {"mysql-0", "mysql-1", "mysql-2"}
    checked = pods["mysql-0"][0]
    # items: 6 chunks of 1000 ids; pairs: its key's first column (tenant 0-3, 1500 rows each)
    # makes an empty first chunk (tenant < 0), then one per tenant; events (no key): 1; the
    # tool's own tables: none.
    assert checked == 6 + 5 + 1, pods
    assert all(result == (checked, 0, "") for result in pods.values()), pods
    assert "unsafe" not in stderr
    for ordinal in (0, 1, 2):
        wait_for_sidecar(local, ordinal, checked, 0)
        assert metric(local, ordinal, "mysqlsts_consistency_last_pass_timestamp_seconds")
        section = consistency_status(local, ordinal)
        assert section is not None
        assert (section["checked_chunks"], section["diverged_chunks"]) == (checked, 0)
        assert section["diverged_tables"] == []


def test_the_pass_is_written_as_statements_replicas_re_execute(local: LocalSet) -> None:
    binlogs = [str(row[0]) for row in local.sql(0, "SHOW BINARY LOGS")]
    statements = [str(row[5]) for name in binlogs
                  for row in local.sql(0, f"SHOW BINLOG EVENTS IN '{name}'")
                  if row[2] == "Query"]
    assert any(s.startswith("INSERT INTO `mysqlsts`.`checksums`") and "FROM `app`.`pairs`" in s
               for s in statements)
    # mysql-1 computed its own rows: its checksums row for a chunk carries both sides.
    rows = local.sql(1, "SELECT this_cnt, master_cnt FROM mysqlsts.checksums "
                        "WHERE db = 'app' AND tbl = 'events'")
    assert rows == [(3, 3)]


def test_the_cluster_command_runs_with_the_sidecars_environment(local: LocalSet) -> None:
    layout = SetLayout(local.directory)
    spec = SetSpec(replicas=3, base_port=local.base_port)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MYSQLSTS_")},
           **pod_env(spec, layout, 0), "MYSQLSTS_REPLICAS": "3"}
    done = subprocess.run([*mysqlsts_command(), "checksum"], env=env, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    assert [LINE.match(line)[1] for line in done.stdout.splitlines()  # type: ignore[index]
            ] == ["mysql-0", "mysql-1", "mysql-2"]
    replica = subprocess.run([*mysqlsts_command(), "checksum"],
                             env={**env, **pod_env(spec, layout, 1)}, capture_output=True,
                             text=True, timeout=60)
    assert replica.returncode == 2
    assert "mysql-1 is a replica" in replica.stderr


def test_a_pass_under_concurrent_writes_finds_no_divergence(local: LocalSet) -> None:
    stop = threading.Event()
    written = [0]
    errors: list[str] = []

    def writer() -> None:
        rng = random.Random(13)
        conn = local.connect(0)
        try:
            with conn.cursor() as cursor:
                deadline = time.monotonic() + 240
                while not stop.is_set() and time.monotonic() < deadline:
                    n = rng.randint(1, ROWS)
                    cursor.execute(rng.choice([
                        f"UPDATE app.items SET n = n + 1, at = NOW(3) WHERE id = {n}",
                        f"INSERT INTO app.items (tag, n) VALUES ('w', {n})",
                        f"DELETE FROM app.items WHERE id = {ROWS + n}",
                        f"UPDATE app.pairs SET v = CONCAT(v, 'x') WHERE tenant = {n % 4} "
                        f"AND id = {n}",
                        f"INSERT INTO app.events VALUES (NOW(), 'w{n}', {n})",
                    ]))
                    written[0] += 1
        except pymysql.MySQLError as exc:
            errors.append(str(exc))
        finally:
            conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        before = written[0]
        # Small chunks: some 130 of them, each followed by a pause, with writes in between.
        code, pods, stderr = checksum(local, "--chunk-rows", "50")
        during = written[0] - before
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    assert during > 100, f"the writer did not run alongside the pass: {stderr}"
    assert code == 0, f"{pods}\n{stderr}"
    assert all(diverged == 0 for _, diverged, _ in pods.values()), pods
    assert len({checked for checked, _, _ in pods.values()}) == 1, pods


def test_replicas_that_silently_lost_or_changed_rows_are_named(local: LocalSet) -> None:
    local.wait_caught_up([1, 2])
    # What a skipped transaction leaves: a row gone on mysql-1, a value changed on mysql-2,
    # neither through the binary log (no GTID: nothing else can notice).
    local.sql(1, "SET SESSION sql_log_bin = 0", "DELETE FROM app.items WHERE id = 4321")
    local.sql(2, "SET SESSION sql_log_bin = 0",
              "UPDATE app.pairs SET w = 'changed' WHERE tenant = 1 AND id = 1001")
    code, pods, stderr = checksum(local)
    assert code == 1, stderr
    checked = pods["mysql-0"][0]
    assert pods["mysql-0"] == (checked, 0, "")
    assert pods["mysql-1"] == (checked, 1, "app.items")
    assert pods["mysql-2"] == (checked, 1, "app.pairs")
    wait_for_sidecar(local, 0, checked, 0)
    for ordinal, table in ((1, "app.items"), (2, "app.pairs")):
        wait_for_sidecar(local, ordinal, checked, 1)
        section = consistency_status(local, ordinal)
        assert section is not None and section["diverged_tables"] == [table]
        db, name = table.split(".")
        assert [(c["db"], c["table"]) for c in section["first_diverged"]] == [(db, name)]
        assert "boundary" not in json.dumps(section)
    # The replicas stay ready: their replication is fine, only their data is not.
    assert all(pod["ready"] for pod in local.status()["pods"])
