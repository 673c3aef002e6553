"""A real mariadbd on loopback for tests: start, query, freeze, stop.

The integration harnesses (clone, sidecar, probes) and the probe benchmark build their servers
from this one class; they differ only in how they lay out cnf and data dirs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from mysqlsts.local.mariadbd import ServerSpec, start_server, wait_until_up
from tests.ports import PortPool


@dataclass
class Server:
    """A mariadbd whose root account logs in with `root_password`."""

    spec: ServerSpec
    root_password: str
    name: str = "mariadbd"
    process: subprocess.Popen[bytes] | None = None

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
        kw.setdefault("user", "root")
        kw.setdefault("password", self.root_password)
        kw.setdefault("read_timeout", 600)
        kw.setdefault("cursorclass", pymysql.cursors.DictCursor)
        return pymysql.connect(host=self.host, port=self.port, autocommit=True,
                               connect_timeout=5, **kw)

    def sql(self, *statements: str, args: Any = None) -> list[dict[str, Any]]:
        """Run statements on one connection; the rows of the last one."""
        rows: list[dict[str, Any]] = []
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, args)
                rows = list(cursor.fetchall())
        return rows

    def value(self, statement: str) -> Any:
        """The first column of the first row, or None."""
        rows = self.sql(statement)
        return next(iter(rows[0].values())) if rows else None

    def checksum(self, table: str) -> tuple[int, int]:
        """(row count, CHECKSUM TABLE): equal on two servers means equal rows."""
        count = self.value(f"SELECT COUNT(*) FROM {table}")
        rows = self.sql(f"CHECKSUM TABLE {table}")
        return int(count), int(rows[0]["Checksum"])

    def fill(self, table: str, rows: int, payload_bytes: int = 200) -> None:
        """Create `table` and fill it with `rows` pseudo-random rows, in bounded batches."""
        schema = table.split(".")[0]
        self.sql(
            f"CREATE DATABASE IF NOT EXISTS {schema}",
            f"CREATE TABLE IF NOT EXISTS {table} (id INT AUTO_INCREMENT PRIMARY KEY, "
            "payload VARBINARY(4096) NOT NULL) ENGINE=InnoDB",
        )
        done = 0
        while done < rows:
            count = min(2000, rows - done)
            # RANDOM_BYTES compresses poorly, like real data; seq_1_to_N is MariaDB's sequence
            # engine.
            self.sql(
                f"INSERT INTO {table} (payload) SELECT RANDOM_BYTES(LEAST(1024, {payload_bytes}))"
                f" FROM {schema}.seq_1_to_{count}"
            )
            done += count

    def start(self, timeout: float = 60) -> None:
        self.process = start_server(self.spec)
        try:
            wait_until_up(self.host, self.port, "root", self.root_password, timeout, self.process)
        except Exception as exc:
            log = self.spec.error_log
            tail = log.read_text()[-2000:] if log.exists() else "(no error log)"
            self.stop()
            raise AssertionError(f"{self.name} on {self.port} did not start: {exc}\n{tail}"
                                 ) from None

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def freeze(self) -> None:
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a frozen server cannot shut down
        stop_process(process, grace=60)


def stop_process(process: subprocess.Popen[Any] | None, grace: float) -> None:
    """SIGTERM, then SIGKILL to the whole process group after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


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
        server = Server(spec=spec, root_password=self.root_password, name=name)
        self.servers.append(server)
        if start:
            server.start()
        return server

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()
