"""Replication statements per flavor and version, and the plan from observed status to actions.

Pure: statements are values (SQL with `%s` placeholders plus bound arguments, so passwords only
ever travel as escaped literals and `str(statement)` is safe to log), and the plan is a function
of what one observation saw. The sidecar runs the plan once per start: observe, decide, act.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from mysqlsts.core.coordinates import Coordinates
from mysqlsts.core.gtid import gtid_names, start_from_record
from mysqlsts.core.status import ReplicaStatus
from mysqlsts.core.version import ServerVersion


@dataclass(frozen=True)
class Statement:
    sql: str
    args: tuple[Any, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        return self.sql  # never the arguments: they may hold a password


@dataclass(frozen=True)
class Source:
    """Where and how a replica connects to its primary."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    connect_retry: int = 10

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _uses_replica_keywords(version: ServerVersion) -> bool:
    """MySQL 8.0.22 added SHOW/START/STOP REPLICA; 8.4 removed the SLAVE forms."""
    return not version.is_mariadb and version.at_least(8, 0, 22)


def _uses_source_keywords(version: ServerVersion) -> bool:
    """MySQL 8.0.23 added CHANGE REPLICATION SOURCE TO; 8.4 removed CHANGE MASTER TO."""
    return not version.is_mariadb and version.at_least(8, 0, 23)


def status_statement(version: ServerVersion) -> Statement:
    return Statement("SHOW REPLICA STATUS" if _uses_replica_keywords(version)
                     else "SHOW SLAVE STATUS")


def start_statement(version: ServerVersion) -> Statement:
    return Statement("START REPLICA" if _uses_replica_keywords(version) else "START SLAVE")


def restored_primary_statements(version: ServerVersion, binlog_state: str,
                                record: Coordinates | None) -> list[Statement]:
    """A primary whose data came from a backup (its clone record's GTID) and whose binary log
    holds no GTID yet: the binary log's GTID state is set to the backup's before the primary
    logs anything, so its own writes, every replica cloned from it and a later replay continue
    the backup's sequence instead of starting over at 1. MariaDB; once anything is logged
    (`binlog_state` not empty) nothing is done, so a restart never rewinds it."""
    if not version.is_mariadb or binlog_state or record is None or not record.gtid:
        return []
    return [Statement("SET GLOBAL gtid_binlog_state = %s", (record.gtid,))]


def restart_io_statements(version: ServerVersion) -> list[Statement]:
    """Restart the I/O thread alone: it connects at once instead of at its next retry."""
    keyword = "REPLICA" if _uses_replica_keywords(version) else "SLAVE"
    return [Statement(f"STOP {keyword} IO_THREAD"), Statement(f"START {keyword} IO_THREAD")]


def io_restart_due(status: ReplicaStatus | None, source_reachable: bool) -> bool:
    """After an outage the I/O thread reconnects only at its next MASTER_CONNECT_RETRY; once the
    source accepts connections again, waiting for that serves nothing."""
    return status is not None and status.source_unreachable and source_reachable


def _change_source(version: ServerVersion, source: Source, position: list[tuple[str, Any]],
                   gtid: bool) -> Statement:
    if _uses_source_keywords(version):
        prefix, key = "CHANGE REPLICATION SOURCE TO", "SOURCE"
    else:
        prefix, key = "CHANGE MASTER TO", "MASTER"
    options: list[tuple[str, Any]] = [
        (f"{key}_HOST", source.host),
        (f"{key}_PORT", source.port),
        (f"{key}_USER", source.user),
        (f"{key}_PASSWORD", source.password),
        (f"{key}_CONNECT_RETRY", source.connect_retry),
    ]
    options += [(f"{key}_{name}", value) for name, value in position]
    if version.is_mariadb:
        options.append(("MASTER_USE_GTID", "slave_pos" if gtid else "no"))
    else:
        options.append((f"{key}_AUTO_POSITION", 1 if gtid else 0))
        if version.at_least(8):
            # caching_sha2_password over a connection without TLS needs the server's RSA key.
            options.append(("GET_SOURCE_PUBLIC_KEY" if key == "SOURCE"
                            else "GET_MASTER_PUBLIC_KEY", 1))
    # MASTER_USE_GTID takes a keyword, not a literal; everything else is bound.
    parts = [f"{name}={value}" if name == "MASTER_USE_GTID" else f"{name}=%s"
             for name, value in options]
    args = tuple(value for name, value in options if name != "MASTER_USE_GTID")
    return Statement(f"{prefix} " + ", ".join(parts), args)


def configure_statements(
    version: ServerVersion, source: Source, record: Coordinates | None, gtid_state: str
) -> tuple[list[Statement], str]:
    """Statements that point an unconfigured replica at `source`, and where it starts from.

    `gtid_state` is the server's own position (MariaDB `gtid_slave_pos`, MySQL `gtid_executed`).
    The clone record's GTID is applied while that is empty or (MariaDB) strictly behind the
    record (`core.gtid.start_from_record`): a position ahead of it is the server's own truth
    (replication that ran before a RESET SLAVE ALL), and rewinding it would replay transactions.
    A replica with no clone record (a data dir initialised on its own) starts from its own
    position, which on a fresh data dir is empty: the primary's whole binlog.
    """
    statements: list[Statement] = []
    position: list[tuple[str, Any]] = []
    gtid = True
    if record is not None and record.gtid is None and record.binlog_file:
        # A record without GTID (a server running without it): file and position.
        gtid = False
        position = [("LOG_FILE", record.binlog_file), ("LOG_POS", record.binlog_position or 4)]
        origin = f"binlog {record.binlog_file}:{record.binlog_position}"
    elif record is not None and record.gtid and start_from_record(
            gtid_state, record.gtid, version.is_mariadb):
        variable = gtid_names(version.is_mariadb).start_position
        statements.append(Statement(f"SET GLOBAL {variable} = %s", (record.gtid,)))
        origin = f"the clone record's GTID {record.gtid}"
    elif gtid_state:
        origin = f"the server's own GTID position {gtid_state}"
    else:
        origin = "an empty GTID position (the primary's whole binlog)"
    statements.append(_change_source(version, source, position, gtid))
    statements.append(start_statement(version))
    return statements, origin


class Action(enum.StrEnum):
    CONFIGURE = "configure"
    START = "start"
    LEAVE = "leave"
    REPORT = "report"


@dataclass(frozen=True)
class Plan:
    action: Action
    reason: str
    statements: tuple[Statement, ...] = ()


def plan_replication(
    version: ServerVersion,
    status: ReplicaStatus | None,
    source: Source,
    record: Coordinates | None,
    gtid_state: str,
) -> Plan:
    """Decide what to do with a replica's replication, from one observation.

    Not configured → configure and start. Configured with an error → report and leave it for an
    operator (never reset). Stopped without an error → start. Running → leave alone. A source
    other than the one asked for is mentioned but not changed: re-pointing a working replica
    is an operator's decision.
    """
    if status is None or not status.configured:
        statements, origin = configure_statements(version, source, record, gtid_state)
        return Plan(
            Action.CONFIGURE,
            f"replication is not configured; configuring it to {source} from {origin}",
            tuple(statements),
        )
    where = f"{status.source_host}:{status.source_port}"
    note = ""
    if (status.source_host, status.source_port) != (source.host, source.port):
        note = f" (it replicates from {where}, not {source}; left unchanged)"
    if status.last_errno:
        thread = "I/O" if status.last_io_errno else "SQL"
        return Plan(
            Action.REPORT,
            f"replication from {where} is broken: {thread} error {status.last_errno}: "
            f"{status.last_error}; leaving it as is for an operator{note}",
        )
    if status.io_state in ("Yes", "Connecting") and status.sql_running:
        return Plan(Action.LEAVE, f"replication from {where} is already running{note}")
    return Plan(
        Action.START,
        f"replication from {where} is configured but stopped without an error "
        f"(io={status.io_state} sql={status.sql_state}); starting it{note}",
        (start_statement(version),),
    )
