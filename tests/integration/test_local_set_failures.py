"""`mysqlsts local` reports a pod that cannot come up, with the reason, and leaves no process."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command, processes_mentioning

pytestmark = pytest.mark.integration

REPO_CNF = Path(__file__).resolve().parents[2] / "images" / "cnf" / "mariadb"


def pod_processes(local: LocalSet, ordinal: int) -> list[tuple[int, str]]:
    """The pod process (`local _pod --ordinal N`) and every container it runs."""
    leaders = [(pid, cmd) for pid, cmd in local.processes() if f"--ordinal {ordinal}" in cmd]
    return leaders + processes_mentioning(str(local.pod_dir(ordinal)))


def test_up_fails_with_the_failing_containers_reason(
    tmp_path: Path, local_set: LocalSetFactory
) -> None:
    local = local_set.unstarted()
    cnf = tmp_path / "cnf"
    cnf.mkdir()
    shutil.copy(REPO_CNF / "master.cnf", cnf / "master.cnf")
    # A replica cnf the server refuses: mysql-1's server exits at start, every time.
    (cnf / "slave.cnf").write_text("[mysqld]\nno_such_variable_here=1\n")
    try:
        started = time.monotonic()
        done = local.run("up", "--dir", str(local.directory), "--replicas", "2",
                         "--base-port", str(local.base_port), "--cnf-dir", str(cnf),
                         "--timeout", "120", check=False, timeout=200)
        assert done.returncode != 0
        last = done.stderr.strip().splitlines()[-1]
        assert "mysql-1 failed 3 times" in last, last
        assert "no_such_variable_here" in last, last
        assert "the set stays at 1 ready pod(s) and creates no more" in last, last
        assert time.monotonic() - started < 120, "gave up only at the deadline"
        # Once `up` has given up, the supervisor stops re-creating mysql-1 (its back-off is
        # 4 s by now): nothing of it runs, for longer than that.
        watched_until = time.monotonic() + 10
        while time.monotonic() < watched_until:
            assert pod_processes(local, 1) == [], "mysql-1 is still being re-created"
            time.sleep(0.5)
        pods = local.status()["pods"]
        assert [(p["name"], p["ready"]) for p in pods] == [("mysql-0", True)]
        assert "no_such_variable_here" in (local.pod_dir(1) / "logs" / "mariadbd.err").read_text()
    finally:
        local.run("down", "--dir", str(local.directory), "--purge", check=False, timeout=300)
    assert local.processes() == []
    assert not local.directory.exists()


def test_a_failed_scale_reports_the_current_reason_not_an_earlier_one(
    local_set: LocalSetFactory,
) -> None:
    local = local_set(replicas=1)
    # First failure: mysql-1's volume holds a stranger's file, so its clone refuses it.
    local.data_dir(1).mkdir(parents=True)
    (local.data_dir(1) / "stranger.txt").write_text("not a server's data\n")
    done = local.run("scale", "--dir", str(local.directory), "--replicas", "2",
                     "--timeout", "120", check=False, timeout=200)
    assert done.returncode != 0
    first = done.stderr.strip().splitlines()[-1]
    assert "mysql-1 failed 3 times" in first and "holds files" in first, first
    # Then another trouble: the volume is fixed, but the replication password no longer
    # matches the account the primary made, so mysql-1 runs and is never ready.
    (local.data_dir(1) / "stranger.txt").unlink()
    secret = local.directory / "secrets" / "replication-password"
    secret.write_text("not-the-password-the-primary-knows\n")
    done = local.run("scale", "--dir", str(local.directory), "--replicas", "2",
                     "--timeout", "90", check=False, timeout=200)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "did not converge" in last and "mysql-1 is running" in last, last
    assert "Access denied" in last and "holds files" not in last, last


def test_two_ups_on_one_new_directory_make_one_set(local_set: LocalSetFactory) -> None:
    local = local_set.unstarted()
    argv = [*mysqlsts_command(), "local", "up", "--dir", str(local.directory), "--replicas", "1",
            "--base-port", str(local.base_port), "--timeout", "300"]
    try:
        racers = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True) for _ in range(2)]
        results = [(racer.wait(timeout=400), racer.communicate()[1]) for racer in racers]
        for code, err in results:
            last = err.strip().splitlines()[-1] if err.strip() else ""
            # Each one either made (or resumed) the set, or was told another one is making it.
            assert code == 0 or "another `local up` is creating" in last, (code, err[-2000:])
            assert "holds no local set" not in err
        assert any(code == 0 for code, _ in results)
        assert [(p["name"], p["ready"]) for p in local.status()["pods"]] == [("mysql-0", True)]
    finally:
        local.run("down", "--dir", str(local.directory), "--purge", check=False, timeout=300)
    assert local.processes() == []
