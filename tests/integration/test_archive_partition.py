"""A network partition between the archiver and the primary (issue 18, "Faults"), on real
MariaDB: the archiver reaches the primary only through a loopback FaultProxy, which blackholes
the link (no byte moves, no FIN or RST: a real partition) while the primary goes on writing.
Longer than the primary's own binlog retention (`binlog_expire_logs_seconds`, applied by the
server at a rotation), the heal is one gap, named with exactly the range the primary expired,
counted, and `archive check` exits 1 on it; shorter, it heals with no gap and every transaction
archived once. Purged by hand while the archiver is away: test_archive_purged_gap.py."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlsts.adapters.binlog_stream import StreamSource
from mysqlsts.archive.archiver import Archiver
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
READ_TIMEOUT = StreamSource.read_timeout  # the product's: what notices a silent link


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


@dataclass
class ProxiedArchive:
    """A primary, the archiver streaming it through `proxy` into `store`, and the index once
    the rows written before the partition (1..10) were archived: `before`."""

    primary: Server
    store: FileStore
    proxy: FaultProxy
    archiver: Archiver
    before: list[SegmentRecord]

    def partition(self, caplog: pytest.LogCaptureFixture) -> float:
        """Blackhole the link; the seconds until the archiver says its stream broke (a read
        that timed out: nothing else ends a link the proxy holds open), with a reconnect
        tried through the silent link."""
        said, accepted = caplog.text.count(BROKE), self.proxy.accepted
        self.proxy.blackhole()
        cut_at = time.monotonic()
        wait_until(lambda: caplog.text.count(BROKE) > said, READ_TIMEOUT + LATE, interval=0.1,
                   what="the stalled stream noticed")
        noticed = time.monotonic() - cut_at
        wait_until(lambda: self.proxy.accepted > accepted, READ_TIMEOUT + LATE, interval=0.1,
                   what="a reconnect through the partitioned link")
        return noticed

    def heal(self, transactions: int) -> list[SegmentRecord]:
        """Heal the link; the index once it holds the primary's position, and the archiver
        has counted `transactions` (it writes the index record first)."""
        assert load_records(self.store, None) == self.before  # nothing while partitioned
        self.proxy.heal()
        records = wait_archived(self.store, None,
                                self.primary.value("SELECT @@gtid_binlog_pos"),
                                timeout=HEALED_WITHIN)
        state = self.archiver.state
        wait_until(lambda: state.transactions == transactions, 10, interval=0.1,
                   what=f"{transactions} transactions counted ({state})")
        return records

    def check(self) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["archive", "check", "--store",
                                          self.store.describe()])
        return result.exit_code, result.output


@contextlib.contextmanager
def _archiving(mariadb: Callable[..., Server], free_port: Callable[[], int],
               tmp_path: Path) -> Iterator[ProxiedArchive]:
    primary = mariadb("p", server_id=100)
    make_app_table(primary)
    (tmp_path / "store").mkdir()
    store = FileStore(tmp_path / "store")
    with FaultProxy(free_port(), primary.port) as proxy:
        archiver, stop = archiver_for(primary, store, port=proxy.listen[1],
                                      start=primary.value("SELECT @@gtid_binlog_pos"))
        with running(archiver, stop):
            write_rows(primary, 1, 10)
            before = wait_archived(store, None, primary.value("SELECT @@gtid_binlog_pos"))
            assert proxy.bytes_down > 0  # the archiver streams through the proxy
            yield ProxiedArchive(primary, store, proxy, archiver, before)


def test_a_partition_longer_than_the_retention_heals_with_the_expired_range_one_gap(
        mariadb: Callable[..., Server], free_port: Callable[[], int], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"), _archiving(mariadb, free_port, tmp_path) as link:
        primary, archiver = link.primary, link.archiver
        archived = _seq(primary)
        noticed = link.partition(caplog)
        # Nobody tells the archiver: its read timeout ends the link, which the primary's
        # heartbeat (every half second) keeps from ending a quiet but live one.
        assert READ_TIMEOUT - 2 <= noticed <= READ_TIMEOUT + LATE, noticed
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
        assert archiver.state.segments == len(link.before) and archiver.state.gaps == 0
        assert GONE not in caplog.text
        records = link.heal(15)
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
    assert _archived_seqs(records) == [*range(archived - 9, archived + 1),
                                       *range(purged + 1, purged + 6)]
    code, output = link.check()
    assert code == 1 and gap in output, output


def test_a_partition_shorter_than_the_retention_heals_with_every_transaction_once(
        mariadb: Callable[..., Server], free_port: Callable[[], int], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"), _archiving(mariadb, free_port, tmp_path) as link:
        primary, archiver = link.primary, link.archiver
        archived = _seq(primary)
        primary.sql("SET GLOBAL binlog_expire_logs_seconds = 3600")
        link.partition(caplog)
        write_rows(primary, 100, 5)
        primary.sql("FLUSH BINARY LOGS")  # rotated, not expired: an hour's retention
        write_rows(primary, 200, 5)
        records = link.heal(20)
    assert "streaming again from the primary" in caplog.text
    assert GONE not in caplog.text and archiver.state.gaps == 0
    assert archiver.state.duplicates == 0
    assert breaks(records) == []
    assert _archived_seqs(records) == list(range(archived - 9, archived + 11))
    code, output = link.check()
    assert code == 0, output
