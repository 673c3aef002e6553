"""A consistency check across pods, in the spirit of pt-table-checksum (pure: statements,
chunk planning, the comparison and the summary; the `mysqlsts.consistency` package runs them).

The check runs on the primary only, as statements written to its binary log in STATEMENT
format. For each chunk of each table the primary runs, in one transaction,

    DELETE FROM checksums WHERE <the chunk's row>
    INSERT INTO checksums (...) SELECT <db>, <tbl>, <chunk>, ..., COUNT(*), <crc>
        FROM t WHERE <range>
    UPDATE checksums SET master_crc = <what the primary read back>, ... WHERE ...

and every replica re-executes the same INSERT ... SELECT on its own data at exactly the same
point of the replication stream, while the UPDATE carries the primary's values as literals. A
replica whose `this_*` differ from `master_*` holds other rows in that chunk than the primary
had at that point: consistent under live writes, with no locks across pods and no connection
from one pod to another. A plain INSERT ... SELECT into a table without auto-increment is a
safe statement for statement-based logging (REPLACE ... SELECT is not).

Row checksum: pt-table-checksum's, 64-bit: BIT_XOR over the rows of the first 16 hex digits of
MD5(CONCAT_WS('#', every column, the columns' NULL flags)), and COUNT(*). Columns go in as
binary strings, so columns of different collations never make an "illegal mix".

Chunks: ranges of the primary key's first column, about `rows` rows each, the first unbounded
below and the last unbounded above (rows a replica has beyond the primary's ends are counted
too). A table without a primary key is one chunk: one statement reads it whole, holding its
locks for as long on the primary. Chunk boundaries are primary key values, i.e. data: they
stay in the checksum table, never in metrics, /status or logs.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mysqlsts.core.gtid import gtid_names
from mysqlsts.core.replication import Statement
from mysqlsts.core.sql import quote_identifier
from mysqlsts.core.version import ServerVersion

TABLE = "checksums"
PASS_TABLE = "checksum_pass"
# System schemas; the tool's own database (the heartbeat's) is excluded by name as well.
SYSTEM_SCHEMAS = ("mysql", "sys", "information_schema", "performance_schema")
# Table types holding rows of their own (MariaDB's system-versioned tables are base tables).
TABLE_TYPES = ("BASE TABLE", "SYSTEM VERSIONED")
# pt-table-checksum's comparison: a count or a checksum differs, or only one side has one.
DIVERGED_SQL = ("(master_cnt <> this_cnt OR master_crc <> this_crc "
                "OR ISNULL(master_crc) <> ISNULL(this_crc))")
# How many diverged chunks a summary names (all are counted).
SUMMARY_CHUNKS = 10
# Lock waits of a pass: a chunk gives up (and is retried) rather than queue behind a long
# write; it holds its own locks only for its own duration.
INNODB_LOCK_WAIT_TIMEOUT = 1
LOCK_WAIT_TIMEOUT = 5


def _table(database: str, name: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(name)}"


@dataclass(frozen=True)
class TableInfo:
    db: str
    name: str
    columns: tuple[str, ...]
    # The primary key's first column; None: no primary key (checked as one chunk).
    key: str | None

    @property
    def qualified(self) -> str:
        return _table(self.db, self.name)

    def __str__(self) -> str:
        return f"{self.db}.{self.name}"


@dataclass(frozen=True)
class Chunk:
    number: int  # from 1 within its table
    lower: Any = None  # inclusive; None: unbounded
    upper: Any = None  # exclusive; None: unbounded


# -- the tables ---------------------------------------------------------------------------


def table_statements(database: str) -> list[Statement]:
    """The checksum table (pt-table-checksum's columns, 64-bit checksums) and the pass record,
    one row: when the last pass started and finished, as applied on each server."""
    return [
        Statement(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}"),
        Statement(
            f"CREATE TABLE IF NOT EXISTS {_table(database, TABLE)} ("
            "db VARCHAR(64) NOT NULL, "
            "tbl VARCHAR(64) NOT NULL, "
            "chunk INT UNSIGNED NOT NULL, "
            "chunk_time FLOAT NULL, "
            "chunk_index VARCHAR(64) NULL, "
            "lower_boundary TEXT NULL, "
            "upper_boundary TEXT NULL, "
            "this_crc BIGINT UNSIGNED NOT NULL, "
            "this_cnt BIGINT UNSIGNED NOT NULL, "
            "master_crc BIGINT UNSIGNED NULL, "
            "master_cnt BIGINT UNSIGNED NULL, "
            "ts DATETIME(6) NOT NULL, "
            "PRIMARY KEY (db, tbl, chunk), "
            "KEY ts (ts)"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        ),
        Statement(
            f"CREATE TABLE IF NOT EXISTS {_table(database, PASS_TABLE)} ("
            "id TINYINT UNSIGNED NOT NULL PRIMARY KEY, "
            "started DATETIME(6) NULL, "
            "finished DATETIME(6) NULL, "
            "tables_checked INT UNSIGNED NOT NULL DEFAULT 0, "
            "chunks_checked INT UNSIGNED NOT NULL DEFAULT 0, "
            "chunks_skipped INT UNSIGNED NOT NULL DEFAULT 0"
            ") ENGINE=InnoDB"
        ),
        Statement(f"INSERT IGNORE INTO {_table(database, PASS_TABLE)} (id) VALUES (1)"),
    ]


def session_statements() -> list[Statement]:
    """The pass's own session: statement logging (the point of it), REPEATABLE READ (which
    statement logging of INSERT ... SELECT needs), short lock waits, and an explicit time zone
    so TIMESTAMP columns read the same on every replica whatever its system zone."""
    return [
        Statement("SET SESSION binlog_format = 'STATEMENT'"),
        Statement("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
        Statement(f"SET SESSION innodb_lock_wait_timeout = {INNODB_LOCK_WAIT_TIMEOUT}"),
        Statement(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT}"),
        Statement("SET SESSION time_zone = '+00:00'"),
    ]


def pass_started_statement(database: str, started: datetime.datetime) -> Statement:
    return Statement(f"UPDATE {_table(database, PASS_TABLE)} SET started = %s WHERE id = 1",
                     (started,))


def pass_finished_statements(
    database: str, started: datetime.datetime, tables: int, chunks: int, skipped: int,
) -> list[Statement]:
    """A completed pass: rows it did not rewrite (dropped tables, chunks that no longer
    exist, chunks it skipped) are stale and go; then the record, which replicas read as the
    time of their last complete pass."""
    return [
        Statement(f"DELETE FROM {_table(database, TABLE)} WHERE ts < %s", (started,)),
        Statement(
            f"UPDATE {_table(database, PASS_TABLE)} SET finished = UTC_TIMESTAMP(6), "
            "tables_checked = %s, chunks_checked = %s, chunks_skipped = %s WHERE id = 1",
            (tables, chunks, skipped),
        ),
    ]


# -- which tables -------------------------------------------------------------------------


def _excluded(database: str) -> tuple[str, ...]:
    return (*SYSTEM_SCHEMAS, database)


def columns_statement(database: str) -> Statement:
    excluded = _excluded(database)
    return Statement(
        "SELECT c.TABLE_SCHEMA AS db, c.TABLE_NAME AS tbl, c.COLUMN_NAME AS col "
        "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
        "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
        f"WHERE t.TABLE_TYPE IN ({', '.join(['%s'] * len(TABLE_TYPES))}) "
        f"AND c.TABLE_SCHEMA NOT IN ({', '.join(['%s'] * len(excluded))}) "
        "ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION",
        (*TABLE_TYPES, *excluded),
    )


def keys_statement(database: str) -> Statement:
    excluded = _excluded(database)
    return Statement(
        "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS col "
        "FROM information_schema.STATISTICS "
        "WHERE INDEX_NAME = 'PRIMARY' AND SEQ_IN_INDEX = 1 "
        f"AND TABLE_SCHEMA NOT IN ({', '.join(['%s'] * len(excluded))})",
        excluded,
    )


def tables_from(
    column_rows: Iterable[Mapping[str, Any]], key_rows: Iterable[Mapping[str, Any]],
) -> list[TableInfo]:
    """The rows of `columns_statement` and `keys_statement` as tables, in name order."""
    keys = {(str(r["db"]), str(r["tbl"])): str(r["col"]) for r in key_rows}
    columns: dict[tuple[str, str], list[str]] = {}
    for row in column_rows:
        columns.setdefault((str(row["db"]), str(row["tbl"])), []).append(str(row["col"]))
    return [TableInfo(db, name, tuple(cols), keys.get((db, name)))
            for (db, name), cols in sorted(columns.items())]


# -- chunks -------------------------------------------------------------------------------


def boundary_statement(table: TableInfo, lower: Any, offset: int) -> Statement:
    """The key `offset` rows past the chunk's start: from the table's first row, or from the
    first key greater than `lower` (strictly: each chunk starts past the previous one, so
    equal keys, or keys equal under the column's collation, never stall the walk)."""
    assert table.key is not None
    key = quote_identifier(table.key)
    where, args = ("", ()) if lower is None else (f" WHERE {key} > %s", (lower,))
    return Statement(
        f"SELECT {key} AS k FROM {table.qualified} FORCE INDEX (PRIMARY){where} "
        f"ORDER BY {key} LIMIT 1 OFFSET {int(offset)}",
        args,
    )


Boundary = Callable[[Any, int], Any]


def plan_chunks(table: TableInfo, rows: int, boundary: Boundary) -> Iterator[Chunk]:
    """The table's chunks, one at a time: `boundary(lower, offset)` answers
    `boundary_statement` (None past the last row). Boundaries are found as the walk goes, so
    rows written meanwhile still fall in some chunk: the ranges always cover every key.

    Chunk 1 is (-inf, b1), then [b1, b2), ..., [bn, +inf): about `rows` rows each, more where
    the first key column repeats a value."""
    if table.key is None:
        yield Chunk(1)
        return
    lower, number = None, 1
    upper = boundary(None, rows)
    while True:
        if upper is not None and lower is not None and upper == lower:
            upper = None  # a key that compares above itself (a FLOAT read back rounded)
        yield Chunk(number, lower, upper)
        if upper is None:
            return
        lower, number = upper, number + 1
        upper = boundary(lower, max(rows - 1, 0))


def _range(table: TableInfo, chunk: Chunk) -> tuple[str, tuple[Any, ...]]:
    if table.key is None:
        return "", ()
    key = quote_identifier(table.key)
    conditions, args = [], []
    if chunk.lower is not None:
        conditions.append(f"{key} >= %s")
        args.append(chunk.lower)
    if chunk.upper is not None:
        conditions.append(f"{key} < %s")
        args.append(chunk.upper)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return " FORCE INDEX (PRIMARY)" + where, tuple(args)


def crc_expression(columns: Iterable[str]) -> str:
    quoted = [quote_identifier(c) for c in columns]
    values = ", ".join(f"CAST({c} AS BINARY)" for c in quoted)
    nulls = ", ".join(f"ISNULL({c})" for c in quoted)
    return (f"BIT_XOR(CAST(CONV(LEFT(MD5(CONCAT_WS('#', {values}, CONCAT({nulls}))), 16), 16, 10)"
            " AS UNSIGNED))")


def boundary_text(value: Any) -> str | None:
    """A boundary as people read it (the checksum table's text columns; never compared)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _chunk_key(table: TableInfo, chunk: Chunk) -> tuple[str, str, int]:
    return (table.db, table.name, chunk.number)


_WHERE_CHUNK = "WHERE db = %s AND tbl = %s AND chunk = %s"


def chunk_statements(database: str, table: TableInfo, chunk: Chunk) -> list[Statement]:
    """The chunk's checksum, each pod computing its own: the DELETE and INSERT ... SELECT of
    one transaction (`master_statement` completes it)."""
    where, args = _range(table, chunk)
    target = _table(database, TABLE)
    return [
        Statement(f"DELETE FROM {target} {_WHERE_CHUNK}", _chunk_key(table, chunk)),
        Statement(
            f"INSERT INTO {target} (db, tbl, chunk, chunk_index, lower_boundary, "
            "upper_boundary, this_cnt, this_crc, ts) "
            f"SELECT %s, %s, %s, %s, %s, %s, COUNT(*), {crc_expression(table.columns)}, "
            f"UTC_TIMESTAMP(6) FROM {table.qualified}{where}",
            (*_chunk_key(table, chunk), table.key, boundary_text(chunk.lower),
             boundary_text(chunk.upper), *args),
        ),
    ]


def read_back_statement(database: str, table: TableInfo, chunk: Chunk) -> Statement:
    return Statement(f"SELECT this_crc, this_cnt FROM {_table(database, TABLE)} {_WHERE_CHUNK}",
                     _chunk_key(table, chunk))


def master_statement(
    database: str, table: TableInfo, chunk: Chunk, crc: int, count: int, seconds: float,
) -> Statement:
    """The primary's own values as literals: replicas store them beside theirs."""
    return Statement(
        f"UPDATE {_table(database, TABLE)} SET master_crc = %s, master_cnt = %s, "
        f"chunk_time = %s {_WHERE_CHUNK}",
        (int(crc), int(count), round(seconds, 6), *_chunk_key(table, chunk)),
    )


# -- scheduling ---------------------------------------------------------------------------


def pass_due(last_finished: float | None, now: float, interval: float) -> bool:
    """A periodic pass is due `interval` seconds after the last completed one (recorded in
    the pass table, so a restarted sidecar keeps the schedule); at once when none completed;
    never when the interval is 0."""
    if interval <= 0:
        return False
    return last_finished is None or now - last_finished >= interval


def pause_after(busy_seconds: float, duty_cycle: float) -> float:
    """The pause after a chunk that took `busy_seconds`, so the pass keeps the primary busy at
    most `duty_cycle` of the wall time."""
    if duty_cycle >= 1:
        return 0.0
    return max(busy_seconds, 0.0) * (1 - duty_cycle) / duty_cycle


# -- positions, per flavor ----------------------------------------------------------------


def position_statement(version: ServerVersion) -> Statement:
    """The primary's binary log position in GTIDs, after a pass."""
    return Statement(
        f"SELECT @@global.{gtid_names(version.is_mariadb).binlog_position} AS position")


def wait_statement(version: ServerVersion, position: str, timeout: float) -> Statement:
    """On a replica: wait until it has applied `position`; the answer is 0 once it has
    (MariaDB MASTER_GTID_WAIT: -1 on timeout; MySQL WAIT_FOR_EXECUTED_GTID_SET: 1)."""
    function = "MASTER_GTID_WAIT" if version.is_mariadb else "WAIT_FOR_EXECUTED_GTID_SET"
    return Statement(f"SELECT {function}(%s, %s) AS waited", (position, float(timeout)))


# -- what a pod holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkRow:
    db: str
    table: str
    chunk: int
    this_cnt: int | None
    this_crc: int | None
    master_cnt: int | None
    master_crc: int | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ChunkRow:
        def number(name: str) -> int | None:
            return None if row.get(name) is None else int(row[name])

        return cls(str(row["db"]), str(row["tbl"]), int(row["chunk"]), number("this_cnt"),
                   number("this_crc"), number("master_cnt"), number("master_crc"))

    @property
    def diverged(self) -> bool:
        """DIVERGED_SQL, row by row (NULL compares as SQL does: unequal to nothing)."""
        def differ(a: int | None, b: int | None) -> bool:
            return a is not None and b is not None and a != b

        return (differ(self.master_cnt, self.this_cnt) or differ(self.master_crc, self.this_crc)
                or (self.master_crc is None) != (self.this_crc is None))

    def as_dict(self) -> dict[str, Any]:
        """For /status and the command line: names and counts, never the boundaries."""
        return {"db": self.db, "table": self.table, "chunk": self.chunk,
                "this_cnt": self.this_cnt, "master_cnt": self.master_cnt}


def summary_statements(database: str) -> tuple[Statement, Statement, Statement]:
    """The pass record, the counts, and the first diverged chunks (a scan of the checksum
    table: one row per chunk, read at a low cadence)."""
    target = _table(database, TABLE)
    return (
        Statement(f"SELECT started, finished FROM {_table(database, PASS_TABLE)} WHERE id = 1"),
        Statement(f"SELECT COUNT(*) AS checked, COALESCE(SUM({DIVERGED_SQL}), 0) AS diverged "
                  f"FROM {target}"),
        Statement(f"SELECT db, tbl, chunk, this_cnt, this_crc, master_cnt, master_crc "
                  f"FROM {target} WHERE {DIVERGED_SQL} ORDER BY db, tbl, chunk "
                  f"LIMIT {SUMMARY_CHUNKS}"),
    )


def unix_time(value: Any) -> float | None:
    """A DATETIME(6) of the pass record (UTC) as Unix time."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=datetime.UTC).timestamp()
    return datetime.datetime.fromisoformat(str(value)).replace(tzinfo=datetime.UTC).timestamp()


@dataclass(frozen=True)
class Summary:
    """What one server's checksum table says, as applied there."""

    read_at: float
    # The last completed pass (its record's `finished`); None: none reached this server yet.
    last_pass: float | None
    # The latest pass's start; after `last_pass` while a pass is under way (or was cut short).
    pass_started: float | None
    checked: int
    diverged: int
    first_diverged: tuple[ChunkRow, ...] = ()

    @property
    def diverged_tables(self) -> list[str]:
        return sorted({f"{row.db}.{row.table}" for row in self.first_diverged})

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_pass": _iso(self.last_pass),
            "pass_started": _iso(self.pass_started),
            "checked_chunks": self.checked,
            "diverged_chunks": self.diverged,
            "diverged_tables": self.diverged_tables,
            "first_diverged": [row.as_dict() for row in self.first_diverged],
            "read_at": _iso(self.read_at),
        }

    def sentence(self) -> str:
        text = f"{self.checked} chunks checked, {self.diverged} diverged"
        if self.diverged:
            more = "" if self.diverged <= len(self.first_diverged) else ", ..."
            text += f": {', '.join(self.diverged_tables)}{more}"
        if self.last_pass is None:
            text += " (no completed pass here yet)"
        return text


def _iso(unix: float | None) -> str | None:
    if unix is None:
        return None
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat(timespec="milliseconds")


def summarize(
    read_at: float, pass_row: Mapping[str, Any] | None, counts: Mapping[str, Any] | None,
    diverged_rows: Iterable[Mapping[str, Any]],
) -> Summary:
    chunks = tuple(row for row in map(ChunkRow.of, diverged_rows) if row.diverged)
    return Summary(
        read_at=read_at,
        last_pass=unix_time(pass_row.get("finished")) if pass_row else None,
        pass_started=unix_time(pass_row.get("started")) if pass_row else None,
        checked=int(counts["checked"]) if counts else 0,
        diverged=int(counts["diverged"] or 0) if counts else 0,
        first_diverged=chunks,
    )
