"""The file-backed lease store: compare-and-swap on a version, a lock that excludes even
another open in the same process, and a store that does not answer in time is one error."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from mysqlsts.adapters.lease_store import (
    NO_RECORD,
    FileLeaseStore,
    LeaseConflict,
    LeaseUnavailable,
)
from mysqlsts.core.lease import LeaseRecord

A = LeaseRecord("mysql-0", 1.0, 15.0, 0)
B = LeaseRecord("intruder", 2.0, 15.0, 1)


def test_compare_and_swap(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease")
    assert store.read(1) == (None, NO_RECORD)
    v1 = store.write(A, NO_RECORD, 1)
    assert store.read(1) == (A, v1)
    v2 = store.write(B, v1, 1)
    assert v2 != v1
    with pytest.raises(LeaseConflict):
        store.write(A, v1, 1)  # a stale version loses
    assert store.read(1) == (B, v2)
    # a second store on the same file sees the same record (another process's view)
    assert FileLeaseStore(tmp_path / "lease").read(1) == (B, v2)


def test_racing_writers_on_one_version_exactly_one_wins(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease")
    version = store.write(A, NO_RECORD, 1)
    wins: list[str] = []
    conflicts: list[str] = []

    def contend(name: str) -> None:
        try:
            FileLeaseStore(tmp_path / "lease").write(LeaseRecord(name, 3.0, 15.0, 1), version, 5)
            wins.append(name)
        except LeaseConflict:
            conflicts.append(name)

    threads = [threading.Thread(target=contend, args=(f"c{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(wins) == 1 and len(conflicts) == 7
    record, _ = store.read(1)
    assert record is not None and record.holder == wins[0]


def test_a_held_lock_is_unavailable_within_the_timeout(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease")
    store.write(A, NO_RECORD, 1)
    fd = os.open(store.lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(LeaseUnavailable, match="locked"):
            store.read(0.3)
        assert 0.25 <= time.monotonic() - started < 2
    finally:
        os.close(fd)
    assert store.read(1)[0] == A  # answers again once released


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"version": 1}',
                                     b'{"version": 1, "record": {"holder": 1}}', b"[]"])
def test_a_file_that_is_not_a_lease_is_unavailable_and_left_alone(
        tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "lease"
    path.write_bytes(content)
    store = FileLeaseStore(path)
    with pytest.raises(LeaseUnavailable):
        store.read(1)
    with pytest.raises(LeaseUnavailable):
        store.write(A, NO_RECORD, 1)
    assert path.read_bytes() == content


def test_a_directory_in_the_way_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "lease").mkdir()
    with pytest.raises(LeaseUnavailable, match="cannot read"):
        FileLeaseStore(tmp_path / "lease").read(1)


def test_the_file_keeps_the_self_fence_time_and_reads_a_record_written_before_it(
        tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease")
    fenced = LeaseRecord("mysql-0", 1.0, 15.0, 0, self_fence=13.0)
    version = store.write(fenced, NO_RECORD, 1)
    assert store.read(1) == (fenced, version)
    # a file an older sidecar wrote, without the field
    (tmp_path / "lease").write_text('{"record": {"duration": 15.0, "holder": "mysql-0", '
                                    '"renewed_at": 1.0, "transitions": 0}, "version": 7}\n')
    assert store.read(1) == (LeaseRecord("mysql-0", 1.0, 15.0, 0, 0.0), "7")
