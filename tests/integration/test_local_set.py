"""A real local replica set (`mysqlsts local`): real mariadbd pods on loopback, each run through
init → clone → server → sidecar exactly as in Kubernetes.

One set is shared by the tests of this module, which build on each other in file order
(3 pods → kill → a crash loop → the primary stopped and started → 4 pods → scale down and up
→ 5 pods with a clone killed mid-stream).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from mysqlsts.adapters.process import process_alive
from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration

TABLES = ("app.items",)


@pytest.fixture(scope="module")
def local(local_set_module: LocalSetFactory) -> LocalSet:
    return local_set_module(replicas=3)


def checksums(local: LocalSet, ordinal: int, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    rows = local.sql(ordinal, f"CHECKSUM TABLE {', '.join(tables)}")
    return {str(name): int(value) for name, value in rows}


def assert_converged(local: LocalSet, ordinals: list[int],
                     tables: tuple[str, ...] = TABLES) -> None:
    local.wait_caught_up([o for o in ordinals if o != 0])
    expected = checksums(local, 0, tables)
    assert all(expected.values()), f"empty tables on the primary: {expected}"
    for ordinal in ordinals:
        assert checksums(local, ordinal, tables) == expected, f"mysql-{ordinal} differs"


def insert_items(local: LocalSet, count: int, tag: str) -> None:
    local.sql(0, f"INSERT INTO app.items (tag, n) SELECT '{tag}', seq FROM app.seq_1_to_{count}")


def clone_record(local: LocalSet, ordinal: int) -> tuple[float, dict[str, object]]:
    path = local.data_dir(ordinal) / "mysqlsts-clone.json"
    return path.stat().st_mtime, json.loads(path.read_text())


def test_three_replicas_replicate_writes(local: LocalSet) -> None:
    pods = local.status()["pods"]
    assert [(p["name"], p["role"], p["ready"], p["server_id"]) for p in pods] == [
        ("mysql-0", "primary", True, 100),
        ("mysql-1", "replica", True, 101),
        ("mysql-2", "replica", True, 102),
    ]
    local.sql(0, "CREATE DATABASE app",
              "CREATE TABLE app.items (id INT AUTO_INCREMENT PRIMARY KEY, "
              "tag VARCHAR(32) NOT NULL, n INT NOT NULL)")
    insert_items(local, 500, "first")
    assert_converged(local, [0, 1, 2])
    for ordinal in (1, 2):
        assert local.value(ordinal, "SELECT COUNT(*) FROM app.items WHERE tag = 'first'") == 500
        assert local.value(ordinal, "SELECT @@read_only") == 1
    # mysql-2 cloned from mysql-1, its previous ordinal.
    assert clone_record(local, 2)[1]["donor"]["ordinal"] == 1  # type: ignore[index]


def test_killed_pod_is_recreated_with_its_data_and_no_new_clone(local: LocalSet) -> None:
    before_pid = local.pod(1)["pid"]
    record_before = clone_record(local, 1)
    clone_runs = len(local.runs(1, "clone"))
    local.kill(1)
    deadline = time.monotonic() + 120
    while True:
        pod = local.pod(1)
        if pod["ready"] and pod["pid"] not in (None, before_pid):
            break
        assert time.monotonic() < deadline, f"mysql-1 not re-created: {pod}"
        time.sleep(0.5)
    assert pod["restarts"] >= 1
    runs = local.runs(1, "clone")
    assert len(runs) == clone_runs + 1
    assert "clone skipped" in runs[-1] and "already holds a server's data" in runs[-1]
    assert clone_record(local, 1) == record_before
    insert_items(local, 100, "after-kill")
    assert_converged(local, [0, 1, 2])


def test_a_pod_that_keeps_ending_is_backed_off_and_status_says_so(local: LocalSet) -> None:
    restarts_before = local.pod(2)["restarts"]
    for kills in range(5):  # the 5th end holds the next pod back 8 s (0, 1, 2, 4, 8)
        deadline = time.monotonic() + 120
        while local.pod(2)["pid"] is None:
            assert time.monotonic() < deadline, f"mysql-2 not re-created after {kills} kills"
            time.sleep(0.2)
        local.kill(2)
    held = []
    deadline = time.monotonic() + 120
    while (pod := local.pod(2))["pid"] is None:
        held.append((pod["phase"], pod["reason"]))
        assert time.monotonic() < deadline, f"mysql-2 not re-created after 5 kills: {held[-1]}"
        time.sleep(0.2)
    assert any(phase == "back-off" for phase, _ in held), held
    assert any(reason and reason.startswith("back-off ") and reason.endswith(
        "s restarting the pod after: pod process ended unexpectedly (signal 9)")
        for _, reason in held), held
    local.wait_ready(3, timeout=180)
    assert local.pod(2)["restarts"] == restarts_before + 5
    insert_items(local, 10, "after-back-off")
    assert_converged(local, [0, 1, 2])


def test_a_damaged_spec_is_one_line_and_the_supervisor_keeps_the_set(local: LocalSet) -> None:
    spec = local.directory / "spec.json"
    good = spec.read_bytes()
    supervisor = int((local.directory / "supervisor.pid").read_text())
    log = local.directory / "supervisor.log"
    logged = len(log.read_bytes())
    spec.write_bytes(good.replace(b'"replicas": 3', b'"replicas": 3\xff'))
    try:
        done = local.run("status", "--dir", str(local.directory), check=False, timeout=60)
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        assert f"{spec} is not UTF-8 text" in line
        deadline = time.monotonic() + 30
        while b"keeping replicas=3" not in log.read_bytes()[logged:]:
            assert time.monotonic() < deadline, "the supervisor never noticed the damaged spec"
            time.sleep(0.2)
        time.sleep(2)  # a few more cycles on the damaged spec
        assert process_alive(supervisor, str(local.directory)), "the supervisor died"
    finally:
        spec.write_bytes(good)
    assert len(local.wait_ready(3, timeout=60)) == 3
    assert local.status()["supervisor"]["pid"] == supervisor


def test_stop_keeps_the_primary_down_and_start_brings_it_back(local: LocalSet) -> None:
    insert_items(local, 100, "before-stop")
    assert_converged(local, [0, 1, 2])
    before = checksums(local, 0)
    done = local.run("stop", "--dir", str(local.directory), "0", timeout=400)
    assert "mysql-0 is stopped and kept down" in done.stderr
    pod = local.pod(0)
    assert (pod["phase"], pod["alive"], pod["ready"], pod["pid"]) == ("stopped", False, False,
                                                                      None)
    assert "`local start` brings it back" in pod["reason"]
    assert "mysql-0  primary  stopped" in local.run("status", "--dir", str(local.directory)).stdout
    # Kept down: not re-created over many supervisor cycles, nothing of it runs.
    watched_until = time.monotonic() + 8
    while time.monotonic() < watched_until:
        assert local.pod(0)["pid"] is None, "the supervisor re-created a pod kept down"
        time.sleep(0.5)
    assert not any("--ordinal 0" in cmd or "mysql-0/" in cmd for _, cmd in local.processes())
    # The replicas run on and still serve what they had.
    for ordinal in (1, 2):
        assert local.pod(ordinal)["alive"]
        assert checksums(local, ordinal) == before
    done = local.run("start", "--dir", str(local.directory), "0", timeout=700)
    assert "mysql-0 is back and ready" in done.stderr
    pod = local.pod(0)
    assert (pod["phase"], pod["ready"], pod["kept_down"]) == ("running", True, False)
    assert checksums(local, 0) == before  # its data dir was kept
    assert "bootstrap: already initialised" in local.runs(0, "bootstrap")[-1]
    insert_items(local, 100, "after-start")
    assert_converged(local, [0, 1, 2])


def test_wrong_token_is_refused_and_nothing_is_written(local: LocalSet, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token\n")
    wrong.chmod(0o600)
    data = tmp_path / "data"
    data.mkdir()
    spec = json.loads((local.directory / "spec.json").read_text())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MYSQLSTS_")},
        "MYSQLSTS_POD_NAME": "mysql-3",  # receives from mysql-2, a running pod
        "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1",
        "MYSQLSTS_PEER_PORT_STRIDE": str(spec["port_stride"]),
        "MYSQLSTS_MYSQL_PORT": str(local.base_port),
        "MYSQLSTS_CLONE_PORT": str(local.base_port + 1),
        "MYSQLSTS_HTTP_PORT": str(local.base_port + 2),
        "MYSQLSTS_SRV_NAME": "",
        "MYSQLSTS_DATA_DIR": str(data),
        "MYSQLSTS_CLONE_TOKEN_FILE": str(wrong),
        "MYSQLSTS_CLONE_DEADLINE": "20",
    }
    done = subprocess.run([*mysqlsts_command(), "clone"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "clone token" in done.stderr.strip().splitlines()[-1]
    assert list(data.iterdir()) == []
    assert "not-the-token" not in done.stderr
    # The donor is unharmed and still serves its own set.
    assert local.pod(2)["ready"]


def test_scale_up_clones_from_the_previous_ordinal_and_converges(local: LocalSet) -> None:
    insert_items(local, 1000, "before-scale")
    local.scale(4)
    pods = local.wait_ready(4, timeout=60)
    assert pods[3]["role"] == "replica" and pods[3]["server_id"] == 103
    _, record = clone_record(local, 3)
    assert record["donor"]["ordinal"] == 2  # type: ignore[index]
    insert_items(local, 200, "after-scale")
    assert_converged(local, [0, 1, 2, 3])


def test_scale_down_keeps_the_data_dir_and_scale_up_reuses_it(local: LocalSet) -> None:
    record = clone_record(local, 3)
    clone_runs = len(local.runs(3, "clone"))
    local.scale(3)
    assert [p["name"] for p in local.status()["pods"]] == ["mysql-0", "mysql-1", "mysql-2"]
    assert not any("mysql-3" in cmd for _, cmd in local.processes()), "mysql-3 still runs"
    assert (local.data_dir(3) / "mysql").is_dir()
    insert_items(local, 300, "while-scaled-down")
    local.scale(4)
    runs = local.runs(3, "clone")
    assert len(runs) == clone_runs + 1 and "clone skipped" in runs[-1]
    assert clone_record(local, 3) == record
    assert_converged(local, [0, 1, 2, 3])
    assert local.value(3, "SELECT COUNT(*) FROM app.items WHERE tag = 'while-scaled-down'") == 300


def staged_bytes(data_dir: Path) -> int:
    staging = data_dir / ".mysqlsts-staging"
    total = 0
    for root, _, files in os.walk(staging):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def test_clone_killed_mid_stream_is_retried_and_converges(local: LocalSet) -> None:
    # ~270 MB of incompressible rows, by doubling: big enough for a clone of several seconds.
    local.sql(0, "CREATE TABLE app.big (id INT AUTO_INCREMENT PRIMARY KEY, "
                 "payload VARBINARY(1024) NOT NULL)",
              "INSERT INTO app.big (payload) SELECT RANDOM_BYTES(1000) FROM app.seq_1_to_1024")
    for _ in range(8):  # 1024 → 262144 rows
        local.sql(0, "INSERT INTO app.big (payload) SELECT RANDOM_BYTES(1000) FROM app.big")
    assert local.value(0, "SELECT COUNT(*) FROM app.big") == 262144
    local.wait_caught_up([1, 2, 3], timeout=600)
    local.wait_ready(4, timeout=120)

    clone_runs = len(local.runs(4, "clone"))
    scaling = local.scale_in_background(5)
    try:
        deadline = time.monotonic() + 180
        while staged_bytes(local.data_dir(4)) < 30 * 2**20:
            assert scaling.poll() is None, f"scale ended before the kill: {scaling.stderr}"
            assert time.monotonic() < deadline, "the clone of mysql-4 never got going"
            time.sleep(0.05)
        local.kill(4)
        killed_at = time.monotonic()
        out, err = scaling.communicate(timeout=900)
    finally:
        if scaling.poll() is None:
            scaling.kill()
            scaling.wait()
    assert scaling.returncode == 0, f"scale to 5 failed:\n{err}\n{local.diagnostics()}"
    runs = local.runs(4, "clone")[clone_runs:]
    assert len(runs) == 2, "expected one killed clone and one retried clone"
    assert "clone complete" not in runs[0]
    assert "interrupted clone; wiping it" in runs[1] and "clone complete" in runs[1]
    _, record = clone_record(local, 4)
    assert record["donor"]["ordinal"] == 3  # type: ignore[index]
    assert record["bytes"] > 250 * 2**20  # type: ignore[operator]
    assert time.monotonic() - killed_at < 900
    insert_items(local, 50, "after-clone-retry")
    assert_converged(local, [0, 1, 2, 3, 4], tables=("app.items", "app.big"))
