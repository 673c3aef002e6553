"""Archivers on every pod of a real 3-pod local set with `--store`, contending for the archive
lease (docs/backup.md, "In the sidecar"): one replica archives while the others wait; under
steady inserts its pod is SIGKILLed and another archiver takes over only after the lease's
duration, a replica stopped cleanly gives the lease up and the other replica takes it at once,
and with every replica down the primary archives after its patience. The archive stays
contiguous and holds every acknowledged insert."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mysqlsts.core.archive_turn import PRIMARY_PATIENCE
from mysqlsts.core.binlog_index import archived_position, breaks
from mysqlsts.core.lease import LeaseRecord
from mysqlsts.store.lease_objects import ObjectLeaseStore
from tests.integration.archive_helpers import archiving_set, wait_archived
from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration

LEASE = 4.0  # --archive-lease-seconds: renewed every 0.53 s, taken over after 4 s


def _holder(leases: ObjectLeaseStore) -> LeaseRecord | None:
    record, _ = leases.read(5)
    return record


def _pod(record: LeaseRecord | None) -> str:
    """The pod a holder name starts with ("" for a free lease)."""
    return "" if record is None or not record.holder else record.holder.split("/")[0]


def _wait_holder(leases: ObjectLeaseStore, other_than: str, timeout: float,
                 local: LocalSet) -> tuple[LeaseRecord, float]:
    """The first holder (a name) other than `other_than`, and when it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = _holder(leases)
        if record is not None and record.holder and record.holder != other_than:
            return record, time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"the lease stayed with {other_than!r} for {timeout}s\n"
                         + local.diagnostics())


@contextlib.contextmanager
def _writer(local: LocalSet) -> Iterator[list[int]]:
    """Inserts on mysql-0 until the block ends; the ids whose commit was acknowledged."""
    acked: list[int] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with contextlib.closing(local.connect(0)) as conn, conn.cursor() as cursor:
                n = 0
                while not stop.is_set():
                    n += 1
                    cursor.execute("INSERT INTO arch.t (id) VALUES (%s)", (n,))
                    acked.append(n)
                    time.sleep(0.02)
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            failures.append(error)

    thread = threading.Thread(target=write, name="writer", daemon=True)
    thread.start()
    try:
        yield acked
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not failures, failures


def test_one_archiver_at_a_time_and_the_set_keeps_archiving_when_its_pod_goes(
        local_set: LocalSetFactory, tmp_path: Path) -> None:
    store = tmp_path / "store"
    local, objects, leases = archiving_set(local_set, store, 3, LEASE)
    first, _ = _wait_holder(leases, "", 60, local)
    archiving = _pod(first)
    assert archiving in ("mysql-1", "mysql-2"), first  # a replica's, never the primary's
    time.sleep(2 * LEASE)  # long enough for the others to have tried
    assert _holder(leases).holder == first.holder  # type: ignore[union-attr]  # renewed
    for ordinal in range(3):
        log = local.log(ordinal, "sidecar")
        if f"mysql-{ordinal}" == archiving:
            assert "took the archive lease" in log
        else:
            assert "waiting for the archive lease" in log, log[-2000:]
            assert "took the archive lease" not in log
    dumps = local.sql(0, "SELECT COUNT(*) FROM information_schema.processlist "
                         "WHERE command LIKE 'Binlog Dump%'")[0][0]
    assert dumps == 3  # two replicas' I/O threads and one archiver, not three archivers
    local.sql(0, "CREATE DATABASE arch", "CREATE TABLE arch.t (id INT PRIMARY KEY)")

    with _writer(local) as acked:
        time.sleep(1.5)
        # The archiving pod crashes: nobody releases, so another archiver (the other
        # replica's, or the re-created pod's) takes the lease only after its duration.
        local.kill(int(archiving.rsplit("-", 1)[1]))
        killed = time.monotonic()
        second, taken = _wait_holder(leases, first.holder, 60, local)
        # Not before the dead holder's last renew is a whole duration old; well before the
        # default 15 s duration.
        assert LEASE * 2 / 3 <= taken - killed < 3 * LEASE, (second, taken - killed)
        assert _pod(second) in ("mysql-1", "mysql-2"), second
        time.sleep(1.5)
        # The holder stopped cleanly gives the lease up: the other replica's archiver takes
        # it free, without waiting out a duration.
        local.wait_ready(3)  # the killed pod is back
        holder = int(_pod(second).rsplit("-", 1)[1])
        other = 3 - holder
        local.run("stop", "--dir", str(local.directory), str(holder), timeout=120)
        third, _ = _wait_holder(leases, second.holder, 60, local)
        assert _pod(third) == f"mysql-{other}", third
        took = [line for line in local.log(other, "sidecar").splitlines()
                if "took the archive lease" in line]
        assert took and took[-1].endswith("(free)"), took
        time.sleep(1.5)
        # With no replica left, the primary's archiver takes it after its patience.
        local.run("stop", "--dir", str(local.directory), str(other), timeout=120)
        released = time.monotonic()
        assert _pod(_holder(leases)) == ""  # given up, and nobody took it yet
        fourth, taken = _wait_holder(leases, "", 60, local)
        assert _pod(fourth) == "mysql-0", fourth
        assert PRIMARY_PATIENCE * LEASE * 0.9 <= taken - released < PRIMARY_PATIENCE * LEASE + 10, (
            taken - released)
        time.sleep(1.5)

    assert len(acked) > 50, len(acked)
    position = local.value(0, "SELECT @@gtid_binlog_pos")
    records = wait_archived(objects, None, position, timeout=30)
    assert breaks(records) == []  # no gap, no overlap across the four holders
    archived = archived_position(records)  # the heartbeat rows go on being written
    for gtid in position.split(","):
        domain, _, seq = (int(n) for n in gtid.split("-"))
        assert archived[domain].seq >= seq, (archived, position)
    # The archive begins at the primary's first transaction: everything since is in it.
    assert min(dr.first_seq for r in records for dr in r.domains if dr.domain == 0) == 1
    assert local.value(0, "SELECT COUNT(*) FROM arch.t") == len(acked)
    check = subprocess.run([*mysqlsts_command(), "archive", "check", "--store",
                            f"file://{store}"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
