"""The archiver cut off from the primary for longer than its binary logs last (issue 18,
"Faults"), on a real 2-pod local set with `--store`, through the pods' own code paths: mysql-1's
sidecar archives with the set's replication account; the primary locks that account (its own
tables, not replicated: a partition seen from the primary) and ends the archiver's dump thread,
the replica's I/O thread stays connected; under a client ledger the primary writes, rotates and
is purged by hand to its newest binary log; the account unlocked, the archiver goes on past the
purge: one line, one counted gap on mysql-1's metrics, a break in the index that `archive check`
names exactly, the recoverable window and the primary's purger (its sidecar's) stopping at the gap
until `local backup` takes a base after it, and `local restore` of the latest point holding every
acknowledged write (docs/backup.md, "Resume, duplicates, gaps", "Nothing purged unarchived")."""

from __future__ import annotations

import contextlib
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from test_archive_purged_gap import GONE, _last_commit_to, _latest, _wait
from test_local_archive_primary_kill import _holder
from test_local_set_outage import metric
from test_pitr_local import write

from mysqlsts.core.binlog_index import archived_position, breaks
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.store.binlog_archive import load_records
from tests.integration.archive_helpers import archiving_set, wait_archived
from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration

LEASE = 15.0  # the default: mysql-1 keeps the lease while cut off (it renews through the store)
LOCKED = "this account is locked"  # the archiver's line while it cannot connect
# The primary's sidecar purges what is archived every second, without waiting for a day.
PURGER = {"MYSQLSTS_ARCHIVE_BINLOG_KEEP_HOURS": "0", "MYSQLSTS_ARCHIVE_PURGE_INTERVAL": "1"}
Ledger = list[tuple[int, str, int]]  # (id, GTID, commit second) of each acknowledged insert


def _dump_ports(local: LocalSet) -> dict[int, int]:
    """The primary's binlog dump threads: client port → thread id."""
    return {int(str(host).rsplit(":", 1)[1]): int(thread) for thread, host in local.sql(
        0, "SELECT id, host FROM information_schema.processlist "
           "WHERE command LIKE 'Binlog Dump%'")}


def _archiver_dumps(local: LocalSet) -> list[int]:
    """The dump threads not streaming to a server's I/O thread (the sidecar archiver's): the
    process owning each client socket, as `ss` sees it."""
    dumps = _dump_ports(local)
    owners = {}
    for line in subprocess.run(["ss", "-Htnp"], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[3].rsplit(":", 1)[1].isdigit():
            owners[int(fields[3].rsplit(":", 1)[1])] = fields[5]
    return [thread for port, thread in dumps.items() if '"mariadbd"' not in owners.get(port, "")]


def _cut(local: LocalSet, lock: bool) -> None:
    """Lock (or unlock) the replication account on the primary alone, and end the archiver's
    stream: it cannot connect again until unlocked."""
    with contextlib.closing(local.connect(0)) as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_log_bin = 0")
        cursor.execute(f"ALTER USER repl@'%' ACCOUNT {'LOCK' if lock else 'UNLOCK'}")
    if lock:
        for thread in _archiver_dumps(local):
            local.sql(0, f"KILL {thread}")


def _binlogs(local: LocalSet) -> list[str]:
    return [str(row[0]) for row in local.sql(0, "SHOW BINARY LOGS")]


def _seq(gtid: str) -> int:
    return parse_mariadb(gtid)[0].seq


def test_a_set_archives_past_a_purge_with_the_gap_named(
        local_set: LocalSetFactory, tmp_path: Path) -> None:
    store = tmp_path / "store"
    url = f"file://{store}"
    local, objects, leases = archiving_set(local_set, store, 2, LEASE, env=PURGER)
    _wait(lambda: _holder(leases).startswith("mysql-1/"), local.diagnostics,  # a replica's
          timeout=60)
    local.sql(0, "CREATE DATABASE app",
              "CREATE TABLE app.ledger (id INT PRIMARY KEY, ts BIGINT NOT NULL)")
    ledger: Ledger = []
    write(local, 1, 10, ledger)
    local.run("backup", "--dir", str(local.directory))
    time.sleep(1.05)  # archived rows commit in a later second than the backup ends
    write(local, 11, 10, ledger)
    wait_archived(objects, None, str(local.value(0, "SELECT @@gtid_binlog_pos")))

    _cut(local, lock=True)
    # The archiver's stream broke (what it held is written before it says so), and it cannot
    # connect again.
    _wait(lambda: LOCKED in local.log(1, "sidecar"), lambda: local.log(1, "sidecar")[-3000:])
    archived = archived_position(load_records(objects, None))[0]
    assert _archiver_dumps(local) == [] and len(_dump_ports(local)) == 1  # the replica's
    cut_at = len(ledger)
    time.sleep(1.05)
    write(local, 100, 5, ledger)
    local.sql(0, "FLUSH BINARY LOGS")
    write(local, 200, 5, ledger)
    local.sql(0, "FLUSH BINARY LOGS")
    local.wait_caught_up([1], timeout=60)  # the replica reads the newest file: not broken
    newest = local.sql(0, "SHOW MASTER STATUS")[0][0]
    # The operator's hand purge, as root (it takes once InnoDB's binlog checkpoint moved on).
    _wait(lambda: len(local.sql(0, f"PURGE BINARY LOGS TO '{newest}'", "SHOW BINARY LOGS")) == 1,
          lambda: _binlogs(local))
    begins = str(local.value(0, f"SELECT BINLOG_GTID_POS('{newest}', 4)"))
    purged = parse_mariadb(begins)[0]
    assert purged.domain == 0 and len(parse_mariadb(begins)) == 1, begins
    after_purge = len(ledger)
    write(local, 300, 5, ledger)
    _cut(local, lock=False)

    records = wait_archived(objects, None, str(local.value(0, "SELECT @@gtid_binlog_pos")),
                            timeout=60)
    # Each ledger row is on its side of the gap: archived before the cut, in the purged range
    # during it, archived after the purge.
    gtids = [_seq(gtid) for _, gtid, _ in ledger]
    assert max(gtids[:cut_at]) <= archived.seq < min(gtids[cut_at:])
    assert all(archived.seq < seq <= purged.seq for seq in gtids[cut_at:after_purge])
    assert min(gtids[after_purge:]) > purged.seq
    sid = archived.server_id
    gap = (f"domain 0: gap, seq {archived.seq + 1}..{purged.seq} missing between "
           f"0-{sid}-{archived.seq} and 0-{sid}-{purged.seq + 1}")
    assert [str(b) for b in breaks(records)] == [gap]
    log = local.log(1, "sidecar")
    assert log.count(GONE) == 1, log[-3000:]
    assert (f"{GONE} domain 0 seq {archived.seq + 1}..{purged.seq} (after the archived "
            f"{archived}; its oldest binary log begins after {purged}): a gap; going on from "
            f"{purged} (") in log, log[-3000:]
    assert metric(local, 1, "mysqlsts_archive_gaps_total") == 1
    check = subprocess.run([*mysqlsts_command(), "archive", "check", "--store", url],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 1, check.stdout + check.stderr
    assert gap in check.stdout + check.stderr
    assert "archive check: 1 problems" in check.stderr, check.stderr
    # The window stops at the last transaction before the gap, and the primary's purger stops:
    # the file after the purge holds only archived transactions, but after the gap.
    assert _latest(url) == _last_commit_to(records, archived.seq)
    local.sql(0, "FLUSH BINARY LOGS")
    _wait(lambda: metric(local, 0, "mysqlsts_binlog_purge_blocked") == 1,
          lambda: local.log(0, "sidecar")[-3000:], timeout=30)
    blocked = (f"purge: no binary log purged: the archive in {url} is not contiguous ({gap}) "
               "and no base backup stands after it")
    assert local.log(0, "sidecar").count(blocked) == 1, local.log(0, "sidecar")[-3000:]
    assert newest in _binlogs(local)

    # A base backup after the gap: the window reaches the newest write again, and the latest
    # point restores every acknowledged write.
    local.run("backup", "--dir", str(local.directory))
    time.sleep(1.05)
    write(local, 400, 5, ledger)
    # ...and the primary's purger goes on: the files before the backup's position go.
    _wait(lambda: metric(local, 0, "mysqlsts_binlog_purge_blocked") == 0
          and newest not in _binlogs(local), lambda: local.log(0, "sidecar")[-3000:], timeout=30)
    assert "; base backup at 0-" in local.log(0, "sidecar")
    assert "purge: purging archived binary logs again" in local.log(0, "sidecar")
    assert local.log(0, "sidecar").count(blocked) == 1
    wait_archived(objects, None, ledger[-1][1], timeout=30)
    to = _latest(url)
    assert datetime.fromisoformat(to).timestamp() >= ledger[-1][2], (to, ledger[-1])
    target = local_set.unstarted()
    with target.brought_down():
        target.run("restore", "--dir", str(target.directory), "--from", url,
                   "--base-port", str(target.base_port), "--timeout", "600")
        target.wait_ready(1, timeout=60)
        ids = {int(r[0]) for r in target.sql(0, "SELECT id FROM app.ledger")}
    assert ids == {n for n, _, _ in ledger}
    assert local.log(1, "sidecar").count(GONE) == 1
    assert metric(local, 1, "mysqlsts_archive_gaps_total") == 1
