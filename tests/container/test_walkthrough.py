"""The StatefulSet walkthrough users follow, with containers standing in for pods.

The tests share one replica set and run in the walkthrough's order, but each brings the set to
the size it needs first, so any one of them also runs alone.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from container_pods import Cluster, Pod

CATCH_UP = 60.0


@pytest.fixture(scope="module")
def cluster(make_cluster: Callable[..., Cluster]) -> Iterator[Cluster]:
    yield make_cluster("walk")


def write_rows(cluster: Cluster, count: int = 3) -> list[str]:
    """Insert fresh rows through `mysql-0.mysql`, as a client in the cluster would."""
    notes = [secrets.token_hex(6) for _ in range(count)]
    cluster.sql_via("mysql-0.mysql", [
        "CREATE DATABASE IF NOT EXISTS walk",
        "CREATE TABLE IF NOT EXISTS walk.notes "
        "(id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(32) NOT NULL)",
        *[f"INSERT INTO walk.notes (note) VALUES ('{note}')" for note in notes],
    ])
    return notes


def notes_on(pod: Pod) -> set[str]:
    try:
        return {row[0] for row in pod.query("SELECT note FROM walk.notes")}
    except Exception:  # the schema has not replicated yet
        return set()


def wait_for_notes(pod: Pod, notes: list[str], timeout: float = CATCH_UP) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(notes) <= notes_on(pod):
            return
        time.sleep(0.5)
    missing = set(notes) - notes_on(pod)
    raise AssertionError(
        f"{pod.name} lacks {len(missing)} of {len(notes)} rows after {timeout:.0f}s\n"
        f"--- sidecar:\n{pod.logs('sidecar')}"
    )


def donor_of(record: dict[str, Any] | None) -> int:
    """The ordinal that donated the clone recorded in `mysqlsts-clone.json`."""
    assert record is not None, "no clone record in the data dir"
    return int(record["donor"]["ordinal"])


def test_two_pods_replicate_rows_written_through_mysql_0(cluster: Cluster) -> None:
    cluster.scale(2)
    notes = write_rows(cluster)
    wait_for_notes(cluster.pod(1), notes)
    # The replica runs its role's config: read-only to clients, its own server_id.
    assert cluster.pod(1).query("SELECT @@read_only, @@server_id") == [(1, 101)]
    assert cluster.pod(0).query("SELECT @@read_only, @@server_id") == [(0, 100)]


def _signal_mariadbd(server: Any, name: str) -> None:
    """Send SIG`name` to mariadbd itself, found by name in /proc (the image has no pkill)."""
    script = ('for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = mariadbd ] && '
              f'kill -{name} "${{p#/proc/}}" && exit 0; done; exit 1')
    code, output = server.exec_run(["sh", "-c", script])
    assert code == 0, f"no mariadbd to signal in the server container: {output!r}"


@pytest.mark.parametrize("how", ["sigstop", "freeze", "stop"])
def test_server_frozen_or_stopped_makes_the_sidecar_unready(cluster: Cluster, how: str) -> None:
    cluster.scale(2)
    pod = cluster.pod(1)
    pod.wait_readyz(200)
    server = pod.containers["server"]
    if how == "sigstop":
        _signal_mariadbd(server, "STOP")  # PID 1 is `mysqlsts server`, its parent
    elif how == "freeze":
        server.pause()  # the cgroup freezer: every process of the container stops
    else:
        server.stop(timeout=30)
    try:
        body = pod.wait_readyz(503, timeout=30)
        assert body.strip(), "a 503 says why in one line"
        # A hung server never hangs the probe.
        started = time.monotonic()
        status, _ = pod.readyz()
        assert status == 503 and time.monotonic() - started < 2.0
    finally:
        if how == "sigstop":
            _signal_mariadbd(server, "CONT")
        elif how == "freeze":
            server.unpause()
        else:
            server.start()
    pod.wait_readyz(200, timeout=120)
    notes = write_rows(cluster)
    wait_for_notes(pod, notes)


def test_scale_to_three_clones_mysql_2_from_mysql_1(cluster: Cluster) -> None:
    cluster.scale(2)
    before = write_rows(cluster)
    wait_for_notes(cluster.pod(1), before)
    cluster.scale(3)
    third = cluster.pod(2)
    assert donor_of(third.clone_record()) == 1
    assert notes_on(third) >= set(before)
    after = write_rows(cluster)
    wait_for_notes(third, after)
    assert notes_on(third) == notes_on(cluster.pod(0))


def test_recreated_pod_keeps_its_data_without_a_second_clone(cluster: Cluster) -> None:
    cluster.scale(3)
    pod = cluster.pod(2)
    notes = write_rows(cluster)
    wait_for_notes(pod, notes)
    record, files = pod.data_stat("mysqlsts-clone.json"), pod.data_stat("ibdata1")
    assert record and files

    pod.remove()
    pod.up()
    pod.wait_readyz(200)
    assert pod.data_stat("mysqlsts-clone.json") == record, "the clone ran again"
    # The server writes ibdata1 in place (mtime moves); a clone would put a new file (inode).
    inode = (pod.data_stat("ibdata1") or "").split()[0]
    assert inode == files.split()[0], "the data files were replaced"
    wait_for_notes(pod, notes, timeout=5)
    later = write_rows(cluster)
    wait_for_notes(pod, later)


def test_scale_down_keeps_the_volume_and_scale_up_reuses_it(cluster: Cluster) -> None:
    cluster.scale(3)
    pod = cluster.pod(2)
    record = pod.data_stat("mysqlsts-clone.json")
    assert record

    cluster.scale(2)
    assert cluster.running() == [0, 1]
    assert cluster.engine.client.volumes.get(pod.data_volume)
    missed = write_rows(cluster)  # written while mysql-2 is away

    cluster.scale(3)
    assert pod.data_stat("mysqlsts-clone.json") == record, "scale-up cloned again"
    wait_for_notes(pod, missed)
