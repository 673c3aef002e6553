"""Exactness of point-in-time recovery over many random targets (issue 18's figure: 100 restores
to random targets inside the window hold exactly the acknowledged transactions committed at or
before the target, none after).

Three clients insert concurrently and record each acknowledged commit in a ledger (the row's id,
the GTID the server gave that session's commit, and the second the server stamped it with); the
archiver writes the primary's binlog to a file:// store, and two base backups are taken while
the clients write. Then `mysqlsts backup restore` runs for random targets inside the window the
store itself reports (`backup list --json`), half by GTID and half by time, each recovery is
started as a server, and its rows are compared with the ledger:
- a GTID target holds exactly the ledger's transactions up to and including it;
- a time target holds the commits in GTID order up to, not including, the first one stamped
  after the time (the documented rule: a binlog prefix, never a transaction after one left out).
Every miss is collected, so a failure names all the targets that were wrong, not only the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_backup_take import backup_cli
from test_pitr import Entry, ids, ledger_primary, positions, seq, take_backup

from tests.integration.archive_helpers import archiver_for, running, wait_archived
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

TARGETS = int(os.environ.get("MYSQLSTS_PITR_TARGETS", "100"))
SEED = int(os.environ.get("MYSQLSTS_PITR_SEED", "20261205"))
WRITERS = 3


@dataclass(frozen=True)
class Archive:
    url: str
    ledger: tuple[Entry, ...]  # every acknowledged commit, in GTID order
    window: tuple[datetime, datetime]  # `backup list --json`'s recoverable from, to


def client(server: Server, first: int, stop: threading.Event, ledger: list[Entry]) -> None:
    """Insert rows `first`, `first + WRITERS`, ... until `stop`, recording each one acknowledged."""
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cursor:
        n = first
        while not stop.is_set():
            cursor.execute("INSERT INTO app.ledger (id, ts) VALUES (%s, UNIX_TIMESTAMP())", (n,))
            cursor.execute("SELECT @@last_gtid AS g, ts FROM app.ledger WHERE id = %s", (n,))
            row = cursor.fetchone()
            ledger.append(Entry(n, str(row["g"]), int(row["ts"])))
            n += WRITERS
            time.sleep(0.003)


@pytest.fixture(scope="module")
def archive(mariadb_module: MakeServer, free_port: Callable[[], int],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    made = ledger_primary(mariadb_module, free_port(), tmp_path_factory, "exact")
    primary, url, store, donor = made.primary, made.url, made.store, made.donor
    stop = threading.Event()
    ledgers: list[list[Entry]] = [[] for _ in range(WRITERS)]
    clients = [threading.Thread(target=client, args=(primary, w + 1, stop, ledgers[w]),
                                daemon=True) for w in range(WRITERS)]
    try:
        archiver, archiver_stop = archiver_for(primary, store)
        with running(archiver, archiver_stop):
            for thread in clients:
                thread.start()
            for _ in range(2):  # two backups, each taken while the clients write
                time.sleep(2.5)
                take_backup(url, donor.port, made.secrets_dir)
            time.sleep(3.5)
            stop.set()
            for thread in clients:
                thread.join(timeout=30)
            wait_archived(store, None, str(primary.value("SELECT @@gtid_binlog_pos")), 60)
    finally:
        stop.set()
        donor.stop()
    listed = backup_cli("list", "--store", url, "--json")
    assert listed.returncode == 0, listed.stderr
    recoverable = json.loads(listed.stdout)["recoverable"]
    window = (datetime.fromisoformat(recoverable["from"].replace("Z", "+00:00")),
              datetime.fromisoformat(recoverable["to"].replace("Z", "+00:00")))
    ledger = tuple(sorted((e for part in ledgers for e in part), key=lambda e: seq(e.gtid)))
    yield Archive(url, ledger, window)


def expected_at_time(ledger: tuple[Entry, ...], when: datetime) -> tuple[Entry, ...]:
    """The ledger's commits before the first one stamped after `when` (GTID order)."""
    cut = next((i for i, e in enumerate(ledger) if e.ts > when.timestamp()), len(ledger))
    return ledger[:cut]


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_random_targets_inside_the_window_recover_exactly_the_acknowledged_commits(
        archive: Archive, mariadb_module: MakeServer, tmp_path: Path) -> None:
    start, end = archive.window
    # By time the window ends before the second its last transaction committed in.
    last_second = end.replace(microsecond=0)
    assert last_second - start > timedelta(seconds=3), archive.window
    by_gtid = [e for e in archive.ledger
               if start.timestamp() < e.ts < last_second.timestamp()]
    assert len(by_gtid) > 100, len(by_gtid)
    rng = random.Random(SEED)
    misses: list[str] = []
    started = time.monotonic()
    for n in range(TARGETS):
        if n % 2 == 0:
            target = rng.choice(by_gtid)
            option, value = "--to-gtid", target.gtid
            expected = tuple(e for e in archive.ledger if seq(e.gtid) <= seq(target.gtid))
        else:
            when = start + (last_second - start) * rng.random()
            option, value = "--to-time", iso(when)
            expected = expected_at_time(archive.ledger, when)
        data_dir = tmp_path / f"data-{n}"
        done = backup_cli("restore", "--store", archive.url, "--data-dir", str(data_dir),
                          option, value)
        if done.returncode != 0:
            misses.append(f"{option} {value}: exit {done.returncode}: {done.stderr.strip()}")
            continue
        server = mariadb_module(f"exact-{n}", server_id=300, data_dir=data_dir)
        try:
            got = ids(server)
            want = {e.id for e in expected}
            if got != want:
                misses.append(f"{option} {value}: {len(got - want)} rows too many, "
                              f"{len(want - got)} missing")
            elif expected and positions(server) != (expected[-1].gtid, expected[-1].gtid):
                misses.append(f"{option} {value}: positions {positions(server)}, "
                              f"expected {expected[-1].gtid}")
        finally:
            server.stop()
            shutil.rmtree(data_dir)
    took = time.monotonic() - started
    print(f"\npitr exactness: {TARGETS} restores (seed {SEED}) over {len(archive.ledger)} "
          f"acknowledged commits by {WRITERS} clients, {len(misses)} inexact, "
          f"{took / max(TARGETS, 1):.2f} s per restore and check")
    assert misses == [], "\n".join(misses)
