"""`mysqlsts sidecar` as a process (env configuration, logs, SIGTERM), and pt-heartbeat
reading the rows the sidecar writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mysqlsts.adapters.lease_store import FileLeaseStore
from tests.integration.sidecar_servers import Harness, http_get, wait_for

pytestmark = pytest.mark.integration


def test_sigterm_exits_0_within_seconds_and_logs_changes_once(harness: Harness) -> None:
    base = harness.ports.block(3)
    primary = harness.server("p", 100, port=base)
    secrets = harness.secrets.files()
    env = {
        **os.environ,
        "POD_NAME": "mysql-0",
        "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1",
        "MYSQLSTS_MYSQL_PORT": str(base),
        "MYSQLSTS_CLONE_PORT": str(base + 1),
        "MYSQLSTS_HTTP_PORT": str(base + 2),
        "MYSQLSTS_LISTEN_ADDRESS": "127.0.0.1",
        "MYSQLSTS_DATA_DIR": str(primary.spec.data_dir),
        "MYSQLSTS_ROOT_PASSWORD_FILE": str(secrets.root_password),
        "MYSQLSTS_REPLICATION_PASSWORD_FILE": str(secrets.replication_password),
        "MYSQLSTS_BACKUP_PASSWORD_FILE": str(secrets.backup_password),
        "MYSQLSTS_CLONE_TOKEN_FILE": str(secrets.clone_token),
        # The most talkative level: not even debug lines may carry a secret.
        "MYSQLSTS_LOG_LEVEL": "debug",
        "MYSQLSTS_PRIMARY_LEASE": f"file:{harness.base / 'primary-lease.json'}",
        "POD_UID": "first",
    }
    proc = subprocess.Popen([sys.executable, "-m", "mysqlsts", "sidecar"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("ready", lambda: http_get(base + 2, "/readyz")[0] == 200, 20)
        time.sleep(3)  # several cycles with nothing changing
        for _ in range(20):  # a burst of scrapes (RSS is measured by bench/probe_bench.py)
            assert http_get(base + 2, "/metrics")[0] == 200
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=10)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-2000:]
    assert took < 5, f"took {took:.1f}s to stop"
    assert stderr.count("readiness: ok") == 1, stderr
    assert "primary set up" in stderr and "sidecar stopped" in stderr
    # SIGTERM gave the lease up, after making the server read-only: the next holder need not
    # wait a lease duration.
    record, _ = FileLeaseStore(harness.base / "primary-lease.json").read(1)
    assert record is not None and record.holder == "" and record.transitions == 0
    assert "primary lease released at stop" in stderr
    assert primary.value("SELECT @@global.read_only") == 1
    for secret in (harness.secrets.root, harness.secrets.replication, harness.secrets.backup,
                   harness.secrets.token):
        assert secret not in stderr
    # The ports are free again.
    assert not _listening(base + 1) and not _listening(base + 2)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(shutil.which("pt-heartbeat") is None, reason="percona-toolkit missing")
def test_pt_heartbeat_reads_our_rows(harness: Harness) -> None:
    primary = harness.server("p", 100)
    replica = harness.server("r", 101, replica=True)
    p_app = harness.sidecar(harness.settings(0, primary, primary))
    wait_for("primary ready", lambda: http_get(p_app.http_port, "/readyz")[0] == 200, 20)
    r_app = harness.sidecar(harness.settings(1, replica, primary))
    wait_for("replica ready", lambda: http_get(r_app.http_port, "/readyz")[0] == 200, 20)
    options = harness.base / "pt.cnf"
    fd = os.open(options, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f'[client]\nuser=root\npassword="{harness.secrets.root}"\n')

    def check() -> float:
        result = subprocess.run(
            ["pt-heartbeat", "--check", "--utc", "--database", "mysqlsts",
             "--master-server-id", "100", f"F={options},h=127.0.0.1,P={replica.port}"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert result.returncode == 0, result.stderr
        return float(result.stdout.strip())

    assert 0 <= check() < 3
    # Stop applying: pt-heartbeat's delay grows like ours.
    replica.sql("STOP SLAVE SQL_THREAD")
    time.sleep(4)
    delay = check()
    ours = float(next(line.split()[1] for line in
                      http_get(r_app.http_port, "/metrics")[1].splitlines()
                      if line.startswith("mysqlsts_replication_lag_seconds ")))
    assert delay >= 3.5 and abs(delay - ours) < 1.5, (delay, ours)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                not in ("Z", "X"))
    except OSError:
        return False


def test_the_donors_backup_tool_dies_with_a_sigkilled_sidecar(
    harness: Harness, tmp_path: Path
) -> None:
    from mysqlsts.clone.receiver import Timeouts, open_session
    from mysqlsts.core.clone_record import DonorAddress

    # A backup tool that says nothing for minutes, as mariabackup waiting for backup locks.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mariabackup").write_text("#!/bin/sh\nexec sleep 300\n")
    (tools / "mariabackup").chmod(0o755)
    base = harness.ports.block(3)
    secrets = harness.secrets.files()
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "POD_NAME": "mysql-0",
        "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1",
        "MYSQLSTS_MYSQL_PORT": str(base),  # nothing listens there: the donor serves anyway
        "MYSQLSTS_CLONE_PORT": str(base + 1),
        "MYSQLSTS_HTTP_PORT": str(base + 2),
        "MYSQLSTS_LISTEN_ADDRESS": "127.0.0.1",
        "MYSQLSTS_DATA_DIR": str(tmp_path / "data"),
        "MYSQLSTS_ROOT_PASSWORD_FILE": str(secrets.root_password),
        "MYSQLSTS_REPLICATION_PASSWORD_FILE": str(secrets.replication_password),
        "MYSQLSTS_BACKUP_PASSWORD_FILE": str(secrets.backup_password),
        "MYSQLSTS_CLONE_TOKEN_FILE": str(secrets.clone_token),
        "MYSQLSTS_PRIMARY_LEASE": "none",  # the donor is under test, not the lease
    }
    proc = subprocess.Popen([sys.executable, "-m", "mysqlsts", "sidecar"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    session = None
    tool: list[int] = []
    try:
        wait_for("http up", lambda: http_get(base + 2, "/livez")[0] in (200, 503), 20)
        session = open_session(DonorAddress(0, "127.0.0.1", base + 1), harness.secrets.token,
                               Timeouts(connect=2, handshake=10))

        def tool_started() -> bool:
            tool[:] = _children(proc.pid)
            return bool(tool)

        wait_for("the backup tool", tool_started, 10)
        assert all(_running(pid) for pid in tool)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in tool) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(pid) for pid in tool), "the backup tool outlived the sidecar"
    finally:
        if session is not None:
            session.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in tool:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
