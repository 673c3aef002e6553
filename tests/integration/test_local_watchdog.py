"""The local set runs each server under `mysqlsts server`, as the mysql container does: a hung
sidecar (SIGSTOP: the pod process, like a kubelet, sees nothing wrong) stops being the
heartbeat, the watchdog stops mariadbd, and the pod is re-created and serves again."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mysqlsts.adapters.lease_store import FileLeaseStore
from mysqlsts.options import PrimaryLeaseOptions, WatchdogOptions
from tests.localset import LocalSetFactory, processes_mentioning

pytestmark = pytest.mark.integration


def _pod_processes(local_dir: str, pod: str) -> dict[str, int]:
    """The pod's sidecar and mariadbd, by name."""
    found = {}
    for pid, cmd in processes_mentioning(f"{local_dir}/pods/{pod}/"):
        if cmd.split()[-1] == "sidecar":
            found["sidecar"] = pid
        elif "mariadbd --defaults-file" in cmd or cmd.startswith("/usr/sbin/mariadbd"):
            found["mariadbd"] = pid
    return found


def test_a_hung_sidecar_gets_its_server_stopped_and_the_pod_recreated(
        local_set: LocalSetFactory) -> None:
    local = local_set(replicas=2)
    before = _pod_processes(str(local.directory), "mysql-0")
    assert set(before) == {"sidecar", "mariadbd"}, before
    heartbeat = local.pod_dir(0) / "run" / "watchdog-heartbeat"
    assert heartbeat.exists()
    # Its `mysqlsts server` states the bound it enforces beside the heartbeat, and the
    # primary's sidecar claims the renew deadline + that bound in the set's lease file.
    defaults = WatchdogOptions()
    assert heartbeat.with_name("watchdog-heartbeat.bound").read_text() == "13.5\n"
    record, _ = FileLeaseStore(local.directory / "primary-lease.json").read(1)
    assert record is not None
    assert record.self_fence == PrimaryLeaseOptions().lease_renew_deadline + defaults.stop_bound()
    pod_pid = local.pod(0)["pid"]
    os.kill(before["sidecar"], signal.SIGSTOP)
    stopped = time.monotonic()
    bound = WatchdogOptions().stop_bound() + 2.0  # + the sidecar's last round, and slack
    while _pod_processes(str(local.directory), "mysql-0").get("mariadbd") == before["mariadbd"]:
        assert time.monotonic() - stopped < bound, local.diagnostics()
        time.sleep(0.2)
    took = time.monotonic() - stopped
    assert took > WatchdogOptions().watchdog_timeout - 2.0  # the watchdog, not something else
    log = (local.pod_dir(0) / "logs" / "server.log").read_text()
    assert "watchdog stopping" in log and "has not changed for" in log
    # The pod process sees its server end, stops the frozen sidecar too, and is re-created.
    deadline = time.monotonic() + 180
    while not ((pod := local.pod(0))["ready"] and pod["pid"] not in (None, pod_pid)):
        assert time.monotonic() < deadline, f"mysql-0 not re-created: {pod}"
        time.sleep(0.5)
    assert pod["restarts"] >= 1
    ended = (local.directory / "supervisor.log").read_text()
    assert "pod ordinal=0 ended" in ended and "server exited with code 3: " in ended
    assert "watchdog stopping" in ended.split("server exited with code 3: ")[1].splitlines()[0]
    local.wait_ready(2, timeout=120)
    local.sql(0, "CREATE DATABASE IF NOT EXISTS after_watchdog")
