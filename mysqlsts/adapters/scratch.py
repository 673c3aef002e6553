"""A scratch mariadbd on a restored data dir: no network (a socket in a private directory), no
grant tables (so no account or password is needed or exposed), no replication started, the
event scheduler off with the grant tables; it dies with this process (PR_SET_PDEATHSIG) and is
stopped on the way out whatever happened. The restore drill checks a backup on it; a
point-in-time recovery applies the archive's transactions on it (with a binary log).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from mysqlsts.adapters.db import close_quietly
from mysqlsts.adapters.process import ProcessGroup
from mysqlsts.adapters.tools import die_with_this_process, last_line, program, user_args
from mysqlsts.errors import MysqlstsError, describe

START_SECONDS = 300.0  # crash recovery of a large restored data dir takes a while
STOP_GRACE = 120.0
STATEMENT_SECONDS = 3600  # CHECK TABLE of a large table reads all of it


class ScratchServerFailed(MysqlstsError):
    """The scratch server did not start, or exited."""


def server_argv(data_dir: Path, run_dir: Path, buffer_pool: str,
                binlog: tuple[str, ...] = ("--skip-log-bin",)) -> list[str]:
    """`binlog`: the binary log options (the drill writes none; a recovery writes one)."""
    return [
        program("mariadbd"), "--no-defaults", f"--datadir={data_dir}",
        f"--socket={run_dir / 'mysqld.sock'}", f"--pid-file={run_dir / 'mysqld.pid'}",
        f"--log-error={run_dir / 'mariadbd.err'}", f"--innodb-buffer-pool-size={buffer_pool}",
        "--skip-networking", "--skip-grant-tables", "--skip-slave-start", *binlog,
        "--myisam-recover-options=OFF", "--aria-recover-options=OFF", "--server-id=1",
        *user_args(),
    ]


@contextlib.contextmanager
def scratch_server(data_dir: Path, run_dir: Path, buffer_pool: str,
                   binlog: tuple[str, ...] = ("--skip-log-bin",),
                   ) -> Iterator[pymysql.connections.Connection[Any]]:
    """A connection to a scratch mariadbd on `data_dir`; the server is stopped on the way out
    (SIGTERM, then SIGKILL to its group), whatever happened."""
    server = ProcessGroup.start(server_argv(data_dir, run_dir, buffer_pool, binlog),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=die_with_this_process())
    conn = None
    try:
        conn = _wait_for(server, run_dir)
        yield conn
    finally:
        close_quietly(conn)
        server.stop(STOP_GRACE)


def _wait_for(server: ProcessGroup,
              run_dir: Path) -> pymysql.connections.Connection[Any]:
    deadline = time.monotonic() + START_SECONDS
    socket = run_dir / "mysqld.sock"
    last = "not tried"
    while time.monotonic() < deadline:
        if not server.running():
            said = error_log_tail(run_dir)
            raise ScratchServerFailed(f"the scratch server on the restored data exited: {said}")
        if socket.exists():
            try:
                return pymysql.connect(unix_socket=str(socket), user="root", autocommit=True,
                                       connect_timeout=5, read_timeout=STATEMENT_SECONDS,
                                       write_timeout=60,
                                       cursorclass=pymysql.cursors.DictCursor)
            except pymysql.MySQLError as error:
                last = describe(error)
        time.sleep(0.2)
    raise ScratchServerFailed(f"the scratch server did not start in {START_SECONDS:.0f}s: {last}")


def error_log_tail(run_dir: Path) -> str:
    try:
        text = (run_dir / "mariadbd.err").read_text(errors="replace")
    except OSError:
        return "no error log"
    return last_line(text, skip=("Aborting", "Shutdown complete")) or "no error log"


