"""The primary lease on the real images: mysql-0 is writable only while its sidecar holds the
Lease `mysql-primary` in the API server (the stand-in of lease_api.py, reached on a network of
its own).

- The kubelet-dead case: `docker network disconnect` cuts mysql-0's pod off the API server
  while it still reaches mysql-1. No isolation fence fires (a peer answers), yet within the
  renew deadline no account, root included, commits a write: the sidecar shuts its server down.
  Back on the network and its server restarted (as the kubelet would), it is writable again
  once its sidecar holds the Lease.
- A SIGKILLed sidecar: nothing renews and nothing fences, but the server container's watchdog
  (`mysqlsts server`) stops mariadbd within its timeout and grace.

Each prints the measured seconds from the cut (or the kill) to the last accepted write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from container_pods import Cluster, Flavor, Pod
from lease_api import LeaseApi

DURATION, RENEW_DEADLINE, RENEW_INTERVAL = 6.0, 4.0, 1.0
WATCHDOG_TIMEOUT, WATCHDOG_GRACE = 6.0, 2.0
WATCHDOG_POLL = 0.5  # min(0.5, timeout / 10): WatchdogOptions.poll
# A SHUTDOWN or SIGTERM still has to close the sessions: what a stop may take beyond its
# deadline on this shared machine before the test calls it late.
SLACK = 2.0


@pytest.fixture(scope="module")
def cluster(make_cluster: Callable[..., Cluster], flavor: Flavor) -> Iterator[Cluster]:
    if flavor.name != "mariadb":
        pytest.skip("the official MySQL image runs no watchdog and the lease is MariaDB-tested")
    made = make_cluster("lease", env={
        "MYSQLSTS_LEASE_DURATION": str(DURATION),
        "MYSQLSTS_LEASE_RENEW_DEADLINE": str(RENEW_DEADLINE),
        "MYSQLSTS_LEASE_RENEW_INTERVAL": str(RENEW_INTERVAL),
        "MYSQLSTS_WATCHDOG_TIMEOUT": str(WATCHDOG_TIMEOUT),
        "MYSQLSTS_WATCHDOG_GRACE": str(WATCHDOG_GRACE),
    })
    made.scale(2)
    with made.pod(0).connect() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE IF NOT EXISTS fence")
        cursor.execute("CREATE TABLE IF NOT EXISTS fence.w (id INT AUTO_INCREMENT PRIMARY KEY)")
    yield made


class Writer:
    """Root commits a row every 20 ms on one session (reconnecting when it drops) and keeps
    the monotonic time of each acknowledged commit."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        self.port = pod.host_port(3306)
        self.acknowledged: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn: Any = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root",
                                           password=self.pod.cluster.secrets.root_password,
                                           connect_timeout=2, read_timeout=5, write_timeout=5,
                                           autocommit=True)
                with conn.cursor() as cursor:
                    cursor.execute("INSERT INTO fence.w () VALUES ()")
                self.acknowledged.append(time.monotonic())
            except (pymysql.MySQLError, OSError):
                conn = None
            time.sleep(0.02)

    def last_after(self, since: float, timeout: float) -> float:
        """Seconds from `since` to the last acknowledged commit, once writes stopped."""
        self._stop.set()
        self._thread.join(timeout)
        return max(self.acknowledged, default=since) - since


def _server_exits(pod: Pod, timeout: float) -> float:
    started = time.monotonic()
    server = pod.containers["server"]
    while time.monotonic() - started < timeout:
        server.reload()
        if server.status == "exited":
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"mysql-0's server still runs {timeout:.0f}s later:\n"
                         f"--- server:\n{pod.logs('server')}\n--- sidecar:\n{pod.logs('sidecar')}")


def _writable(pod: Pod, timeout: float) -> float:
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout:
        try:
            with pod.connect() as conn, conn.cursor() as cursor:
                cursor.execute("INSERT INTO fence.w () VALUES ()")
            return time.monotonic() - started
        except (pymysql.MySQLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise AssertionError(f"mysql-0 not writable within {timeout:.0f}s ({last}):\n"
                         f"--- sidecar:\n{pod.logs('sidecar')}")


def _reaches(pod: Pod, host: str, port: int) -> bool:
    """Whether a TCP connection from inside the pod reaches host:port."""
    script = ("import socket\n"
              f"socket.create_connection(({host!r}, {port}), timeout=3).close()\n")
    code, _ = pod.containers["sidecar"].exec_run(["python3", "-c", script])
    return code == 0


def _holder(api: LeaseApi, cluster: Cluster) -> tuple[str, str]:
    lease = api.lease(cluster.prefix)
    return (lease["spec"].get("holderIdentity", ""),
            lease["metadata"].get("annotations", {}).get("mysqlsts.io/self-fence-seconds", ""))


def test_a_primary_cut_off_from_the_api_stops_taking_writes_within_the_renew_deadline(
    cluster: Cluster, lease_api: LeaseApi,
) -> None:
    pod = cluster.pod(0)
    _writable(pod, 60)
    holder, self_fence = _holder(lease_api, cluster)
    assert holder == f"mysql-0/{pod.uid}"
    # What the controller waits for: the renew deadline, then the watchdog's stop.
    assert float(self_fence) == RENEW_DEADLINE + WATCHDOG_POLL + WATCHDOG_TIMEOUT + WATCHDOG_GRACE

    writer = Writer(pod)
    time.sleep(1.0)
    cut = time.monotonic()
    lease_api.cut(pod.containers["pause"])
    # The pod network still works: the isolation fence has a peer and never fires.
    assert _reaches(pod, "mysql-1.mysql", 3306)
    _server_exits(pod, RENEW_DEADLINE + 20)
    last = writer.last_after(cut, 10)
    print(f"\nlease cut -> last accepted write: {last:.2f}s (renew deadline "
          f"{RENEW_DEADLINE:g}s, {len(writer.acknowledged)} writes acknowledged)")
    assert writer.acknowledged and writer.acknowledged[0] < cut  # it did write before
    assert last <= RENEW_DEADLINE + SLACK
    assert "primary lease fence" in pod.logs("sidecar")

    # The route back; the kubelet restarts the exited server container. It starts read-only
    # and turns writable only once its sidecar holds the Lease again.
    lease_api.join(pod.containers["pause"])
    pod.containers["server"].start()
    print(f"writable again {_writable(pod, 90):.1f}s after the server's restart")
    assert _holder(lease_api, cluster)[0] == f"mysql-0/{pod.uid}"


def test_a_killed_sidecar_leaves_no_writable_server(
    cluster: Cluster, lease_api: LeaseApi,
) -> None:
    pod = cluster.pod(0)
    _writable(pod, 60)
    writer = Writer(pod)
    time.sleep(1.0)
    killed = time.monotonic()
    pod.containers["sidecar"].kill()  # SIGKILL: nothing renews, nothing fences
    bound = WATCHDOG_POLL + WATCHDOG_TIMEOUT + WATCHDOG_GRACE
    _server_exits(pod, bound + 20)
    last = writer.last_after(killed, 10)
    print(f"\nsidecar SIGKILL -> last accepted write: {last:.2f}s (watchdog bound {bound:g}s)")
    assert writer.acknowledged and writer.acknowledged[0] < killed
    assert last <= bound + SLACK
    assert "watchdog" in pod.logs("server")

    # The kubelet restarts both; the same pod (uid) renews its own Lease at once.
    pod.containers["server"].start()
    pod.containers["sidecar"].start()
    print(f"writable again {_writable(pod, 90):.1f}s after the restarts")
