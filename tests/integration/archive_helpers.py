"""What the binlog archive's integration modules share: a stream source, rows, an archiver
run in a thread, waiting for the index to reach a position, and replay of the archived
segments with `mariadb-binlog | mariadb`."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mysqlsts.adapters.binlog_stream import (
    BinlogStream,
    StreamSource,
    oldest_position,
    primary_position,
)
from mysqlsts.archive.archiver import Archiver, ArchiveSettings
from mysqlsts.core.backup_layout import BINLOG_LOCK
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import SegmentRecord, archived_position, position_text
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.binlog_archive import load_records, read_segment
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.lease_objects import ObjectLeaseStore
from tests.localset import LocalSet, LocalSetFactory
from tests.servers import Server


def source(server: Server, server_id: int = 4000000001) -> StreamSource:
    return StreamSource(host=server.host, port=server.port, user="root", server_id=server_id)


def write_rows(server: Server, first: int, count: int) -> None:
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cursor:
        for n in range(first, first + count):
            cursor.execute("INSERT INTO app.t (id, v) VALUES (%s, %s)", (n, f"row {n}"))


def make_app_table(server: Server) -> None:
    server.sql("CREATE DATABASE IF NOT EXISTS app",
               "CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY, v TEXT)")


@contextlib.contextmanager
def running(archiver: Archiver, stop: threading.Event) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=archiver.run, name="archiver", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the archiver did not stop"


def archive_cli_env(primary: Server, store_dir: Path, start: str,
                    lease_seconds: float) -> dict[str, str]:
    """The environment `mysqlsts archive` runs with against `primary` into a file:// store at
    `store_dir`, as root (its password in a file beside the store, never on the command line)."""
    password_file = store_dir.parent / "password"
    password_file.write_text(primary.root_password)
    return {**os.environ, "MYSQLSTS_STORE": f"file://{store_dir}",
            "MYSQLSTS_PRIMARY": f"{primary.host}:{primary.port}",
            "MYSQLSTS_REPLICATION_USER": "root",
            "MYSQLSTS_REPLICATION_PASSWORD_FILE": str(password_file),
            "MYSQLSTS_START_GTID": start, "MYSQLSTS_ARCHIVE_LEASE_SECONDS": str(lease_seconds)}


def archiver_for(primary: Server, store: ObjectStore, keys: BackupKeys | None = None,
                 start: str = "current", progress_every: float = 60.0,
                 server_id: int = 4000000001, account: tuple[str, str] | None = None,
                 port: int | None = None) -> tuple[Archiver, threading.Event]:
    """`account`: (user, password) to stream with, root's when None; `port`: a loopback port
    to reach the primary through (a tests/faultproxy.py proxy), the server's own when None."""
    stop = threading.Event()
    src = source(primary, server_id)
    if port is not None:
        src = dataclasses.replace(src, port=port)
    password = primary.root_password
    if account is not None:
        src = dataclasses.replace(src, user=account[0])
        password = account[1]
    if start == "current":
        # Resolved here, not when the archiver's thread gets to it: a write the test makes
        # just after `running` is then always after the start, never before it (a race).
        start = primary_position(src, password)
    archiver = Archiver(store, keys, lambda: BinlogStream(src, password),
                        lambda: primary_position(src, password),
                        ArchiveSettings(start_position=start, progress_every=progress_every),
                        stop, oldest_position=lambda: oldest_position(src, password))
    return archiver, stop


def wait_archived(store: ObjectStore, keys: BackupKeys | None, position: str,
                  timeout: float = 20.0) -> list[SegmentRecord]:
    """The index once it holds `position` (every domain's GTID), else AssertionError."""
    wanted = {g.domain: g.seq for g in parse_mariadb(position)}
    deadline = time.monotonic() + timeout
    while True:
        records = load_records(store, keys)
        have = archived_position(records)
        if all(d in have and have[d].seq >= seq for d, seq in wanted.items()):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"archive reached {position_text(have)}, not {position}")
        time.sleep(0.05)


def segment_files(records: list[SegmentRecord], store: ObjectStore, keys: BackupKeys | None,
                  work: Path) -> list[str]:
    """The archived segments, decoded into binary log files under `work`, in sequence order."""
    work.mkdir(parents=True, exist_ok=True)
    files = []
    for n, record in enumerate(sorted(records, key=lambda r: r.domains[0].first_seq)):
        path = work / f"segment-{n:06d}.bin"
        path.write_bytes(read_segment(store, record, keys))
        files.append(str(path))
    return files


def archiving_set(local_set: LocalSetFactory, store: Path, replicas: int,
                  lease_seconds: float, env: dict[str, str] | None = None,
                  ) -> tuple[LocalSet, FileStore, ObjectLeaseStore]:
    """A local set archiving into a file:// store at `store` under a short archive lease (and
    `env`), the store, and its archive lease as the archivers see it."""
    local = local_set(replicas=replicas,
                      env={"MYSQLSTS_ARCHIVE_LEASE_SECONDS": str(lease_seconds), **(env or {})},
                      up_args=("--store", f"file://{store}"))
    objects = FileStore(store)
    return local, objects, ObjectLeaseStore(objects, BINLOG_LOCK)


def replay(records: list[SegmentRecord], store: ObjectStore, keys: BackupKeys | None,
           target: Server, work: Path) -> None:
    """`mariadb-binlog SEGMENT... | mariadb` on the decoded segments, in sequence order."""
    files = segment_files(records, store, keys, work)
    defaults = work / "client.cnf"
    defaults.write_text(f"[client]\nuser=root\npassword=\"{target.root_password}\"\n")
    decoded = subprocess.run(["mariadb-binlog", *files], check=True, capture_output=True)
    subprocess.run(["mariadb", f"--defaults-extra-file={defaults}", "--max-allowed-packet=1G",
                    "-h", target.host, "-P",
                    str(target.port), "--protocol=TCP"], input=decoded.stdout, check=True,
                   capture_output=True)
