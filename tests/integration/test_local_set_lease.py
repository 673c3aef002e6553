"""The primary lease in a real local set (`mysqlsts local`, the file store every pod's sidecar
contends for, docs/takeover.md): `local stop 0` gives the lease up and the replicas keep serving
reads; `local start 0` brings a server that starts read-only and becomes writable only once its
sidecar holds the lease; a SIGKILLed primary gives nothing up, so the re-created mysql-0 (a new
holder: a new POD_UID) becomes writable only after watching the record unchanged for the
lease's duration.

One 2-pod set is shared by the tests of this module, in file order; the lease is shortened
through the env every pod inherits (as a StatefulSet's env would set it).
"""

from __future__ import annotations

import fcntl
import http.client
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pytest

from mysqlsts.adapters.lease_store import FileLeaseStore
from mysqlsts.core.lease import LeaseRecord
from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration

DURATION, DEADLINE, INTERVAL = 6.0, 4.0, 0.5
LEASE_ENV = {"MYSQLSTS_LEASE_DURATION": str(DURATION),
             "MYSQLSTS_LEASE_RENEW_DEADLINE": str(DEADLINE),
             "MYSQLSTS_LEASE_RENEW_INTERVAL": str(INTERVAL)}


@pytest.fixture(scope="module")
def local(local_set_module: LocalSetFactory) -> LocalSet:
    return local_set_module(
        replicas=2, env=LEASE_ENV,
        setup_sql=["CREATE DATABASE app", "CREATE TABLE app.t (id INT AUTO_INCREMENT "
                   "PRIMARY KEY, tag VARCHAR(32))"])


def _store(local: LocalSet) -> FileLeaseStore:
    return FileLeaseStore(local.directory / "primary-lease.json")


def _record(local: LocalSet) -> LeaseRecord:
    record, _ = _store(local).read(5)
    assert record is not None
    return record


def _answers(local: LocalSet, ordinal: int) -> dict[str, Any] | None:
    """@@read_only and whether a row commits, on a fresh connection; None while the server
    does not answer."""
    try:
        conn = local.connect(ordinal)
    except pymysql.MySQLError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@global.read_only")
            row = cur.fetchone()
            assert row is not None
        return {"read_only": int(row[0])}
    except pymysql.MySQLError:
        return None
    finally:
        conn.close()


def _first_answer(local: LocalSet, ordinal: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = _answers(local, ordinal)
        if answer is not None:
            return answer
        time.sleep(0.05)
    raise AssertionError(f"mysql-{ordinal} did not answer within {timeout:.0f}s")


def _readyz(local: LocalSet, ordinal: int) -> tuple[int, str]:
    where = local.pod(ordinal)["http"]
    conn = http.client.HTTPConnection(where["host"], where["port"], timeout=5)
    try:
        conn.request("GET", "/readyz")
        reply = conn.getresponse()
        return reply.status, reply.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


@contextmanager
def _store_locked(local: LocalSet) -> Iterator[None]:
    """The store answers no contender while we hold its lock."""
    fd = os.open(_store(local).lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_the_primary_holds_the_sets_lease_and_writes(local: LocalSet) -> None:
    record = _record(local)
    name, _, uid = record.holder.partition("/")
    assert name == "mysql-0" and uid  # <pod name>/<this pod process's incarnation>
    assert record.duration == DURATION
    local.sql(0, "INSERT INTO app.t (tag) VALUES ('up')")  # `local up` returned writable
    assert local.value(1, "SELECT @@global.read_only") == 1


def test_stop_releases_the_lease_and_start_is_writable_only_under_it(local: LocalSet) -> None:
    before = _record(local)
    local.run("stop", "--dir", str(local.directory), "0", timeout=400)
    # Given up at the graceful stop (after the server stopped taking writes), not left to
    # run out: the next holder need not wait a lease duration.
    released = _record(local)
    assert released.holder == "" and released.transitions == before.transitions
    # The replica keeps serving reads.
    assert local.pod(1)["ready"]
    assert local.value(1, "SELECT COUNT(*) FROM app.t WHERE tag = 'up'") == 1

    with _store_locked(local):
        starting = subprocess.Popen(
            [*mysqlsts_command(), "local", "start", "--dir", str(local.directory), "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=local.command_env())
        try:
            # The server answers before its sidecar can hold the lease: read-only, and it
            # stays so (not stopped either) while the store does not answer.
            assert _first_answer(local, 0, 120)["read_only"] == 1
            watched_until = time.monotonic() + 3 * DEADLINE
            while time.monotonic() < watched_until:
                answer = _answers(local, 0)
                assert answer is not None and answer["read_only"] == 1, answer
                time.sleep(0.2)
            status, body = _readyz(local, 0)
            assert status == 503 and "until it holds the lease" in body, (status, body)
            assert local.pod(0)["alive"] and starting.poll() is None  # start waits for it
        except BaseException:
            starting.kill()
            raise
    out, err = starting.communicate(timeout=120)
    assert starting.returncode == 0, err
    assert "mysql-0 is back and ready" in err
    record = _record(local)
    assert record.holder.startswith("mysql-0/") and record.holder != before.holder
    assert record.transitions == before.transitions + 1
    assert local.value(0, "SELECT @@global.read_only") == 0
    local.sql(0, "INSERT INTO app.t (tag) VALUES ('after-start')")


def test_a_killed_primary_keeps_the_lease_and_the_next_one_waits_its_duration(
        local: LocalSet) -> None:
    before = _record(local)
    killed_at = time.monotonic()
    local.kill(0)
    # Nothing gave it up: the record still names the dead pod.
    assert _record(local).holder == before.holder
    # The re-created mysql-0 (a new holder) answers read-only, and turns writable only after
    # watching the record unchanged for its whole duration.
    assert _first_answer(local, 0, 120)["read_only"] == 1
    deadline = time.monotonic() + 120
    while (_answers(local, 0) or {}).get("read_only") != 0:
        assert time.monotonic() < deadline, "mysql-0 never became writable"
        time.sleep(0.1)
    waited = time.monotonic() - killed_at
    assert waited >= DURATION, f"writable {waited:.1f}s after the kill, before {DURATION:g}s"
    record = _record(local)
    assert record.holder.startswith("mysql-0/") and record.holder != before.holder
    assert record.transitions == before.transitions + 1
    local.wait_ready(2, timeout=120)
    local.sql(0, "INSERT INTO app.t (tag) VALUES ('after-kill')")
    print(f"\nSIGKILLed primary: the next mysql-0 writable {waited:.1f}s after the kill "
          f"(lease duration {DURATION:g}s)")
