"""The primary killed and re-created (issue 18, "Faults"), on a real 2-pod local set with
`--store`: under a writer that records every acknowledged insert, mysql-0 is SIGKILLed (`local
kill`: its whole process group, as a node crash) and the supervisor re-creates it on the same data
dir, as a StatefulSet re-creates a pod with its PVC. The replica's archiver, which keeps the
archive lease throughout, follows the new mysql-0 by GTID: the archive has no gap and no overlap
(`archive check` exits 0), holds every acknowledged insert, and holds each insert once."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from mysqlsts.core.binlog_index import SegmentRecord, breaks
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.lease_objects import ObjectLeaseStore
from tests.integration.archive_helpers import archiving_set, segment_files, wait_archived
from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration

LEASE = 4.0  # --archive-lease-seconds: the replica would lose it in seconds if it stopped renewing


@contextlib.contextmanager
def _writer(local: LocalSet) -> Iterator[tuple[list[int], list[int]]]:
    """Inserts on mysql-0 until the block ends, reconnecting through its death, each id tried
    once: (acknowledged ids, every id tried). An insert whose acknowledgement was lost with the
    connection may or may not have committed; an acknowledged one has."""
    acked: list[int] = []
    tried: list[int] = []
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            try:
                with contextlib.closing(local.connect(0)) as conn, conn.cursor() as cursor:
                    while not stop.is_set():
                        tried.append(len(tried) + 1)
                        cursor.execute("INSERT INTO arch.t (id) VALUES (%s)", (tried[-1],))
                        acked.append(tried[-1])
                        time.sleep(0.02)
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError):
                stop.wait(0.2)  # mysql-0 is down, or not yet writable again

    thread = threading.Thread(target=write, name="writer", daemon=True)
    thread.start()
    try:
        yield acked, tried
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


def _holder(leases: ObjectLeaseStore) -> str:
    record, _ = leases.read(5)
    return "" if record is None else record.holder


def _archived_ids(records: list[SegmentRecord], objects: FileStore, work: Path) -> Counter[int]:
    """How many times each id's insert into arch.t is in the archived segments, read back with
    `mariadb-binlog`."""
    files = segment_files(records, objects, None, work)
    decoded = subprocess.run(["mariadb-binlog", "--base64-output=decode-rows", "--verbose",
                              *files], check=True, capture_output=True, text=True).stdout
    return Counter(int(n) for n in re.findall(
        r"^### INSERT INTO `arch`\.`t`\n### SET\n###   @1=(\d+)$", decoded, flags=re.M))


def test_the_archive_follows_a_killed_and_re_created_primary(
        local_set: LocalSetFactory, tmp_path: Path) -> None:
    store = tmp_path / "store"
    local, objects, leases = archiving_set(local_set, store, 2, LEASE)
    deadline = time.monotonic() + 60
    while not _holder(leases).startswith("mysql-1/"):
        assert time.monotonic() < deadline, _holder(leases) + local.diagnostics()
        time.sleep(0.1)
    holder = _holder(leases)
    local.sql(0, "CREATE DATABASE arch", "CREATE TABLE arch.t (id INT PRIMARY KEY)")

    with _writer(local) as (acked, tried):
        time.sleep(2)
        before = local.pod(0)["pid"]
        killed_at = len(acked)
        local.kill(0)
        deadline = time.monotonic() + 180
        while not (local.pod(0)["ready"] and local.pod(0)["pid"] not in (None, before)):
            assert time.monotonic() < deadline, "mysql-0 not re-created\n" + local.diagnostics()
            time.sleep(0.5)
        resumed_at = len(acked)
        deadline = time.monotonic() + 60
        while len(acked) < resumed_at + 50:  # writes acknowledged by the new mysql-0
            assert time.monotonic() < deadline, "no writes after mysql-0 came back"
            time.sleep(0.1)

    assert killed_at > 20, killed_at
    assert _holder(leases) == holder  # the replica archived throughout, never the primary
    position = local.value(0, "SELECT @@gtid_binlog_pos")
    records = wait_archived(objects, None, position, timeout=60)
    assert breaks(records) == []  # no gap, no overlap across the primary's death
    archived = _archived_ids(records, objects, tmp_path / "decoded")
    assert set(acked) <= set(archived), sorted(set(acked) - set(archived))[:20]
    assert set(archived) <= set(tried)
    assert max(archived.values()) == 1  # nothing archived twice
    # The re-created primary lost no acknowledged insert either, and holds what was archived.
    rows = {row[0] for row in local.sql(0, "SELECT id FROM arch.t")}
    assert set(acked) <= rows and set(archived) <= rows
    # The stream broke with the primary and was opened again after the archived position.
    log = local.log(1, "sidecar")
    assert "archive: binlog stream from" in log or "archive: the primary" in log, log[-3000:]
    assert "streaming again from the primary after" in log, log[-3000:]
    check = subprocess.run([*mysqlsts_command(), "archive", "check", "--store",
                            f"file://{store}"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
