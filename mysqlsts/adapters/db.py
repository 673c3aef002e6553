"""Connections to a server, always with timeouts: a hung server must never hang a caller."""

from __future__ import annotations

import contextlib
from typing import Any

import pymysql
import pymysql.cursors

Row = dict[str, Any]


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
