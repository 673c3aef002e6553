"""Which statements stop root (ALL PRIVILEGES) from committing writes on MariaDB 10.11: the
facts the primary lease's fence is chosen by (docs/takeover.md, "Writable only under a lease").

read_only, a revoked READ_ONLY ADMIN and a FLUSH TABLES WITH READ LOCK held by another
connection are all undone by root itself; only a server that is shut down takes no writes.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pymysql
import pytest

from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration


def _run(conn: pymysql.connections.Connection[Any], statement: str) -> int | None:
    """None when the statement succeeds, else the error number."""
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
        return None
    except pymysql.MySQLError as exc:
        return int(exc.args[0])


@pytest.fixture
def server(mariadb: MakeServer) -> Server:
    made = mariadb("facts")
    made.sql("CREATE DATABASE f", "CREATE TABLE f.t (id INT AUTO_INCREMENT PRIMARY KEY)")
    return made


INSERT = "INSERT INTO f.t VALUES ()"


def test_read_only_does_not_bind_root_and_root_lifts_it(server: Server) -> None:
    with contextlib.closing(server.connect()) as admin, \
            contextlib.closing(server.connect()) as root:
        assert _run(admin, "SET GLOBAL read_only = ON") is None
        assert _run(root, INSERT) is None  # SUPER implies READ_ONLY ADMIN on 10.11
        assert _run(root, "SET GLOBAL read_only = OFF") is None


def test_revoking_read_only_admin_does_not_bind_root(server: Server) -> None:
    with contextlib.closing(server.connect()) as admin:
        assert _run(admin, "SET GLOBAL read_only = ON") is None
        assert _run(admin, "REVOKE READ_ONLY ADMIN ON *.* FROM root@localhost") is None
    with contextlib.closing(server.connect()) as root:
        assert _run(root, INSERT) is None  # SUPER still writes through read_only
        assert _run(root, "GRANT ALL PRIVILEGES ON *.* TO root@localhost "
                          "WITH GRANT OPTION") is None  # and takes the privilege back


def test_a_read_lock_blocks_root_until_root_kills_its_holder(server: Server) -> None:
    with contextlib.closing(server.connect()) as holder, \
            contextlib.closing(server.connect(read_timeout=10)) as root:
        assert _run(holder, "FLUSH TABLES WITH READ LOCK") is None
        assert _run(root, "SET SESSION lock_wait_timeout = 1") is None
        assert _run(root, INSERT) == 1205  # ER_LOCK_WAIT_TIMEOUT: blocked, not refused
        assert _run(root, f"KILL {holder.thread_id()}") is None
        assert _run(root, INSERT) is None  # the lock ends with its holder's connection


def test_an_open_transaction_commits_after_read_only_is_set(server: Server) -> None:
    with contextlib.closing(server.connect()) as admin, \
            contextlib.closing(server.connect()) as root:
        assert _run(root, "BEGIN") is None
        assert _run(root, INSERT) is None
        assert _run(admin, "SET GLOBAL read_only = ON") is None
        assert _run(root, "COMMIT") is None


def test_shutdown_ends_every_write_and_outlives_the_connection_that_asked(server: Server) -> None:
    with contextlib.closing(server.connect()) as root:
        assert _run(root, "BEGIN") is None
        assert _run(root, INSERT) is None
        with contextlib.closing(server.connect()) as fence:
            assert _run(fence, "SHUTDOWN") is None
        # SHUTDOWN answers before the server has closed its connections: a COMMIT sent in
        # that window can still succeed (seen here under load), so the fence's deadline is
        # measured to the last accepted write, not to the statement. Once the server is gone,
        # the open transaction cannot commit.
        assert server.process is not None
        assert server.process.wait(60) == 0
        assert _run(root, "COMMIT") in (2006, 2013)  # the connection is gone, nothing commits
    with pytest.raises(pymysql.MySQLError):
        server.connect()


def test_read_only_waits_behind_lock_tables_but_shutdown_does_not(server: Server) -> None:
    with contextlib.closing(server.connect()) as holder, \
            contextlib.closing(server.connect(read_timeout=10)) as fence:
        assert _run(holder, "LOCK TABLES f.t WRITE") is None
        assert _run(fence, "SET SESSION lock_wait_timeout = 1") is None
        assert _run(fence, "SET GLOBAL read_only = ON") == 1205  # waited, and did not happen
        assert _run(fence, "SHUTDOWN") is None
    assert server.process is not None
    assert server.process.wait(60) == 0
