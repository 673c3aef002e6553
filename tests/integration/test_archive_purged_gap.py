"""A primary that purged binary logs the archiver had not read yet (what issue 18's "Faults"
partition longer than the binlog retention leaves; the partition itself, with the primary's own
expiry: test_archive_partition.py), on real MariaDB: the archiver goes on from where the
primary's oldest binary log begins, the lost range is one warning line, a counted gap and a
break in the index that `archive check` names exactly; the recoverable window stops at the gap
until a base backup is taken after it (docs/backup.md, "Resume, duplicates, gaps"). A diverged
primary stays refused: test_archive_errant.py."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_backup_take import backup_cli
from test_clone import Donor
from test_segment_prune import backed_up_primary

from mysqlsts.adapters.binlog_stream import StreamError, oldest_position
from mysqlsts.cli import cli
from mysqlsts.core.binlog_index import SegmentRecord, breaks, position_text, spans
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.core.purged_past import position_map
from mysqlsts.store.filestore import FileStore
from tests.integration.archive_helpers import (
    archiver_for,
    make_app_table,
    running,
    source,
    wait_archived,
    write_rows,
)
from tests.servers import Server

pytestmark = pytest.mark.integration

GONE = "archive: the primary no longer holds"
REPL_PASSWORD = "repl-secret-1"
REPL = ("repl", REPL_PASSWORD)


def _seq(server: Server) -> int:
    return parse_mariadb(server.value("SELECT @@gtid_binlog_pos"))[0].seq


def _wait(check: Callable[[], bool], what: Callable[[], object], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what()
        time.sleep(0.1)


def _purge_to_newest(primary: Server) -> None:
    newest = primary.sql("SHOW MASTER STATUS")[0]["File"]
    # Purged once InnoDB's binlog checkpoint has moved on.
    _wait(lambda: len(primary.sql(f"PURGE BINARY LOGS TO '{newest}'",
                                  "SHOW BINARY LOGS")) == 1,
          lambda: primary.sql("SHOW BINARY LOGS"))


def _dump_threads(primary: Server) -> list[int]:
    """The primary's binlog dump threads that stream (not one ending on a refusal)."""
    return [int(row["Id"]) for row in primary.sql("SHOW PROCESSLIST")
            if str(row["Command"]).startswith("Binlog Dump")
            and "has sent all binlog" in str(row["State"])]


def _take_backup(primary: Server, secrets: Path, url: str, port: int) -> None:
    donor = Donor(primary, port, secrets)
    try:
        done = backup_cli("--store", url, "--donor", f"127.0.0.1:{port}",
                          "--clone-token-file", str(secrets / "clone-token"))
        assert done.returncode == 0, done.stderr
    finally:
        donor.stop()


def _latest(url: str) -> str:
    listed = backup_cli("list", "--store", url, "--json")
    assert listed.returncode == 0, listed.stderr
    to: str = json.loads(listed.stdout)["recoverable"]["to"]
    return to


def _last_commit_to(records: list[SegmentRecord], seq: int) -> str:
    """The commit time of the record that ends at `seq`, as `backup list` writes a time."""
    [record] = [r for r in records if r.domains[0].last_seq == seq]
    return record.last_commit


def test_an_archive_the_primary_purged_past_goes_on_with_the_gap_named(
        mariadb: Callable[..., Server], free_port: Callable[[], int], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    primary, secrets = backed_up_primary(mariadb, tmp_path)
    make_app_table(primary)
    (tmp_path / "store").mkdir()
    url = f"file://{tmp_path / 'store'}"
    store = FileStore(tmp_path / "store")
    # The set's replication account: REPLICATION SLAVE only, so the oldest binary log's
    # position is read from the stream (no SHOW BINARY LOGS).
    primary.sql(f"CREATE USER repl@'%' IDENTIFIED BY '{REPL_PASSWORD}'",
                "GRANT REPLICATION SLAVE ON *.* TO repl@'%'")
    archiver, stop = archiver_for(primary, store, account=REPL,
                                  start=primary.value("SELECT @@gtid_binlog_pos"))
    with running(archiver, stop):
        write_rows(primary, 1, 10)
        wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
        _take_backup(primary, secrets, url, free_port())
        time.sleep(1.1)  # the archived rows commit in a later second than the backup ends
        write_rows(primary, 11, 5)
        archived = _seq(primary)
        wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    time.sleep(1.1)  # the rows after the gap commit in a later second than those before it

    # The archiver is away; the primary writes and purges what it has not read.
    write_rows(primary, 100, 5)
    primary.sql("FLUSH BINARY LOGS")
    write_rows(primary, 200, 5)
    primary.sql("FLUSH BINARY LOGS")
    _purge_to_newest(primary)  # rows 100..204 now exist only in the tables
    purged = _seq(primary)
    assert purged == archived + 10

    archiver, stop = archiver_for(primary, store, account=REPL)
    with caplog.at_level("INFO"), running(archiver, stop):
        # A quiet primary: the archiver goes on from the purge and has nothing to write yet;
        # a broken link in between keeps the jump and does not say it again.
        _wait(lambda: GONE in caplog.text and len(_dump_threads(primary)) == 1,
              lambda: caplog.text[-3000:])
        [first] = _dump_threads(primary)
        primary.sql(f"KILL {first}")
        _wait(lambda: _dump_threads(primary) not in ([], [first]),
              lambda: (_dump_threads(primary), caplog.text[-3000:]))
        assert archiver.state.segments == 0
        write_rows(primary, 300, 5)
        records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
        assert caplog.text.count(GONE) == 1, caplog.text[-3000:]
        assert (f"{GONE} domain 0 seq {archived + 1}..{purged} (after the archived "
                f"0-100-{archived}; its oldest binary log begins after 0-100-{purged}): a gap; "
                f"going on from 0-100-{purged} (the primary") in caplog.text
        assert "cannot stream from this position: (1236" in caplog.text  # the server's words
        assert "archive: gap in domain" not in caplog.text  # the one line, not a second
        assert "reconnecting" in caplog.text  # the killed link
        assert REPL_PASSWORD not in caplog.text
        # The index record is written before the archiver counts it.
        _wait(lambda: archiver.state.transactions == 5, lambda: archiver.state)
        assert archiver.state.gaps == 1
        assert archiver.position == {0: parse_mariadb(f"0-100-{purged + 5}")[0]}
        # The index names the purged range, no more, no less.
        gap = (f"domain 0: gap, seq {archived + 1}..{purged} missing between "
               f"0-100-{archived} and 0-100-{purged + 1}")
        assert [str(b) for b in breaks(records)] == [gap]
        assert sum(r.transactions for r in records if r.domains[0].first_seq > archived) == 5

        result = CliRunner().invoke(cli, ["archive", "check", "--store", url])
        assert result.exit_code == 1, result.output
        assert gap in result.output
        assert result.output.strip().splitlines()[-1] == (
            f"Error: archive check: 1 problems in {url}")

        # The latest recoverable point stops at the gap, until a base backup stands after it;
        # then it follows the archive again.
        assert _latest(url) == _last_commit_to(records, archived)
        _take_backup(primary, secrets, url, free_port())
        time.sleep(1.1)
        write_rows(primary, 400, 5)
        newest = _seq(primary)
        records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    assert _latest(url) == _last_commit_to(records, newest)
    assert _last_commit_to(records, newest) > _last_commit_to(records, archived)
    assert [str(b) for b in breaks(records)] == [gap]
    assert archiver.state.gaps == 1 and caplog.text.count(GONE) == 1


def test_the_oldest_position_is_read_from_the_stream_without_binlog_monitor(
        mariadb: Callable[..., Server]) -> None:
    """A replication account cannot run SHOW BINARY LOGS: it reads the oldest binary log's
    GTID_LIST over the replication protocol, and finds what BINLOG_GTID_POS says."""
    primary = mariadb("p", server_id=100)
    primary.sql(f"CREATE USER repl@'%' IDENTIFIED BY '{REPL_PASSWORD}'",
                "GRANT REPLICATION SLAVE ON *.* TO repl@'%'")
    root, repl = source(primary), dataclasses.replace(source(primary), user="repl")
    assert oldest_position(root, primary.root_password) == ""
    assert oldest_position(repl, REPL_PASSWORD) == ""
    make_app_table(primary)
    write_rows(primary, 1, 3)
    # Another server id in domain 0 (older than the newest), and a second domain.
    primary.sql("SET SESSION server_id = 101", "INSERT INTO app.t VALUES (50, 'x')",
                "SET SESSION server_id = 100", "SET SESSION gtid_domain_id = 1",
                "INSERT INTO app.t VALUES (60, 'y')", "SET SESSION gtid_domain_id = 0")
    write_rows(primary, 70, 2)
    primary.sql("FLUSH BINARY LOGS")
    _purge_to_newest(primary)
    state = primary.value("SELECT @@gtid_binlog_state")
    assert len(parse_mariadb(state)) == 3, state
    queried = oldest_position(root, primary.root_password)
    assert position_map(queried) == position_map(primary.value("SELECT @@gtid_binlog_pos"))
    assert oldest_position(repl, REPL_PASSWORD) == position_text(position_map(queried))
    with pytest.raises(StreamError, match="cannot"):
        oldest_position(repl, "wrong")


def _write_in_domain(primary: Server, domain: int, first: int, count: int) -> None:
    with contextlib.closing(primary.connect()) as conn, conn.cursor() as cursor:
        cursor.execute(f"SET SESSION gtid_domain_id = {domain}")
        for n in range(first, first + count):
            cursor.execute("INSERT INTO app.t (id, v) VALUES (%s, %s)", (n, f"row {n}"))


def _domain_seq(server: Server, domain: int) -> int:
    return position_map(server.value("SELECT @@gtid_binlog_pos"))[domain].seq


def test_only_the_domains_purged_past_jump_and_none_is_skipped(
        mariadb: Callable[..., Server], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Domain 0 purged past the archive, domain 1 not (nothing written in it meanwhile), and
    domain 2 begun and purged while the archiver was away: domain 0 goes on after its gap,
    domain 1 from the archive's own GTID with every later transaction, domain 2 from where the
    oldest binary log begins (said in the line, not a gap the index can name)."""
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    archiver, stop = archiver_for(primary, store,
                                  start=primary.value("SELECT @@gtid_binlog_pos"))
    with running(archiver, stop):
        write_rows(primary, 1, 3)
        _write_in_domain(primary, 1, 10, 3)
        wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    archived0, archived1 = _domain_seq(primary, 0), _domain_seq(primary, 1)

    write_rows(primary, 100, 4)
    _write_in_domain(primary, 2, 200, 2)
    primary.sql("FLUSH BINARY LOGS")
    _purge_to_newest(primary)
    purged0, begun2 = _domain_seq(primary, 0), _domain_seq(primary, 2)

    archiver, stop = archiver_for(primary, store)
    with caplog.at_level("WARNING"), running(archiver, stop):
        _wait(lambda: GONE in caplog.text, lambda: caplog.text[-3000:])
        _write_in_domain(primary, 1, 20, 3)
        _write_in_domain(primary, 2, 210, 2)
        write_rows(primary, 300, 2)
        records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
    assert (f"{GONE} domain 0 seq {archived0 + 1}..{purged0} (after the archived "
            f"0-100-{archived0}; its oldest binary log begins after 0-100-{purged0}): a gap; "
            f"going on from 0-100-{purged0},1-100-{archived1},2-100-{begun2}; domain 2, which "
            f"the archive holds none of, from 2-100-{begun2} (") in caplog.text
    assert caplog.text.count(GONE) == 1 and archiver.state.gaps == 1
    assert [str(b) for b in breaks(records)] == [
        f"domain 0: gap, seq {archived0 + 1}..{purged0} missing between 0-100-{archived0} and "
        f"0-100-{purged0 + 1}"]
    held = {s.domain: (parse_mariadb(s.first)[0].seq, parse_mariadb(s.last)[0].seq)
            for s in spans(records)}
    assert held[1] == (archived1 - 2, archived1 + 3)  # every domain-1 transaction, none skipped
    assert held[2] == (begun2 + 1, begun2 + 2)
    assert sum(r.transactions for r in records) == 3 + 3 + 3 + 2 + 2
