"""Typed records of what the sidecar observed on its server, parsed from plain rows.

`SHOW SLAVE STATUS` (MariaDB, MySQL < 8.0.22) and `SHOW REPLICA STATUS` (MySQL >= 8.0.22, the
only form in 8.4) name the same facts differently (`Slave_IO_Running` / `Replica_IO_Running`,
`Seconds_Behind_Master` / `Seconds_Behind_Source`, ...). Both parse into one `ReplicaStatus`, so
nothing downstream knows which statement produced it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mysqlsts.core import gtid as gtids

Row = Mapping[str, Any]


def _pick(row: Row, *names: str) -> Any:
    for name in names:
        if name in row:
            return row[name]
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    return int(value)


def _optional_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


# Client errors of a connection that cannot be made or was lost (no such host, refused, timed
# out, gone): the source is unreachable. 0 is the moment between a lost connection and the first
# failed retry. Anything else (1045 access denied, 1236 a GTID the source lacks, ...) is an error.
SOURCE_UNREACHABLE_ERRNOS = frozenset({0, 2002, 2003, 2005, 2006, 2013})


@dataclass(frozen=True)
class ReplicaStatus:
    """One row of SHOW SLAVE/REPLICA STATUS, in flavor-neutral names."""

    source_host: str
    source_port: int
    # `Yes`, `No` or `Connecting` (the I/O thread retries a lost connection).
    io_state: str
    sql_state: str
    last_io_errno: int
    last_io_error: str
    last_sql_errno: int
    last_sql_error: str
    # None while the server reports NULL (SQL thread stopped, I/O thread not connected).
    seconds_behind_source: int | None
    relay_log_file: str
    relay_log_pos: int
    relay_source_log_file: str
    exec_source_log_pos: int
    # How far the I/O thread read the source's binlog.
    read_source_log_file: str
    read_source_log_pos: int
    # The source it last talked to: MariaDB/MySQL server id, MySQL also its uuid.
    source_server_id: int
    source_uuid: str
    # MariaDB: `Using_Gtid` (No, Slave_Pos, Current_Pos) and `Gtid_IO_Pos`.
    # MySQL: `Auto_Position` (0/1), `Retrieved_Gtid_Set`, `Executed_Gtid_Set`.
    gtid_mode: str
    retrieved_gtid: str
    executed_gtid: str

    @property
    def configured(self) -> bool:
        """A source is set (MariaDB shows no row at all after RESET SLAVE ALL)."""
        return bool(self.source_host)

    @property
    def io_running(self) -> bool:
        return self.io_state == "Yes"

    @property
    def sql_running(self) -> bool:
        return self.sql_state == "Yes"

    @property
    def source_unreachable(self) -> bool:
        """The I/O thread only retries a source the network does not reach: not stopped by hand,
        not failing on an error, and the SQL thread runs."""
        return (self.io_state == "Connecting" and self.sql_running and not self.last_sql_errno
                and self.last_io_errno in SOURCE_UNREACHABLE_ERRNOS)

    @property
    def last_errno(self) -> int:
        """The I/O thread's error number, else the SQL thread's; 0 when neither has one."""
        return self.last_io_errno or self.last_sql_errno

    @property
    def last_error(self) -> str:
        return self.last_io_error if self.last_io_errno else self.last_sql_error


def parse_replica_status(row: Row | None) -> ReplicaStatus | None:
    """Parse one status row (column names of either statement); None for no row."""
    if row is None:
        return None
    return ReplicaStatus(
        source_host=_text(_pick(row, "Master_Host", "Source_Host")),
        source_port=_int(_pick(row, "Master_Port", "Source_Port")),
        io_state=_text(_pick(row, "Slave_IO_Running", "Replica_IO_Running")) or "No",
        sql_state=_text(_pick(row, "Slave_SQL_Running", "Replica_SQL_Running")) or "No",
        last_io_errno=_int(row.get("Last_IO_Errno")),
        last_io_error=_text(row.get("Last_IO_Error")),
        last_sql_errno=_int(row.get("Last_SQL_Errno")),
        last_sql_error=_text(row.get("Last_SQL_Error")),
        seconds_behind_source=_optional_int(
            _pick(row, "Seconds_Behind_Master", "Seconds_Behind_Source")
        ),
        relay_log_file=_text(row.get("Relay_Log_File")),
        relay_log_pos=_int(row.get("Relay_Log_Pos")),
        relay_source_log_file=_text(
            _pick(row, "Relay_Master_Log_File", "Relay_Source_Log_File")
        ),
        exec_source_log_pos=_int(_pick(row, "Exec_Master_Log_Pos", "Exec_Source_Log_Pos")),
        read_source_log_file=_text(_pick(row, "Master_Log_File", "Source_Log_File")),
        read_source_log_pos=_int(_pick(row, "Read_Master_Log_Pos", "Read_Source_Log_Pos")),
        source_server_id=_int(_pick(row, "Master_Server_Id", "Source_Server_Id")),
        source_uuid=_text(_pick(row, "Master_UUID", "Source_UUID")),
        gtid_mode=_text(_pick(row, "Using_Gtid", "Auto_Position")),
        retrieved_gtid=_text(_pick(row, "Gtid_IO_Pos", "Retrieved_Gtid_Set")),
        executed_gtid=_text(row.get("Executed_Gtid_Set")),
    )


@dataclass(frozen=True)
class Observation:
    """Everything one poll of the local server saw; probes and metrics read only this."""

    taken_at: float
    up: bool
    error: str = ""
    version: str = ""  # the full `SELECT VERSION()` string
    flavor: str = ""
    server_id: int | None = None
    read_only: bool | None = None
    # MariaDB: gtid_binlog_state, gtid_current_pos, gtid_slave_pos, gtid_binlog_pos;
    # MySQL: gtid_executed.
    gtid: Mapping[str, str] = field(default_factory=dict)
    # Only polled on replicas; None when no source is configured.
    replica: ReplicaStatus | None = None
    # Replicas: Unix time of the newest heartbeat row from another server applied here, that
    # server's id, and the executed GTIDs it wrote in the row (None: an older row without them).
    heartbeat_ts: float | None = None
    heartbeat_server_id: int | None = None
    source_gtid: str | None = None
    clone_in_progress: bool = False

    @property
    def replica_configured(self) -> bool:
        return self.replica is not None and self.replica.configured


def applied_everything(observation: Observation) -> bool:
    """The SQL thread has applied all the I/O thread received (nothing waits in the relay log)."""
    status = observation.replica
    if status is None:
        return False
    if status.gtid_mode.lower() in ("slave_pos", "current_pos"):
        executed = observation.gtid.get(f"gtid_{status.gtid_mode.lower()}", "")
        return gtids.mariadb_applied(status.retrieved_gtid, executed)
    if status.gtid_mode == "1":
        return gtids.mysql_applied(status.retrieved_gtid, status.executed_gtid)
    return (status.relay_source_log_file == status.read_source_log_file
            and status.exec_source_log_pos >= status.read_source_log_pos)


def errant_transactions(observation: Observation) -> list[str]:
    """This replica's transactions its primary never had, compared with the primary's executed
    GTIDs carried by the newest heartbeat applied here; [] when that is unknown."""
    status, primary = observation.replica, observation.source_gtid
    if status is None or primary is None or observation.heartbeat_server_id is None:
        return []
    if observation.flavor == "mariadb":
        return gtids.mariadb_errant(observation.gtid.get("gtid_binlog_state", ""), primary,
                                    observation.heartbeat_server_id)
    if not status.source_uuid:
        return []
    return gtids.mysql_errant(observation.gtid.get("gtid_executed", ""), primary,
                              status.source_uuid)
