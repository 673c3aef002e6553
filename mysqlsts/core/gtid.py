"""GTID positions and sets as values: has one side applied what the other holds, and what does
a replica hold that its primary never had (errant transactions).

MariaDB names a transaction `domain-server_id-seq`; a position lists the newest one per domain
(`gtid_slave_pos`, `Gtid_IO_Pos`), a binlog state the newest per domain and server
(`gtid_binlog_state`). MySQL names it `uuid:n` and a set lists intervals per uuid
(`uuid:1-5:7,uuid2:1-3`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class MariadbGtid:
    domain: int
    server_id: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server_id}-{self.seq}"


def parse_mariadb(text: str) -> tuple[MariadbGtid, ...]:
    gtids = []
    for item in text.replace("\n", "").split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split("-")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            raise ValueError(f"not a MariaDB GTID: {item!r}")
        gtids.append(MariadbGtid(*(int(part) for part in parts)))
    return tuple(gtids)


def mariadb_applied(retrieved: str, executed: str) -> bool:
    """Every domain's newest retrieved transaction is applied (sequence numbers only grow
    within a domain, whichever server wrote them)."""
    applied: dict[int, int] = {}
    for gtid in parse_mariadb(executed):
        applied[gtid.domain] = max(applied.get(gtid.domain, 0), gtid.seq)
    return all(applied.get(gtid.domain, 0) >= gtid.seq for gtid in parse_mariadb(retrieved))


def mariadb_same_position(a: str, b: str) -> bool:
    """Two MariaDB GTID positions name the same newest transaction in every domain (order and
    spacing aside)."""
    def newest(text: str) -> dict[int, tuple[int, int]]:
        return {g.domain: (g.server_id, g.seq) for g in parse_mariadb(text)}

    return newest(a) == newest(b)


def start_from_record(own_position: str, recorded: str, is_mariadb: bool) -> bool:
    """Whether a replica set-up (or the drill) sets its start position to the clone or restore
    record's GTID rather than keep the server's own: when it has none, and on MariaDB also when
    its own is strictly behind the record. A restored primary keeps the gtid_slave_pos of the
    replica its backup came from while its binlog moves on, so a backup of it carries a stale
    one; starting there would apply its transactions twice. A position ahead of the record, or
    beside it, is the server's own truth and stays."""
    if not own_position:
        return True
    return (is_mariadb and mariadb_applied(own_position, recorded)
            and not mariadb_same_position(own_position, recorded))


def mariadb_errant(replica_state: str, primary_state: str, primary_server_id: int) -> list[str]:
    """The replica's binlog-state entries the primary never had: written by a server that is not
    the primary, and newer than anything the primary holds from that server in that domain.

    The primary's own transactions are never errant: the replica may have applied newer ones
    than the primary's state it compares with (read from a heartbeat row a moment old)."""
    primary = {(g.domain, g.server_id): g.seq for g in parse_mariadb(primary_state)}
    return [str(g) for g in parse_mariadb(replica_state)
            if g.server_id != primary_server_id and primary.get((g.domain, g.server_id), 0) < g.seq]


Intervals = tuple[tuple[int, int], ...]


def parse_mysql(text: str) -> dict[str, Intervals]:
    """`uuid:1-5:7,...` as {uuid: ((1, 5), (7, 7))}; uuids lower-cased, tags kept in the key."""
    result: dict[str, list[tuple[int, int]]] = {}
    for item in text.replace("\n", "").split(","):
        item = item.strip()
        if not item:
            continue
        uuid, *ranges = item.split(":")
        if not ranges:
            raise ValueError(f"not a MySQL GTID set item: {item!r}")
        intervals = result.setdefault(uuid.lower(), [])
        for text_range in ranges:
            low, _, high = text_range.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise ValueError(f"not a MySQL GTID interval: {text_range!r}")
            intervals.append((int(low), int(high or low)))
    return {uuid: tuple(sorted(intervals)) for uuid, intervals in result.items()}


def _subtract(ranges: Intervals, remove: Intervals) -> Intervals:
    left: list[tuple[int, int]] = []
    for low, high in ranges:
        pieces = [(low, high)]
        for r_low, r_high in remove:
            pieces = [piece for p_low, p_high in pieces for piece in (
                ((p_low, min(p_high, r_low - 1)), (max(p_low, r_high + 1), p_high)))
                if piece[0] <= piece[1]]
        left.extend(pieces)
    return tuple(left)


def mysql_missing(have: str, reference: str) -> dict[str, Intervals]:
    """What `have` holds that `reference` does not."""
    ref = parse_mysql(reference)
    missing = {uuid: _subtract(ranges, ref.get(uuid, ())) for uuid, ranges in
               parse_mysql(have).items()}
    return {uuid: ranges for uuid, ranges in missing.items() if ranges}


def mysql_applied(retrieved: str, executed: str) -> bool:
    return not mysql_missing(retrieved, executed)


def mysql_errant(replica_executed: str, primary_executed: str, primary_uuid: str) -> list[str]:
    """One `uuid:interval` per errant run of transactions (the primary's own uuid excluded, as
    for MariaDB)."""
    missing = mysql_missing(replica_executed, primary_executed)
    return [f"{uuid}:{low}" if low == high else f"{uuid}:{low}-{high}"
            for uuid, ranges in sorted(missing.items()) if uuid != primary_uuid.lower()
            for low, high in ranges]


def count_errant(flavor_is_mariadb: bool, errant: list[str]) -> int:
    """MariaDB: entries (its state keeps only the newest per domain and server); MySQL: every
    transaction of every interval."""
    if flavor_is_mariadb:
        return len(errant)
    total = 0
    for item in errant:
        low, _, high = item.rpartition(":")[2].partition("-")
        total += int(high or low) - int(low) + 1
    return total



@dataclass(frozen=True)
class GtidNames:
    """Which server variable holds which GTID position, for one flavor: chosen here only."""

    # Every transaction in the binary log, per domain and server (errant ones are looked for
    # in it; the heartbeat row carries it).
    executed: str
    # The binary log's newest position: what a replica waits for after a consistency pass.
    binlog_position: str
    # The server's own replication position: what a clone record must not overwrite.
    replica_position: str
    # What a replica's start position is set through.
    start_position: str
    # Worth reporting in an observation (/status, metrics); `executed` first.
    reported: tuple[str, ...]


_MARIADB = GtidNames(
    executed="gtid_binlog_state", binlog_position="gtid_binlog_pos",
    replica_position="gtid_slave_pos", start_position="gtid_slave_pos",
    reported=("gtid_binlog_state", "gtid_current_pos", "gtid_slave_pos", "gtid_binlog_pos"),
)
_MYSQL = GtidNames(
    executed="gtid_executed", binlog_position="gtid_executed", replica_position="gtid_executed",
    start_position="gtid_purged", reported=("gtid_executed",),
)


def gtid_names(is_mariadb: bool) -> GtidNames:
    return _MARIADB if is_mariadb else _MYSQL
