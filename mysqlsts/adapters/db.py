"""Connections to a server, always with timeouts: a hung server must never hang a caller."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pymysql
import pymysql.cursors

from mysqlsts.core.replication import Statement
from mysqlsts.core.version import ServerVersion, parse_version

log = logging.getLogger(__name__)

Row = dict[str, Any]

if TYPE_CHECKING:
    from typing import TypeAlias

    Connection: TypeAlias = pymysql.connections.Connection[Any]


def connect(
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    connect_timeout: float = 2.0,
    read_timeout: float | None = 5.0,
    write_timeout: float | None = 5.0,
) -> pymysql.connections.Connection[pymysql.cursors.DictCursor]:
    return pymysql.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        write_timeout=write_timeout,
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
    )


def close_quietly(conn: pymysql.connections.Connection[Any] | None) -> None:
    """Close a connection that may already be broken; nothing left to report then."""
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def query(conn: pymysql.connections.Connection[Any], sql: str, args: Any = None) -> list[Row]:
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


# "Table doesn't exist", "Unknown database": a table some pass or writer creates is not here
# (yet, or any more).
MISSING_TABLE_ERRNOS = frozenset({1146, 1049})


def is_missing_table(exc: pymysql.MySQLError) -> bool:
    return bool(exc.args) and exc.args[0] in MISSING_TABLE_ERRNOS


def execute(conn: pymysql.connections.Connection[Any], statements: Iterable[Statement]) -> None:
    """Execute statements in order; each is logged as its SQL only (arguments may be
    passwords)."""
    with conn.cursor() as cursor:
        for statement in statements:
            log.debug("running %s", statement)
            cursor.execute(statement.sql, statement.args or None)


def first_row(conn: pymysql.connections.Connection[Any], statement: Statement) -> Row | None:
    """The statement's first row; None when it returned none."""
    rows = query(conn, statement.sql, statement.args or None)
    return rows[0] if rows else None


def version_text(conn: pymysql.connections.Connection[Any]) -> str:
    """`SELECT VERSION()`, as the server spells it."""
    return str(query(conn, "SELECT VERSION() AS v")[0]["v"])


def server_version(conn: pymysql.connections.Connection[Any]) -> ServerVersion:
    return parse_version(version_text(conn))


def accepts_connections(host: str, port: int, timeout: float) -> bool:
    """A TCP connection to a server's port succeeds (it listens: up, or starting to)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


class LocalConnection:
    """The one connection a worker keeps to its local server: opened on first use, dropped
    after a failure (the next use opens a new one), closed when the worker ends. Owned by one
    thread."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._conn: Connection | None = None
        self.version: ServerVersion | None = None
        self.version_text = ""

    def get(self) -> Connection:
        if self._conn is None:
            conn = self._connect()
            try:
                text = version_text(conn)
                self.version = parse_version(text)
            except BaseException:
                close_quietly(conn)
                raise
            self._conn, self.version_text = conn, text
        return self._conn

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
