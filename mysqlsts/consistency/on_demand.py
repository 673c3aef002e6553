"""A consistency pass on demand: run one on the primary now, wait until each replica has
applied it, then read every pod's checksum table (`mysqlsts checksum`, `local checksum`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import pymysql

from mysqlsts.adapters.db import close_quietly, connect, first_row, server_version
from mysqlsts.consistency.checksum_pass import ChecksumPass, PassResult
from mysqlsts.consistency.reader import read_summary
from mysqlsts.core import consistency as core
from mysqlsts.core.peers import PeerAddress
from mysqlsts.core.version import ServerVersion
from mysqlsts.errors import MysqlstsError, describe
from mysqlsts.options import ConsistencyOptions

if TYPE_CHECKING:
    from mysqlsts.adapters.db import Connection


@dataclass(frozen=True)
class PodResult:
    pod: str
    summary: core.Summary | None = None
    error: str = ""  # why this pod could not be read; "" when it was

    @property
    def diverged(self) -> bool:
        return self.summary is not None and self.summary.diverged > 0

    def line(self) -> str:
        if self.error:
            return f"{self.pod}: not checked: {self.error}"
        assert self.summary is not None
        return f"{self.pod}: {self.summary.sentence()}"


@dataclass(frozen=True)
class SetResult:
    check: PassResult
    pods: tuple[PodResult, ...]

    @property
    def exit_code(self) -> int:
        """0 when every pod was read and none diverged; 1 otherwise."""
        return 1 if any(p.diverged or p.error for p in self.pods) else 0

    def lines(self) -> list[str]:
        return [pod.line() for pod in self.pods]


def check_set(
    statefulset: str, primary: PeerAddress, replicas: Sequence[PeerAddress], *, password: str,
    database: str, options: ConsistencyOptions, wait_timeout: float, user: str = "root",
    connect_timeout: float = 5.0,
) -> SetResult:
    """Run one pass on `primary` now, wait (at most `wait_timeout` per replica) until each
    replica has applied it, then read every pod's checksum table. Pods are named
    `<statefulset>-<ordinal>`."""

    def name(pod: PeerAddress) -> str:
        return f"{statefulset}-{pod.ordinal}"

    def open_(pod: PeerAddress, read_timeout: float) -> Connection:
        return connect(pod.host, pod.mysql_port, user, password, connect_timeout=connect_timeout,
                       read_timeout=read_timeout, write_timeout=read_timeout)

    try:
        conn = open_(primary, 3600.0)
    except pymysql.MySQLError as exc:
        raise MysqlstsError(f"cannot reach the primary {name(primary)}: "
                            f"{describe(exc, (password,))}") from exc
    try:
        check = ChecksumPass(conn, database=database, options=options).run()
        version = server_version(conn)
        row = first_row(conn, core.position_statement(version))
        position = str(row["position"] if row else "")
    except pymysql.MySQLError as exc:
        raise MysqlstsError(f"the pass on {name(primary)} failed: "
                            f"{describe(exc, (password,))}") from exc
    finally:
        close_quietly(conn)
    results = [_read_pod(name(primary), partial(open_, primary), database, None)]
    for pod in replicas:
        results.append(_read_pod(name(pod), partial(open_, pod), database,
                                 (version, position, wait_timeout)))
    return SetResult(check, tuple(results))


def _read_pod(
    name: str, open_: Callable[[float], Connection], database: str,
    wait: tuple[ServerVersion, str, float] | None,
) -> PodResult:
    conn = None
    try:
        conn = open_(60.0 if wait is None else wait[2] + 60.0)
        if wait is not None:
            version, position, timeout = wait
            row = first_row(conn, core.wait_statement(version, position, timeout))
            if row is None or row["waited"] is None or int(row["waited"]) != 0:
                return PodResult(name, error=f"did not apply the pass ({position}) "
                                             f"within {timeout:.0f}s")
        summary = read_summary(conn, database, time.time())
    except pymysql.MySQLError as exc:
        return PodResult(name, error=describe(exc))
    finally:
        close_quietly(conn)
    if summary is None:
        return PodResult(name, error="no checksum table here")
    return PodResult(name, summary)
