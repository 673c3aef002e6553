"""`mysqlsts server`'s supervision (server/supervise.py) with real processes: a small Python
child plays mariadbd, so signals, exit codes and the watchdog's timing are the real ones. The
supervisor runs in its own process (it blocks signals, as PID 1 of a container does)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mysqlsts.core.watchdog import WATCHDOG_EXIT

# A child that says which signals it got (on stdout) and ignores SIGTERM unless told to obey.
CHILD = """
import signal, sys, time
obey = sys.argv[1] == "obey"
def got(signum, frame):
    print("got", signum, flush=True)
    if obey and signum == signal.SIGTERM:
        sys.exit(0)
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(s, got)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

# As `mysqlsts server` runs it (an error is one line and exit 1, as the CLI makes it).
SUPERVISOR = """
import logging, sys
from pathlib import Path
from mysqlsts.core.watchdog import WatchdogTimings
from mysqlsts.errors import MysqlstsError
from mysqlsts.server.supervise import ServerSupervisor
logging.basicConfig(level="INFO")
heartbeat = Path(sys.argv[1]) if sys.argv[1] else None
timings = WatchdogTimings(timeout=float(sys.argv[2]), startup=float(sys.argv[3]))
fence = Path(sys.argv[5]) if sys.argv[5] else None
try:
    bound = heartbeat.with_name(heartbeat.name + ".bound") if heartbeat else None
    sys.exit(ServerSupervisor(sys.argv[6:], heartbeat, timings, grace=float(sys.argv[4]),
                              poll=0.05, bound_file=bound, fence=fence).run())
except MysqlstsError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""


# A child that leaves a file behind the moment it runs, and obeys SIGTERM.
MARKS = """
import pathlib, signal, sys, time
pathlib.Path(sys.argv[1]).touch()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(0.05)
"""


def _start(tmp_path: Path, child: list[str], heartbeat: Path | None = None, timeout: float = 1.0,
           startup: float = 1.0, grace: float = 0.5,
           fence: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(heartbeat or ""), str(timeout), str(startup),
         str(grace), str(fence or ""), *child],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _child(behaviour: str) -> list[str]:
    return [sys.executable, "-c", CHILD, behaviour]


def _ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"


def _code(process: subprocess.Popen[str]) -> int:
    process.communicate(timeout=10)
    return process.returncode


def test_exits_with_the_servers_status(tmp_path: Path) -> None:
    assert _code(_start(tmp_path, [sys.executable, "-c", "import sys; sys.exit(7)"])) == 7
    killed = _start(tmp_path, [sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"])
    assert _code(killed) == 128 + 9


def test_the_watchdog_states_its_stop_bound_beside_the_heartbeat_before_the_server_starts(
        tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    started = tmp_path / "started"
    bound = tmp_path / "heartbeat.bound"
    bound.write_text("99\n")  # an earlier run's, with other settings: replaced
    process = _start(tmp_path, [sys.executable, "-c", MARKS, str(started)], heartbeat,
                     timeout=1.0, startup=30.0, grace=0.5)
    _wait_for(started, 5)
    assert bound.read_text() == "1.55\n"  # poll 0.05 + timeout 1 + grace 0.5, there before
    process.send_signal(signal.SIGTERM)
    err = process.communicate(timeout=10)[1]
    assert process.returncode == 0
    assert f"startup=30s bound=1.55s in {bound}" in err
    assert bound.read_text() == "1.55\n" and not heartbeat.exists()  # nothing else touched
    unsupervised = tmp_path / "unsupervised"
    unsupervised.mkdir()
    process = _start(unsupervised, [sys.executable, "-c", "pass"])  # no watchdog: no bound
    assert _code(process) == 0 and list(unsupervised.iterdir()) == []


def test_signals_reach_the_server_and_a_stop_is_not_escalated(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    # A stale heartbeat all along, but the stop signal came first: the server's own shutdown
    # is not cut short by the watchdog.
    process = _start(tmp_path, _child("obey-late"), heartbeat, timeout=0.3, startup=0.6)
    _ready(process)
    process.send_signal(signal.SIGHUP)
    process.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # past startup + grace: a watchdog still judging would have killed it
    assert process.poll() is None
    process.kill()
    out, err = process.communicate(10)
    assert "got 1" in out and "got 15" in out
    assert "passing SIGTERM" in err and "watchdog stopping" not in err


def test_a_stop_signal_ends_the_server_and_its_status_is_ours(tmp_path: Path) -> None:
    process = _start(tmp_path, _child("obey"))
    _ready(process)
    process.send_signal(signal.SIGTERM)
    assert _code(process) == 0


@pytest.mark.parametrize("behaviour", ["obey", "ignore"])
def test_no_first_heartbeat_stops_the_server_after_the_startup_allowance(
        tmp_path: Path, behaviour: str) -> None:
    heartbeat = tmp_path / "heartbeat"  # none yet: the pod's first start
    started = time.monotonic()
    process = _start(tmp_path, _child(behaviour), heartbeat, timeout=0.3, startup=1.0, grace=0.5)
    assert process.wait(10) == WATCHDOG_EXIT
    took = time.monotonic() - started
    # SIGTERM at the allowance; a server that ignores it is SIGKILLed after the grace
    assert 1.0 <= took < (2.2 if behaviour == "ignore" else 1.8)
    err = process.communicate()[1]
    assert "no heartbeat from the sidecar within 1s" in err
    assert ("after SIGTERM; SIGKILL" in err) is (behaviour == "ignore")


def test_a_heartbeat_that_stops_changing_stops_the_server_within_the_bound(
        tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    process = _start(tmp_path, _child("ignore"), heartbeat, timeout=0.5, startup=1.0,
                     grace=0.3)
    _ready(process)
    beat_until = time.monotonic() + 3.0  # six timeouts, and past the startup allowance
    count = 0
    while time.monotonic() < beat_until:
        count += 1
        heartbeat.write_text(f"{count}\n")
        time.sleep(0.1)
        assert process.poll() is None, "stopped while the heartbeat changed"
    last = time.monotonic()
    assert process.wait(10) == WATCHDOG_EXIT
    assert time.monotonic() - last < 0.5 + 0.3 + 0.05 + 0.3  # timeout + grace + poll + slack
    assert "has not changed for" in process.communicate()[1]


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    return process.stderr.readline()


def _wait_for(what: Path, within: float) -> float:
    deadline = time.monotonic() + within
    while not what.exists():
        assert time.monotonic() < deadline, f"{what} did not appear within {within}s"
        time.sleep(0.02)
    return time.monotonic()


def test_no_server_starts_while_the_lease_fence_holds(tmp_path: Path) -> None:
    fence, started = tmp_path / ".mysqlsts-lease-fenced", tmp_path / "started"
    fence.write_text("{}\n")
    process = _start(tmp_path, [sys.executable, "-c", MARKS, str(started)], fence=fence)
    assert (f"server: not starting: the primary lease fence holds ({fence}); waiting for the "
            "sidecar to hold the lease") in _first_line(process)
    time.sleep(1.0)  # twenty polls
    assert process.poll() is None and not started.exists()
    fence.unlink()  # the sidecar holds the lease again
    _wait_for(started, 5.0)
    process.send_signal(signal.SIGTERM)
    err = process.communicate(timeout=10)[1]
    assert process.returncode == 0
    # said once, not at every poll (the first line was read above)
    assert "not starting" not in err and "starting" in err


def test_a_stop_signal_while_fenced_starts_nothing(tmp_path: Path) -> None:
    fence, started = tmp_path / ".mysqlsts-lease-fenced", tmp_path / "started"
    fence.write_text("{}\n")
    process = _start(tmp_path, [sys.executable, "-c", MARKS, str(started)], fence=fence)
    assert "not starting" in _first_line(process)
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert _code(process) == 0
    assert time.monotonic() - signalled < 1.0
    assert not started.exists()


def test_a_restart_waits_for_the_heartbeat_to_change_then_judges_with_the_timeout(
        tmp_path: Path) -> None:
    heartbeat, started = tmp_path / "heartbeat", tmp_path / "started"
    heartbeat.write_text("left by the container's earlier run\n")
    # A startup allowance far longer than the test: only the timeout can stop it.
    process = _start(tmp_path, [sys.executable, "-c", MARKS, str(started)], heartbeat,
                     timeout=0.5, startup=30.0, grace=0.5)
    assert "not starting: a restart inside the pod" in _first_line(process)
    time.sleep(1.0)  # past the timeout: still waiting, not stopping
    assert process.poll() is None and not started.exists()
    heartbeat.write_text("1\n")  # a living sidecar
    changed = time.monotonic()
    _wait_for(started, 5.0)
    assert process.wait(10) == WATCHDOG_EXIT
    assert time.monotonic() - changed < 0.5 + 0.05 + 0.5 + 0.5  # timeout + poll + slack
    assert "has not changed for" in process.communicate()[1]


def test_a_server_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    process = _start(tmp_path, [str(tmp_path / "no-such-mariadbd")])
    _, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert err.strip().splitlines() == [
        f"cannot start {tmp_path}/no-such-mariadbd: No such file or directory"]
