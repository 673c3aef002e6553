"""`take_backup` over a file:// store, fed a real xbstream (made by Debian's mbstream) by a
stand-in for the donor's session: the manifest goes in only over every part, and another
backup's cleanup of "killed" backups cannot leave a manifest naming removed parts."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from bench.backup_bench import SPLIT, TIMELINE
from mysqlsts.clone.receiver import Session, Timeouts
from mysqlsts.clone.to_backup import INCOMPLETE_GRACE, remove_incomplete, take_backup
from mysqlsts.core.backup_layout import (
    BACKUPS,
    backup_id,
    backup_of,
    backup_started,
    manifest_name,
    part_name,
)
from mysqlsts.errors import MysqlstsError
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.filestore import FileStore
from tests.countingstore import CountingStore

CHUNK = 256 * 1024


@pytest.fixture
def stream(tmp_path: Path) -> bytes:
    if shutil.which("mbstream") is None:
        pytest.skip("mbstream is not installed (scripts/setup-host test)")
    source = tmp_path / "source"
    source.mkdir()
    (source / "ibdata1").write_bytes(os.urandom(3_000_000))
    (source / "xtrabackup_binlog_info").write_text("mysql-bin.000003\t385\t0-100-42\n")
    (source / "xtrabackup_info").write_text("server_version = 10.11.6-MariaDB\n")
    return subprocess.run(["mbstream", "-c", "ibdata1", "xtrabackup_binlog_info",
                           "xtrabackup_info"], cwd=source, check=True,
                          capture_output=True).stdout


class StreamSession:
    """What take_backup needs of a donor's session: the stream handed to `write` in chunks,
    `midway` called once half of it has gone."""

    def __init__(self, data: bytes, midway: Callable[[], None] = lambda: None) -> None:
        self.data = data
        self.midway = midway

    def receive_to(self, write: Callable[[memoryview], None], timeouts: Timeouts) -> int:
        for offset in range(0, len(self.data), CHUNK):
            if offset >= len(self.data) // 2 and self.midway:
                self.midway()
                self.midway = None  # type: ignore[assignment]
            write(memoryview(self.data[offset:offset + CHUNK]))
        return len(self.data)


def take(store: FileStore, session: StreamSession, flavor: str = "mariadb") -> Any:
    return take_backup(cast(Session, session), store, None, set_name="mysql.mysql",
                       flavor=flavor, timeouts=Timeouts(), part_size=512 * 1024,
                       parallel=2)


def test_a_backup_commits_its_manifest_over_every_part(stream: bytes, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    manifest = take(store, StreamSession(stream))
    assert (manifest.gtid, manifest.server_version) == ("0-100-42", "10.11.6-MariaDB")
    assert [m.backup_id for m in read_catalog(store).backups] == [manifest.backup_id]
    assert len(manifest.parts) >= 5


def test_a_backup_marks_its_timeline_at_debug_as_the_bench_reads_it(
        stream: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The steps the backup bench splits a backup's wall time by come from the real code path
    (clone/to_backup.py, store/parts.py), in lines the bench's pattern reads."""
    (tmp_path / "store").mkdir()
    with caplog.at_level(logging.DEBUG):
        take(FileStore(tmp_path / "store"), StreamSession(stream))
    lines = [r.getMessage() for r in caplog.records if "backup timeline" in r.getMessage()]
    steps = [found[1] for line in lines if (found := TIMELINE.fullmatch(line))]
    assert len(steps) == len(lines) == len(set(steps))
    # Marked by take_backup's own thread, in this order (the part's steps by the writer's).
    known = [name for name, _ in SPLIT]
    assert [s for s in steps if not s.startswith("first_part_")] == [
        "first_byte", "last_byte", "parts_stored", "parts_checked", "manifest_written"]
    assert set(steps) <= set(known) and {"first_part_cut", "first_part_upload",
                                         "first_part_stored"} <= set(steps)


def test_parts_removed_under_a_running_backup_fail_it(stream: bytes, tmp_path: Path) -> None:
    """A backup that runs longer than the cleanup's grace looks killed to another backup's
    cleanup; if its parts go, it must fail rather than commit a manifest naming them."""
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")

    def another_backups_cleanup() -> None:
        deadline = time.monotonic() + 30
        while not list(store.list(BACKUPS)):  # a part of ours is written
            assert time.monotonic() < deadline, "no part was written"
            time.sleep(0.01)
        later = datetime.now(UTC) + timedelta(days=1)
        assert len(remove_incomplete(store, later)) == 1

    # Which part is named depends on how many were written when the cleanup ran (parts are
    # packed ahead and written in parallel).
    with pytest.raises(MysqlstsError, match=r"lost parts while it ran .*part-\d{6} is missing"):
        take(store, StreamSession(stream, another_backups_cleanup))
    catalog = read_catalog(store)
    assert (catalog.backups, catalog.incomplete) == ((), ())  # no manifest, its parts removed


def test_an_id_naming_no_real_time_is_never_removed(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    impossible, old = "20261399T999999Z-aaaaaa", "20200101T000000Z-bbbbbb"
    assert backup_started(impossible) is None
    assert backup_started(old) == datetime(2020, 1, 1, tzinfo=UTC)
    for backup in (impossible, old):
        store.put_new(part_name(backup, 1), b"part")
    assert remove_incomplete(store, datetime.now(UTC)) == [old]
    assert read_catalog(store).incomplete == (impossible,)


def test_a_flavor_other_than_the_donors_is_refused(stream: bytes, tmp_path: Path) -> None:
    """A restore picks its backup tool by the manifest's flavor, so it must be the data's."""
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    with pytest.raises(MysqlstsError, match="the donor runs 10.11.6-MariaDB, not mysql"):
        take(store, StreamSession(stream), flavor="mysql")
    assert list(store.list()) == []


def test_a_backup_that_outlasts_the_cleanup_grace_is_not_committed(stream: bytes,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    start = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    calls: list[datetime] = []

    def clock() -> datetime:  # the start, then six hours on
        calls.append(start)
        return start if len(calls) == 1 else start + INCOMPLETE_GRACE

    with pytest.raises(MysqlstsError, match="took 6:00:00, past the 6:00:00 after which"):
        take_backup(cast(Session, StreamSession(stream)), store, None, set_name="mysql.mysql",
                    flavor="mariadb", timeouts=Timeouts(), part_size=512 * 1024,
                    now=clock)
    catalog = read_catalog(store)
    assert (catalog.backups, catalog.incomplete) == ((), ())


class CommitsWhileListed(FileStore):
    """A store in which a backup commits its manifest just after a cleanup listed it."""

    def __init__(self, root: Path, manifest: tuple[str, bytes]) -> None:
        super().__init__(root)
        self.manifest = manifest

    def list(self, prefix: str = "") -> Any:
        listed = list(super().list(prefix))
        if prefix == BACKUPS and self.manifest:
            self.put_new(*self.manifest)
            self.manifest = ("", b"")
        return iter(listed)


def test_the_cleanup_leaves_a_backup_that_committed_after_its_listing(tmp_path: Path) -> None:
    old = "20200101T000000Z-cccccc"
    store = CommitsWhileListed(tmp_path, (manifest_name(old), b"{}"))
    store.put_new(part_name(old, 1), b"part")
    assert remove_incomplete(store, datetime.now(UTC)) == []
    assert (tmp_path / part_name(old, 1)).exists()


def test_the_cleanup_finds_killed_backups_from_one_listing_reading_no_manifest(
        tmp_path: Path) -> None:
    """The cleanup runs before every backup: its cost must not grow with the backups kept."""
    store = CountingStore(FileStore(tmp_path))
    committed = [f"2020010{day}T000000Z-dddddd" for day in range(1, 8)]
    for backup in committed:
        store.put_new(part_name(backup, 1), b"part")
        store.put_new(manifest_name(backup), b"not even a manifest")  # damaged: kept too
    killed, running = "20200101T000000Z-eeeeee", backup_id(datetime.now(UTC), "ffffff")
    for backup in (killed, running):
        store.put_new(part_name(backup, 1), b"part")
    assert remove_incomplete(store, datetime.now(UTC)) == [killed]
    assert store.gets == []
    assert {backup_of(info.name) for info in store.list(BACKUPS)} == {*committed, running}
