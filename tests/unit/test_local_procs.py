"""Helpers the local pods and supervisor lean on: reasons from logs, process liveness."""

import os
import subprocess
import sys
from pathlib import Path

from mysqlsts.local.procs import last_line, process_alive


def test_last_line_reports_the_telling_line_of_the_latest_run(tmp_path: Path) -> None:
    log = tmp_path / "mariadbd.err"
    log.write_text("old run: [ERROR] something long ago\n")
    since = log.stat().st_size
    with log.open("a") as handle:
        handle.write("[Note] starting\n[ERROR] unknown variable 'x=1'\n[ERROR] Aborting\n\n")
    assert last_line(log, since) == "[ERROR] Aborting"
    assert last_line(log, since, skip=("Aborting",)) == "[ERROR] unknown variable 'x=1'"
    assert last_line(log, log.stat().st_size) is None
    assert last_line(tmp_path / "missing.log") is None


def test_process_alive_checks_the_marker_and_ignores_zombies(tmp_path: Path) -> None:
    marker = str(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)", marker],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        # Until the child has exec'd, /proc shows the parent's command line, without the marker.
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        assert process_alive(child.pid, marker)
        assert not process_alive(child.pid, marker + "-other-set")
        child.kill()
        # Killed but not reaped yet: a zombie is not a live pod.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        assert not process_alive(child.pid, marker)
    finally:
        child.kill()
        child.communicate()
