"""An errant write on a replica (issue 18, "Faults"), on real MariaDB servers with
gtid_strict_mode: the archiver reads the primary's binary log, so a write made directly on a
replica (its own server id, a GTID in domain 0) is not archived as the primary's. If that replica
later becomes the primary, the archive does not take its history as following what is archived:
when the old primary wrote past the errant transaction, the new primary cannot stream from the
archived position, the archiver says so on every attempt and writes nothing; when it did not,
the errant transaction follows in the new primary's binary log and is archived as the new
primary's, with a line naming the change of writer (docs/backup.md, "An errant write on a
replica")."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mysqlsts.core.binlog_index import (
    SegmentRecord,
    archived_position,
    breaks,
    newest_commit,
    position_text,
)
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import (
    archiver_for,
    make_app_table,
    replay,
    running,
    wait_archived,
    write_rows,
)
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration


def _replicate(replica: Server, primary: Server) -> None:
    replica.sql("STOP SLAVE", "SET GLOBAL gtid_slave_pos = "
                f"'{primary.value('SELECT @@gtid_binlog_pos')}'",
                f"CHANGE MASTER TO master_host='{primary.host}', master_port={primary.port}, "
                f"master_user='root', master_password='{primary.root_password}', "
                "master_use_gtid=slave_pos", "START SLAVE")


def _wait(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _caught_up(replica: Server, primary: Server) -> None:
    position = primary.value("SELECT @@gtid_binlog_pos")
    _wait(lambda: replica.value("SELECT @@gtid_slave_pos") == position,
          f"{replica.name} did not reach {position}: {replica.sql('SHOW SLAVE STATUS')}")


def _promote(new: Server, old: Server) -> None:
    """The old primary goes; the replica stops replicating and takes writes."""
    old.stop()
    new.sql("STOP SLAVE", "RESET SLAVE ALL")


def _servers(records: list[SegmentRecord]) -> set[int]:
    return {parse_mariadb(gtid)[0].server_id for r in records for d in r.domains
            for gtid in (d.first, d.last)}


def _errant_setup(mariadb: MakeServer, store: FileStore,
                  ) -> tuple[Server, Server, int]:
    """old (100) primary, new (101) its replica, an archive of old's writes; an errant insert on
    new, which is not archived. The sequence number old's last archived transaction has."""
    old = mariadb("old", server_id=100)
    new = mariadb("new", server_id=101)
    _replicate(new, old)
    archiver, stop = archiver_for(old, store,
                                  start=old.value("SELECT @@gtid_binlog_pos") or "oldest")
    with running(archiver, stop):
        make_app_table(old)
        write_rows(old, 1, 20)
        _caught_up(new, old)
        new.sql("INSERT INTO app.t (id, v) VALUES (1000, 'errant')")
        errant = new.value("SELECT @@gtid_binlog_pos")
        position = old.value("SELECT @@gtid_binlog_pos")
        assert parse_mariadb(errant)[0].seq == parse_mariadb(position)[0].seq + 1
        assert parse_mariadb(errant)[0].server_id == 101
        time.sleep(1.5)  # a segment's time and more: had the archiver seen it, it would be there
        records = wait_archived(store, None, position)
    assert archiver.state.gaps == 0 and archiver.state.duplicates == 0
    assert breaks(records) == []
    assert _servers(records) == {100}  # the replica's write is not the primary's
    assert position_text(archived_position(records)) == position
    return old, new, parse_mariadb(position)[0].seq


def test_an_errant_write_is_not_archived_and_a_promoted_replica_past_it_is_refused(
        mariadb: MakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    old, new, seq = _errant_setup(mariadb, store)
    # The old primary writes on past the errant transaction: the archive follows it, the
    # replica (strict mode) cannot apply it over its own transaction with the same number.
    archiver, stop = archiver_for(old, store)
    with running(archiver, stop):
        write_rows(old, 21, 5)
        records = wait_archived(store, None, old.value("SELECT @@gtid_binlog_pos"))
    assert archiver.state.gaps == 0 and breaks(records) == []
    assert _servers(records) == {100}
    archived = position_text(archived_position(records))
    assert archived == f"0-100-{seq + 5}"
    _wait(lambda: new.sql("SHOW SLAVE STATUS")[0]["Last_SQL_Errno"] == 1950,
          f"the replica applied past its errant write: {new.sql('SHOW SLAVE STATUS')}")
    # The replica becomes the primary and writes past the archived sequence number: a resume
    # by number alone would continue after 0-101-{seq+5} and miss its errant transaction.
    _promote(new, old)
    write_rows(new, 100, 10)
    assert parse_mariadb(new.value("SELECT @@gtid_binlog_pos"))[0].seq > seq + 5
    archiver, stop = archiver_for(new, store)
    with caplog.at_level("WARNING"), running(archiver, stop):
        _wait(lambda: caplog.text.count("cannot stream from this position: (1236") >= 2,
              f"no refusal reported: {caplog.text[-2000:]}")
    assert position_text(archiver.position) == archived  # asked for, never moved on
    # Its lag grows from the archive's newest commit, so MysqlstsArchiveLagHigh fires.
    assert archiver.state.last_commit == newest_commit(records) > 0
    assert archiver.state.transactions == 0 and archiver.state.segments == 0
    # The primary's own words name the position it cannot find, and why.
    assert (f"requested to start from GTID {archived}, which is not in the master's binlog"
            in caplog.text), caplog.text[-2000:]
    after = load_records(store, None)
    assert sorted(r.segment for r in after) == sorted(r.segment for r in records)
    assert breaks(after) == []


def test_an_errant_write_with_nothing_after_it_is_archived_as_the_new_primarys(
        mariadb: MakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing the old primary wrote after it: in the promoted replica's binary log the errant
    transaction follows the archived one, and the archive takes it as the new primary's first
    (what `breaks` cannot tell from a takeover); the archive then replays to the new primary's
    tables, the errant row included."""
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    old, new, seq = _errant_setup(mariadb, store)
    restored = mariadb("r", server_id=200)
    _promote(new, old)
    write_rows(new, 100, 5)
    archiver, stop = archiver_for(new, store)
    with caplog.at_level("INFO"), running(archiver, stop):
        records = wait_archived(store, None, new.value("SELECT @@gtid_binlog_pos"))
    # Said once, where the domain's writer changes: the first of the new primary's
    # transactions, here the errant one.
    assert caplog.text.count("archive: domain 0 now written by server 101") == 1
    assert (f"0-101-{seq + 1} follows 0-100-{seq} (a new primary, or a transaction written "
            "on a replica before its promotion)") in caplog.text
    assert archiver.state.gaps == 0 and archiver.state.duplicates == 0
    assert breaks(records) == []
    first_of_new = min((r for r in records if _servers([r]) >= {101}),
                       key=lambda r: r.domains[0].first_seq)
    assert first_of_new.domains[0].first == f"0-101-{seq + 1}"  # the errant transaction
    replay(records, store, None, restored, tmp_path / "replay")
    assert restored.checksum("app.t") == new.checksum("app.t")
    assert restored.value("SELECT v FROM app.t WHERE id = 1000") == "errant"
