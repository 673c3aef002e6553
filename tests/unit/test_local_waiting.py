"""Waiting for the supervisor gives up early, in one sentence, when waiting cannot help."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mysqlsts.errors import MysqlstsError
from mysqlsts.local.reconcile import Act
from mysqlsts.local.records import SupervisorPodState, SupervisorState
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.local.store import write_spec, write_state
from mysqlsts.local.waiting import GIVE_UP_AFTER_FAILURES, wait_converged, wait_for_pod

SINCE = 1000.0
SPEC = SetSpec(replicas=2, base_port=22700)


@pytest.fixture
def layout(tmp_path: Path) -> SetLayout:
    layout = SetLayout(tmp_path)
    write_spec(layout, SPEC)
    layout.supervisor_log.write_text("supervisor started\nboom: the disk is full\n")
    return layout


@pytest.fixture
def supervisor(layout: SetLayout) -> Iterator[None]:
    """A running supervisor, as the commands see one: its lock held, its pid written."""
    with layout.supervisor_lock.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        layout.supervisor_pid.write_text(f"{os.getpid()}\n")
        yield


def publish(layout: SetLayout, failures: int, failed_at: float) -> None:
    write_state(layout, SupervisorState(
        supervisor_pid=os.getpid(), desired=SPEC.replicas, stopping=False,
        decision="waiting for mysql-1", act=Act.WAIT, updated_at=SINCE + 5,
        pods={0: SupervisorPodState(alive=True, pid=11, ready=True),
              1: SupervisorPodState(alive=False, pid=None, ready=False, failures=failures,
                                    failed_at=failed_at, last_end="clone failed: no donor")},
    ))


def test_a_pod_that_keeps_failing_ends_the_wait(layout: SetLayout, supervisor: None) -> None:
    publish(layout, GIVE_UP_AFTER_FAILURES, failed_at=SINCE + 1)
    with pytest.raises(MysqlstsError, match=r"^mysql-1 failed 3 times: clone failed: no donor$"):
        wait_converged(layout, SPEC, timeout=60, since=SINCE)
    with pytest.raises(MysqlstsError, match=r"^mysql-1 failed 3 times"):
        wait_for_pod(layout, SPEC, 1, 60, SINCE, "ready", lambda pod: pod.ready)


def test_failures_from_before_the_wait_do_not_count(layout: SetLayout, supervisor: None) -> None:
    publish(layout, GIVE_UP_AFTER_FAILURES, failed_at=SINCE - 1)
    with pytest.raises(MysqlstsError, match=r"^the set did not converge in 1s: waiting for "
                       r"mysql-1; mysql-1 is absent: clone failed: no donor$"):
        wait_converged(layout, SPEC, timeout=1, since=SINCE)
    with pytest.raises(MysqlstsError, match=r"^mysql-1 is not ready after 1s: clone failed"):
        wait_for_pod(layout, SPEC, 1, 1, SINCE, "ready", lambda pod: pod.ready)


def test_a_supervisor_that_is_gone_ends_the_wait_with_its_last_words(layout: SetLayout) -> None:
    publish(layout, 0, failed_at=SINCE - 1)
    for wait in (lambda: wait_converged(layout, SPEC, timeout=60, since=SINCE),
                 lambda: wait_for_pod(layout, SPEC, 1, 60, SINCE, "ready", lambda pod: False)):
        with pytest.raises(MysqlstsError, match=r"^the supervisor is not running: boom: the "
                           r"disk is full$"):
            wait()
