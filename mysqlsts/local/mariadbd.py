"""Run a real `mariadbd` for a local pod: the server container, played by a process."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from mysqlsts.adapters.tools import program, user_args
from mysqlsts.errors import MysqlstsError, describe


@dataclass(frozen=True)
class ServerSpec:
    data_dir: Path
    conf_dir: Path  # what `mysqlsts init` writes: role cnf + server-id.cnf
    run_dir: Path  # socket, pid file, error log, the generated my.cnf
    port: int
    host: str = "127.0.0.1"
    log_dir: Path | None = None  # where the error log goes; the run dir when None

    @property
    def defaults_file(self) -> Path:
        return self.run_dir / "my.cnf"

    @property
    def error_log(self) -> Path:
        return (self.log_dir or self.run_dir) / "mariadbd.err"


def render_my_cnf(spec: ServerSpec) -> str:
    """The base cnf every pod shares; role and identity come from conf_dir, as in a pod."""
    return (
        "[mysqld]\n"
        f"datadir={spec.data_dir}\n"
        f"port={spec.port}\n"
        f"bind-address={spec.host}\n"
        f"socket={spec.run_dir / 'mysqld.sock'}\n"
        f"pid-file={spec.run_dir / 'mysqld.pid'}\n"
        f"log-error={spec.error_log}\n"
        "innodb_buffer_pool_size=64M\n"
        "innodb_log_file_size=48M\n"
        "max_connections=64\n"
        "skip-name-resolve\n"
        f"!includedir {spec.conf_dir}\n"
    )


def server_argv(spec: ServerSpec, euid: int, mariadbd: str = "mariadbd") -> list[str]:
    return [mariadbd, f"--defaults-file={spec.defaults_file}", *user_args(euid)]


def prepare(spec: ServerSpec) -> None:
    """The run and log directories and the generated my.cnf, before mariadbd starts."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    spec.error_log.parent.mkdir(parents=True, exist_ok=True)
    spec.defaults_file.write_text(render_my_cnf(spec))


def supervised_argv(spec: ServerSpec, tool: tuple[str, ...]) -> list[str]:
    """`mysqlsts server -- <mariadbd's arguments>`: the server container's entrypoint (the
    bootstrap, mariadbd as its child, the watchdog), as a local pod runs it."""
    return [*tool, "server", "--", *server_argv(spec, os.geteuid())[1:]]


def start_server(spec: ServerSpec, new_session: bool = True) -> subprocess.Popen[bytes]:
    """Start mariadbd alone, by default in its own process group (so one kill takes all of
    it); a local pod runs `supervised_argv` instead."""
    prepare(spec)
    return subprocess.Popen(
        server_argv(spec, os.geteuid(), program("mariadbd")),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=new_session,
    )


def wait_until_up(
    host: str, port: int, user: str, password: str, timeout: float,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll until the server accepts a login; fail early if its process died."""
    deadline = time.monotonic() + timeout
    last_error = "not tried"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise MysqlstsError(f"mariadbd on port {port} exited with code {process.returncode}")
        try:
            pymysql.connect(
                host=host, port=port, user=user, password=password, connect_timeout=1
            ).close()
            return
        except pymysql.MySQLError as exc:
            last_error = describe(exc)
        time.sleep(0.2)
    raise MysqlstsError(f"server on {host}:{port} not up after {timeout:.0f}s: {last_error}")
