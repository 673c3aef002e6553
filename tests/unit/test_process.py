"""The process-group helper, with real child processes: a leader and the child it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mysqlsts.adapters.process import ProcessGroup, process_alive, stop_all, wait_ended

# A leader that starts one child in its own group, reports both pids, and records which of
# them got SIGTERM in `marks/`. argv: marks dir, "ignore" or "obey" (what both do on SIGTERM).
_FAMILY = r"""
import os, signal, subprocess, sys, time
marks, how = sys.argv[1], sys.argv[2]
role = sys.argv[3] if len(sys.argv) > 3 else "leader"
def on_term(signum, frame):
    open(os.path.join(marks, role), "w").close()
    if how == "obey":
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
if role == "leader":
    child = subprocess.Popen([sys.executable, __file__, marks, how, "child"],
                             stdout=subprocess.PIPE, text=True)
    print(os.getpid(), child.stdout.readline().strip(), flush=True)
else:
    print(os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


def _family(tmp_path: Path, how: str, *, adopt: bool = False) -> tuple[ProcessGroup, int]:
    script = tmp_path / "family.py"
    script.write_text(_FAMILY)
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    group = ProcessGroup.start([sys.executable, str(script), str(marks), how],
                               stdout=subprocess.PIPE)
    assert group.process is not None and group.process.stdout is not None
    with group.process.stdout:
        leader, child = (int(pid) for pid in group.process.stdout.readline().split())
    assert leader == group.pid
    return group, child


def _gone(pid: int, marker: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid, marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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


def test_a_started_child_leads_its_own_group(tmp_path: Path) -> None:
    group, child = _family(tmp_path, "obey")
    try:
        assert os.getpgid(group.pid) == group.pid != os.getpgid(0)
        assert os.getpgid(child) == group.pid
        assert os.getsid(group.pid) == os.getsid(0)  # a new group, not a new session
    finally:
        group.stop(5)


def test_stop_terms_the_whole_group_and_reaps_the_leader(tmp_path: Path) -> None:
    group, child = _family(tmp_path, "obey")
    started = time.monotonic()
    group.stop(grace=30)
    assert time.monotonic() - started < 10, "it obeyed SIGTERM: no need to wait the grace"
    assert group.returncode == 0 and not group.running()
    assert sorted(path.name for path in (tmp_path / "marks").iterdir()) == ["child", "leader"]
    assert _gone(child, str(tmp_path))


def test_stop_kills_the_group_after_the_grace_when_sigterm_is_ignored(tmp_path: Path) -> None:
    group, child = _family(tmp_path, "ignore")
    started = time.monotonic()
    group.stop(grace=1.0)
    took = time.monotonic() - started
    assert 1.0 <= took < 8, took
    assert group.returncode == -signal.SIGKILL
    assert (tmp_path / "marks" / "leader").exists(), "SIGTERM came first"
    assert _gone(child, str(tmp_path)), "the child went with its group"


def test_leader_only_sigterm_leaves_the_children_to_the_leader(tmp_path: Path) -> None:
    group, child = _family(tmp_path, "ignore")
    group.stop(grace=0.5, leader_only=True)
    assert [path.name for path in (tmp_path / "marks").iterdir()] == ["leader"]
    assert _gone(child, str(tmp_path)), "SIGKILL still reaches the whole group"


def test_an_ended_leader_stays_unreaped_until_its_group_is_killed(tmp_path: Path) -> None:
    """The supervisor's case: a pod leader dies alone; its children still hold the ports."""
    group, child = _family(tmp_path, "obey")
    os.kill(group.pid, signal.SIGKILL)
    assert wait_ended([group], 5)
    assert group.returncode is None, "running() must not reap: the pid names the group"
    assert process_alive(child, str(tmp_path))
    group.kill()
    assert group.reap(5) == -signal.SIGKILL
    assert _gone(child, str(tmp_path))


def test_an_adopted_group_is_watched_through_proc_and_killed_whole(tmp_path: Path) -> None:
    group, child = _family(tmp_path, "ignore")
    adopted = ProcessGroup.adopt(group.pid, str(tmp_path))
    assert adopted.running()
    assert not ProcessGroup.adopt(group.pid, str(tmp_path / "another-set")).running()
    assert adopted.reap() is None
    adopted.kill()
    assert wait_ended([adopted], 5)
    assert _gone(child, str(tmp_path))
    group.reap(5)


def test_stop_all_shares_one_grace_and_skips_what_already_ended(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / name).mkdir()
    first, _ = _family(tmp_path / "a", "ignore")
    second, _ = _family(tmp_path / "b", "ignore")
    ended, _ = _family(tmp_path / "c", "obey")
    ended.stop(5)
    started = time.monotonic()
    stopped = stop_all([first, second, ended], grace=1.5)
    assert time.monotonic() - started < 1.5 + 2.5, "one grace for all, not one each"
    assert stopped == [first, second]
    assert first.returncode == second.returncode == -signal.SIGKILL


def test_stop_reaps_a_leader_that_ended_on_its_own_without_signalling_it(tmp_path: Path) -> None:
    group = ProcessGroup.start([sys.executable, "-c", "raise SystemExit(7)"])
    assert wait_ended([group], 5)
    assert group.returncode is None
    assert stop_all([group], grace=5) == []
    assert group.returncode == 7
