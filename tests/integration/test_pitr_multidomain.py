"""Point-in-time recovery over two GTID domains on real MariaDB, through the real CLI: a
primary written by two clients, one of them in `gtid_domain_id=1`, under a ledger of every
row's id, GTID and commit second; the archiver writing its binlog to a file:// store, a base
backup (at a two-domain position) in the middle. The oracle's order is the primary's own
binlog (`SHOW BINLOG EVENTS`): each recovery, started as a server, must hold exactly the
ledger's prefix in that order through a GTID of either domain, before a time, or to the
latest, and gtid_binlog_pos, gtid_slave_pos and gtid_current_pos must name, per domain, the
last transaction of that prefix (the backup's where it holds none)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_backup_take import backup_cli
from test_pitr import Entry, ledger_primary

from mysqlsts.core.gtid import mariadb_same_position, parse_mariadb
from tests.integration.archive_helpers import archiver_for, running, wait_archived
from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

# Which client writes each row of a batch: domain 1 one row in three, in runs.
PATTERN = (0, 0, 1, 0, 1, 1, 0, 0, 1, 0)


@dataclass(frozen=True)
class Domains:
    url: str
    backup_gtid: str
    ledger: tuple[Entry, ...]  # in the primary's binlog order


def position_of(entries: list[Entry] | tuple[Entry, ...], base: str = "") -> str:
    """Per domain, the last GTID of `entries` (in order), else the base's."""
    newest = {g.domain: str(g) for g in parse_mariadb(base)}
    for entry in entries:
        newest[parse_mariadb(entry.gtid)[0].domain] = entry.gtid
    return ",".join(newest[d] for d in sorted(newest))


def binlog_order(primary: Server) -> list[str]:
    """Every GTID in the primary's binary logs, in their order."""
    order = []
    for log in primary.sql("SHOW BINARY LOGS"):
        for event in primary.sql(f"SHOW BINLOG EVENTS IN '{log['Log_name']}'"):
            if event["Event_type"] == "Gtid":
                # Info: "BEGIN GTID 1-100-7" or "GTID 0-100-3" (DDL).
                order.append(str(event["Info"]).split("GTID ")[1].split()[0])
    return order


@pytest.fixture(scope="module")
def domains(mariadb_module: MakeServer, free_port: Callable[[], int],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Domains]:
    made = ledger_primary(mariadb_module, free_port(), tmp_path_factory, "domains")
    primary, url, store, donor, secrets_dir = (made.primary, made.url, made.store, made.donor,
                                               made.secrets_dir)
    ledger: list[Entry] = []
    try:
        with contextlib.closing(primary.connect()) as zero, \
                contextlib.closing(primary.connect()) as one:
            with one.cursor() as cursor:
                cursor.execute("SET SESSION gtid_domain_id = 1")
            clients = (zero, one)

            def batch(first: int) -> None:
                for n, domain in enumerate(PATTERN, start=first):
                    with clients[domain].cursor() as cursor:
                        cursor.execute("INSERT INTO app.ledger VALUES (%s, UNIX_TIMESTAMP())",
                                       (n,))
                        cursor.execute("SELECT @@last_gtid AS g, ts FROM app.ledger "
                                       "WHERE id = %s", (n,))
                        row = cursor.fetchone()
                    ledger.append(Entry(n, str(row["g"]), int(row["ts"])))

            archiver, stop = archiver_for(primary, store)
            with running(archiver, stop):
                for n in range(3):  # three seconds of rows before the backup
                    batch(1 + 10 * n)
                    time.sleep(1.05)
                backup_gtid = str(primary.value("SELECT @@gtid_binlog_pos"))
                done = backup_cli("--store", url, "--donor", f"127.0.0.1:{donor.port}",
                                  "--clone-token-file", str(secrets_dir / "clone-token"))
                assert done.returncode == 0, done.stderr
                for n in range(3, 7):  # and four after it
                    time.sleep(1.05)
                    batch(1 + 10 * n)
                wait_archived(store, None, str(primary.value("SELECT @@gtid_binlog_pos")))
        order = {gtid: n for n, gtid in enumerate(binlog_order(primary))}
        ledger.sort(key=lambda e: order[e.gtid])
        assert len(parse_mariadb(backup_gtid)) == 2, backup_gtid
        yield Domains(url, backup_gtid, tuple(ledger))
    finally:
        donor.stop()


def after_backup(d: Domains) -> list[Entry]:
    held = {g.domain: g.seq for g in parse_mariadb(d.backup_gtid)}
    return [e for e in d.ledger
            if parse_mariadb(e.gtid)[0].seq > held.get(parse_mariadb(e.gtid)[0].domain, 0)]


def holds(mariadb_module: MakeServer, name: str, data_dir: Path,
          expected: list[Entry] | tuple[Entry, ...], d: Domains) -> None:
    """The recovered data dir, started: exactly `expected`'s rows, its three GTID positions
    at `expected`'s per-domain end."""
    server = mariadb_module(name, server_id=300, data_dir=data_dir)
    try:
        assert {int(r["id"]) for r in server.sql("SELECT id FROM app.ledger")} == {
            e.id for e in expected}
        row = server.sql("SELECT @@global.gtid_binlog_pos AS b, @@global.gtid_slave_pos AS s, "
                         "@@global.gtid_current_pos AS c")[0]
        want = position_of(expected, d.backup_gtid)
        for name_, value in row.items():
            assert mariadb_same_position(str(value), want), (name_, value, want)
    finally:
        server.stop()


def restore(d: Domains, data_dir: Path, *target: str) -> str:
    done = backup_cli("restore", "--store", d.url, "--data-dir", str(data_dir), *target)
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("domain", [0, 1])
def test_a_gtid_target_in_either_domain_holds_the_binlog_prefix_through_it(
        domains: Domains, mariadb_module: MakeServer, tmp_path: Path, domain: int) -> None:
    after = after_backup(domains)
    # The second-to-last of the domain's rows after the backup: the other domain's rows on
    # both sides of it in the binlog.
    target = [e for e in after if parse_mariadb(e.gtid)[0].domain == domain][-2]
    prefix = domains.ledger[:domains.ledger.index(target) + 1]
    assert {parse_mariadb(e.gtid)[0].domain for e in domains.ledger[len(prefix):]} == {0, 1}
    said = restore(domains, tmp_path / "data", "--to-gtid", target.gtid)
    assert f"gtid={position_of(prefix, domains.backup_gtid)}" in said, said
    holds(mariadb_module, f"domains-gtid-{domain}", tmp_path / "data", prefix, domains)


def test_a_time_target_holds_the_prefix_before_the_first_later_commit(
        domains: Domains, mariadb_module: MakeServer, tmp_path: Path) -> None:
    seconds = sorted({e.ts for e in after_backup(domains)})
    assert len(seconds) >= 3, seconds
    second = seconds[-2]
    when = datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z")
    restore(domains, tmp_path / "data", "--to-time", when)
    first_later = next(n for n, e in enumerate(domains.ledger) if e.ts > second)
    holds(mariadb_module, "domains-time", tmp_path / "data", domains.ledger[:first_later],
          domains)


def test_the_latest_holds_the_whole_ledger_in_both_domains(
        domains: Domains, mariadb_module: MakeServer, tmp_path: Path) -> None:
    said = restore(domains, tmp_path / "data")
    whole = position_of(domains.ledger)
    assert f"restore: no target: the latest point, {whole}, committed" in said, said
    holds(mariadb_module, "domains-latest", tmp_path / "data", domains.ledger, domains)


def test_a_target_in_a_domain_never_written_is_refused_naming_it(
        domains: Domains, tmp_path: Path) -> None:
    done = backup_cli("restore", "--store", domains.url, "--data-dir", str(tmp_path / "data"),
                      "--to-gtid", "7-100-1")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "domain 7" in lines[0] and "domains 0, 1" in lines[0], lines
    assert not (tmp_path / "data").exists()


def test_a_position_target_holds_the_prefix_through_the_last_of_its_gtids(
        domains: Domains, mariadb_module: MakeServer, tmp_path: Path) -> None:
    """One GTID per domain, as `local restore` pins the latest point."""
    after = after_backup(domains)
    prefix = domains.ledger[:domains.ledger.index(after[len(after) // 2]) + 1]
    position = position_of(prefix, domains.backup_gtid)
    assert len(parse_mariadb(position)) == 2
    said = restore(domains, tmp_path / "data", "--to-gtid", position)
    assert f"gtid={position}" in said, said
    holds(mariadb_module, "domains-position", tmp_path / "data", prefix, domains)
