"""Real mariadbd servers on loopback for integration tests.

`mariadb` (a factory fixture) starts servers from a data dir bootstrapped once per session and
copied, so each test gets fresh servers in about a second. Every process started here is stopped
at teardown. Ports come from the clone share of tests/ports.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import pytest
from ports import PortPool

from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.local.mariadbd import ServerSpec, start_server, wait_until_up

pytestmark = pytest.mark.integration


ROLE_CNF = (
    "[mysqld]\n"
    "log_bin=mysql-bin\n"
    "relay_log=relay-bin\n"
    "binlog_format=ROW\n"
    "log_slave_updates=ON\n"
    "gtid_strict_mode=ON\n"
    "relay_log_recovery=ON\n"
    # Tests write bounded data sets; durability costs only time here.
    "sync_binlog=0\n"
    "innodb_flush_log_at_trx_commit=2\n"
)


@pytest.fixture(scope="session")
def free_port() -> PortPool:
    return PortPool("clone")


@dataclass
class Server:
    """A running mariadbd with a root account that logs in with `root_password`."""

    spec: ServerSpec
    server_id: int
    root_password: str
    process: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.spec.host

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def data_dir(self) -> Path:
        return self.spec.data_dir

    def connect(self, **kw: Any) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=self.host, port=self.port, user=kw.pop("user", "root"),
            password=kw.pop("password", self.root_password), autocommit=True,
            connect_timeout=5, read_timeout=600, **kw,
        )

    def sql(self, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements; return the rows of the last one."""
        rows: list[tuple[Any, ...]] = []
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                    rows = list(cursor.fetchall())
        finally:
            conn.close()
        return rows

    def value(self, statement: str) -> Any:
        rows = self.sql(statement)
        return rows[0][0] if rows else None

    def checksum(self, table: str) -> tuple[int, int]:
        return table_checksum(self, table)

    def fill(self, table: str, rows: int, payload_bytes: int = 200) -> None:
        fill_rows(self, table, rows, payload_bytes)

    def start(self, timeout: float = 60) -> None:
        self.process = start_server(self.spec)
        try:
            wait_until_up(self.host, self.port, "root", self.root_password, timeout, self.process)
        except Exception:
            err = self.spec.error_log
            tail = err.read_text()[-2000:] if err.exists() else "(no error log)"
            self.stop()
            raise AssertionError(f"mariadbd on {self.port} did not start:\n{tail}") from None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def root_password() -> str:
    return "root-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def template_data_dir(
    tmp_path_factory: pytest.TempPathFactory, root_password: str
) -> Path:
    """One bootstrapped data dir per session; servers start from copies of it."""
    if shutil.which("mariadbd") is None or shutil.which("mariabackup") is None:
        pytest.skip("mariadbd and mariabackup are not installed (scripts/setup-host test)")
    data_dir = tmp_path_factory.mktemp("template") / "data"
    bootstrap_data_dir(data_dir, root_password)
    return data_dir


MakeServer = Callable[..., Server]


class ServerFactory:
    """Starts servers under `base` from copies of the template; stops them all at the end."""

    def __init__(self, base: Path, template: Path, root_password: str,
                 free_port: PortPool) -> None:
        self.base, self.template, self.root_password = base, template, root_password
        self.free_port = free_port
        self.servers: list[Server] = []

    def __call__(
        self, name: str, server_id: int = 100, data_dir: Path | None = None, start: bool = True,
        extra_cnf: str = "",
    ) -> Server:
        base = self.base / name
        conf_dir = base / "conf.d"
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "role.cnf").write_text(ROLE_CNF + extra_cnf)
        (conf_dir / "server-id.cnf").write_text(f"[mysqld]\nserver_id={server_id}\n")
        if data_dir is None:
            data_dir = base / "data"
            shutil.copytree(self.template, data_dir)
        spec = ServerSpec(data_dir=data_dir, conf_dir=conf_dir, run_dir=base / "run",
                          port=self.free_port())
        server = Server(spec=spec, server_id=server_id, root_password=self.root_password)
        self.servers.append(server)
        if start:
            server.start()
        return server

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture
def mariadb(
    tmp_path: Path, template_data_dir: Path, root_password: str, free_port: PortPool
) -> Iterator[MakeServer]:
    """Factory: `mariadb("a", server_id=100)` starts a server; `data_dir=` reuses one."""
    factory = ServerFactory(tmp_path, template_data_dir, root_password, free_port)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def mariadb_module(
    tmp_path_factory: pytest.TempPathFactory, template_data_dir: Path, root_password: str,
    free_port: PortPool,
) -> Iterator[MakeServer]:
    """Like `mariadb`, for servers a whole test module shares."""
    factory = ServerFactory(tmp_path_factory.mktemp("servers"), template_data_dir,
                            root_password, free_port)
    yield factory
    factory.stop_all()


def table_checksum(server: Server, table: str) -> tuple[int, int]:
    """(row count, CHECKSUM TABLE) of a table: equal on two servers means equal rows."""
    count = server.value(f"SELECT COUNT(*) FROM {table}")
    rows = server.sql(f"CHECKSUM TABLE {table}")
    return int(count), int(rows[0][1])


def fill_rows(server: Server, table: str, rows: int, payload_bytes: int = 200) -> None:
    """Create `table` and fill it with `rows` pseudo-random rows, in bounded batches."""
    server.sql(
        f"CREATE DATABASE IF NOT EXISTS {table.split('.')[0]}",
        f"CREATE TABLE IF NOT EXISTS {table} (id INT AUTO_INCREMENT PRIMARY KEY, "
        "payload VARBINARY(4096) NOT NULL) ENGINE=InnoDB",
    )
    schema = table.split(".")[0]
    batch = 2000
    done = 0
    while done < rows:
        count = min(batch, rows - done)
        # RANDOM_BYTES compresses poorly, like real data; seq_1_to_N is MariaDB's sequence engine.
        server.sql(
            f"INSERT INTO {table} (payload) SELECT RANDOM_BYTES(LEAST(1024, {payload_bytes})) "
            f"FROM {schema}.seq_1_to_{count}"
        )
        done += count
