"""A network partition between the archiver and the primary (issue 18, "Faults"), on real
MariaDB: the archiver reaches the primary only through a loopback FaultProxy, which blackholes
the link (no byte moves, no FIN or RST: a real partition) while the primary goes on writing.
Longer than the primary's own binlog retention (`binlog_expire_logs_seconds`, applied by the
server at a rotation), the heal is one gap, named with exactly the range the primary expired,
counted, and `archive check` exits 1 on it; shorter, it heals with no gap and every transaction
archived once. Purged by hand while the archiver is away: test_archive_purged_gap.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.core.binlog_index import SegmentRecord, breaks
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.filestore import FileStore
from tests.faultproxy import FaultProxy
from tests.integration.archive_helpers import (
    archiver_for,
    make_app_table,
    running,
    source,
    wait_archived,
    write_rows,
)
from tests.integration.probe_fixtures import wait_until
from tests.servers import Server

pytestmark = pytest.mark.integration

GONE = "archive: the primary no longer holds"
# The stream's read timed out (pymysql's words): no FIN or RST ended the link.
BROKE = "broke: (2013) Lost connection to MySQL server during query (timed out)"
# A loaded 2-core machine: how late past the read timeout the stall may be said, and how long
# a heal may take to be archived (a reconnect backs off up to 5 s, then a handshake).
LATE = 5.0
HEALED_WITHIN = 60.0


def _seq(server: Server) -> int:
    return parse_mariadb(server.value("SELECT @@gtid_binlog_pos"))[0].seq


def _binlogs(primary: Server) -> list[str]:
    return [str(row["Log_name"]) for row in primary.sql("SHOW BINARY LOGS")]


def _expired(primary: Server, held: list[str]) -> bool:
    """Rotate, so the server applies its retention; True once none of `held` is left."""
    primary.sql("FLUSH BINARY LOGS")
    return not set(held) & set(_binlogs(primary))


def _archived_seqs(records: list[SegmentRecord]) -> list[int]:
    """Every archived seq of domain 0, in order, each as often as it is archived."""
    return sorted(seq for r in records for d in r.domains if d.domain == 0
                  for seq in range(d.first_seq, d.last_seq + 1))


def _partitioned(proxy: FaultProxy, caplog: pytest.LogCaptureFixture, timeout: float) -> float:
    """Blackhole the link; the seconds until the archiver says its stream broke (a read that
    timed out: nothing else ends a link the proxy holds open), with a reconnect attempted."""
    said, accepted = caplog.text.count(BROKE), proxy.accepted
    proxy.blackhole()
    cut_at = time.monotonic()
    wait_until(lambda: caplog.text.count(BROKE) > said, timeout, interval=0.1,
               what="the stalled stream noticed")
    noticed = time.monotonic() - cut_at
    wait_until(lambda: proxy.accepted > accepted, timeout, interval=0.1,
               what="a reconnect through the partitioned link")
    return noticed


def _check(url: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["archive", "check", "--store", url])
    return result.exit_code, result.output


def test_a_partition_longer_than_the_retention_heals_with_the_expired_range_one_gap(
        mariadb: Callable[..., Server], free_port: Callable[[], int], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    (tmp_path / "store").mkdir()
    url, store = f"file://{tmp_path / 'store'}", FileStore(tmp_path / "store")
    read_timeout = source(primary).read_timeout
    with FaultProxy(free_port(), primary.port) as proxy, caplog.at_level("INFO"):
        archiver, stop = archiver_for(primary, store, port=proxy.listen[1],
                                      start=primary.value("SELECT @@gtid_binlog_pos"))
        with running(archiver, stop):
            write_rows(primary, 1, 10)
            before = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
            archived = _seq(primary)
            assert proxy.bytes_down > 0  # the archiver streams through the proxy

            noticed = _partitioned(proxy, caplog, read_timeout + LATE)
            # Nobody tells the archiver: its read timeout ends the link, which the primary's
            # heartbeat (every half second) keeps from ending a quiet but live one.
            assert read_timeout - 2 <= noticed <= read_timeout + LATE, noticed
            write_rows(primary, 100, 5)  # lost: the primary expires them before the heal
            held = _binlogs(primary)
            primary.sql("SET GLOBAL binlog_expire_logs_seconds = 1")
            # A file is expired a second after its last write, at a rotation, once InnoDB's
            # binlog checkpoint has moved past it.
            wait_until(lambda: _expired(primary, held), 20, interval=0.3,
                       what="the primary's retention expiring its binary logs")
            primary.sql("SET GLOBAL binlog_expire_logs_seconds = 0")
            oldest = _binlogs(primary)[0]
            purged = _seq(primary)
            assert purged == archived + 5
            assert primary.value(f"SELECT BINLOG_GTID_POS('{oldest}', 4)") == f"0-100-{purged}"
            write_rows(primary, 200, 5)  # after the purge point: still in the binary logs
            assert load_records(store, None) == before  # nothing archived while partitioned
            assert archiver.state.segments == len(before) and archiver.state.gaps == 0
            assert GONE not in caplog.text

            proxy.heal()
            records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"),
                                    timeout=HEALED_WITHIN)
            # The index record is written before the archiver counts it.
            wait_until(lambda: archiver.state.transactions == 15, 10, interval=0.1,
                       what=f"15 transactions counted ({archiver.state})")
    assert caplog.text.count(GONE) == 1, caplog.text[-3000:]
    assert (f"{GONE} domain 0 seq {archived + 1}..{purged} (after the archived "
            f"0-100-{archived}; its oldest binary log begins after 0-100-{purged}): a gap; "
            f"going on from 0-100-{purged} (the primary") in caplog.text
    assert "archive: gap in domain" not in caplog.text  # the one line, not a second
    assert primary.root_password not in caplog.text
    assert archiver.state.gaps == 1 and archiver.state.duplicates == 0
    gap = (f"domain 0: gap, seq {archived + 1}..{purged} missing between 0-100-{archived} and "
           f"0-100-{purged + 1}")
    assert [str(b) for b in breaks(records)] == [gap]
    # Everything before the partition and everything after the purge point, each once;
    # exactly the transactions written in the partition before the expiry are missing.
    first = archived - 9
    assert _archived_seqs(records) == [*range(first, archived + 1),
                                    *range(purged + 1, purged + 6)]
    code, output = _check(url)
    assert code == 1 and gap in output, output


def test_a_partition_shorter_than_the_retention_heals_with_every_transaction_once(
        mariadb: Callable[..., Server], free_port: Callable[[], int], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    primary.sql("SET GLOBAL binlog_expire_logs_seconds = 3600")
    (tmp_path / "store").mkdir()
    url, store = f"file://{tmp_path / 'store'}", FileStore(tmp_path / "store")
    read_timeout = source(primary).read_timeout
    start = _seq(primary)
    with FaultProxy(free_port(), primary.port) as proxy, caplog.at_level("INFO"):
        archiver, stop = archiver_for(primary, store, port=proxy.listen[1],
                                      start=primary.value("SELECT @@gtid_binlog_pos"))
        with running(archiver, stop):
            write_rows(primary, 1, 10)
            before = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
            _partitioned(proxy, caplog, read_timeout + LATE)
            write_rows(primary, 100, 5)
            primary.sql("FLUSH BINARY LOGS")  # rotated, not expired: an hour's retention
            write_rows(primary, 200, 5)
            assert load_records(store, None) == before
            proxy.heal()
            records = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"),
                                    timeout=HEALED_WITHIN)
            wait_until(lambda: archiver.state.transactions == 20, 10, interval=0.1,
                       what=f"20 transactions counted ({archiver.state})")
    assert "streaming again from the primary" in caplog.text
    assert GONE not in caplog.text and archiver.state.gaps == 0
    assert archiver.state.duplicates == 0
    assert breaks(records) == []
    assert _archived_seqs(records) == list(range(start + 1, start + 21))
    code, output = _check(url)
    assert code == 0, output
