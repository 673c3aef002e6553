"""Real mariadbd servers and in-process sidecars for the sidecar's integration tests.

Ports come from the sidecar share of tests/ports.py. Every server and sidecar
started here is stopped by the fixture that made it.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pymysql
import pytest
from prometheus_client import CollectorRegistry

from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.core.identity import identify
from mysqlsts.local.mariadbd import ServerSpec
from mysqlsts.options import (
    LoopOptions,
    PrimaryLeaseOptions,
    ReplicationOptions,
    WatchdogOptions,
)
from mysqlsts.settings import LocalServer, SecretFiles
from mysqlsts.sidecar.app import SidecarApp
from mysqlsts.sidecar.settings import Endpoint, SidecarSettings
from tests.ports import PortPool
from tests.servers import Server

ROLE_CNF = (
    "[mysqld]\n"
    "log_bin=mysql-bin\n"
    "relay_log=relay-bin\n"
    "log_slave_updates=ON\n"
    "gtid_strict_mode=ON\n"
    "relay_log_recovery=ON\n"
    "sync_binlog=0\n"
    "innodb_flush_log_at_trx_commit=2\n"
)
REPLICA_CNF = "read_only=ON\n"


@dataclass(frozen=True)
class Secrets:
    dir: Path
    root: str
    replication: str
    backup: str
    token: str

    def files(self) -> SecretFiles:
        return SecretFiles(
            root_password=self.dir / "root-password",
            replication_password=self.dir / "replication-password",
            backup_password=self.dir / "backup-password",
            clone_token=self.dir / "clone-token",
        )


def write_secrets(directory: Path, root: str) -> Secrets:
    directory.mkdir(parents=True, exist_ok=True)
    # Quotes and a backslash: passwords must travel as escaped literals.
    values = Secrets(directory, root, "re'pl\\" + secrets.token_hex(6),
                     "bk\"up'" + secrets.token_hex(6), secrets.token_hex(16))
    for name, value in (("root-password", values.root),
                        ("replication-password", values.replication),
                        ("backup-password", values.backup), ("clone-token", values.token)):
        path = directory / name
        path.write_text(value + "\n")
        path.chmod(0o600)
    return values


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str, float]:
    """(status, body, seconds taken); status 0 when nothing answers."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.status, resp.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), time.monotonic() - started
    except (urllib.error.URLError, OSError) as exc:  # not listening (yet, or any more)
        return 0, str(exc), time.monotonic() - started


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 0.1) -> float:
    """Poll until `check()`; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


class Harness:
    """Makes servers (from one bootstrapped template) and sidecars, and stops them all."""

    def __init__(self, base: Path, template: Path, root_password: str, ports: PortPool) -> None:
        self.base = base
        self.template = template
        self.ports = ports
        self.secrets = write_secrets(base / "secrets", root_password)
        self.servers: list[Server] = []
        self.apps: list[SidecarApp] = []

    def server(self, name: str, server_id: int, replica: bool = False, port: int | None = None,
               data_dir: Path | None = None) -> Server:
        """A running server on a copy of the template, or on `data_dir` (e.g. a clone)."""
        home = self.base / name
        conf_dir = home / "conf.d"
        conf_dir.mkdir(parents=True)
        (conf_dir / "role.cnf").write_text(ROLE_CNF + (REPLICA_CNF if replica else ""))
        (conf_dir / "server-id.cnf").write_text(f"[mysqld]\nserver_id={server_id}\n")
        if data_dir is None:
            data_dir = home / "data"
            shutil.copytree(self.template, data_dir)
        spec = ServerSpec(data_dir=data_dir, conf_dir=conf_dir, run_dir=home / "run",
                          port=port if port is not None else self.ports())
        server = Server(spec, self.secrets.root, name=name)
        self.servers.append(server)
        server.start()
        return server

    def settings(self, ordinal: int, server: Server, primary: Server, **kw: Any) -> SidecarSettings:
        base = dict(
            identity=identify(f"mysql-{ordinal}", "mysql", 100),
            local=LocalServer(host="127.0.0.1", port=server.port),
            secrets=self.secrets.files(),
            primary=Endpoint("127.0.0.1", primary.port),
            data_dir=server.spec.data_dir,
            listen_address="127.0.0.1",
            http_port=0,
            clone_port=None,
            replication=ReplicationOptions(connect_retry=1),
            loop=LoopOptions(max_backoff=1.0),
            watchdog=WatchdogOptions(watchdog_file=""),  # in-process sidecars: no watchdog
            # No lease unless a test is about it (test_primary_lease.py passes a file store):
            # the primary's set-up then makes it writable.
            lease=PrimaryLeaseOptions(primary_lease="none"),
        )
        base.update(kw)
        return SidecarSettings(**base)  # type: ignore[arg-type]

    def sidecar(self, settings: SidecarSettings) -> SidecarApp:
        app = SidecarApp(settings, registry=CollectorRegistry())
        self.apps.append(app)
        app.start()
        return app

    def stop_sidecar(self, app: SidecarApp) -> None:
        app.stop()
        self.apps.remove(app)

    def close(self) -> None:
        for app in reversed(self.apps):
            app.stop()
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture(scope="session")
def sidecar_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if shutil.which("mariadbd") is None:
        pytest.skip("mariadbd is not installed (scripts/setup-host test)")
    root_password = "root-" + secrets.token_hex(8)
    data_dir = tmp_path_factory.mktemp("sidecar-template") / "data"
    bootstrap_data_dir(data_dir, root_password)
    return data_dir, root_password


@pytest.fixture(scope="session")
def sidecar_ports() -> PortPool:
    return PortPool("sidecar")


@pytest.fixture
def harness(
    tmp_path: Path, sidecar_template: tuple[Path, str], sidecar_ports: PortPool
) -> Iterator[Harness]:
    template, root_password = sidecar_template
    made = Harness(tmp_path, template, root_password, sidecar_ports)
    try:
        yield made
    finally:
        made.close()


class _Connects(Protocol):
    def connect(self, *, read_timeout: float, write_timeout: float) -> Any: ...


class RootWriter:
    """Root inserting into app.t on one connection (reconnecting when dropped), a row every
    `pause` seconds (0: as fast as it can); the monotonic time of the last commit the server
    acknowledged. The lease and watchdog tests measure their deadlines to it."""

    def __init__(self, server: _Connects, pause: float = 0.0) -> None:
        self.server = server
        self.pause = pause
        self.last_commit: float | None = None
        self.commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = None
        while not self._stop.wait(self.pause):
            try:
                if conn is None:
                    conn = self.server.connect(read_timeout=2, write_timeout=2)
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO app.t (v) VALUES (1)")
                self.last_commit = time.monotonic()
                self.commits += 1
            except pymysql.MySQLError:
                conn = None
                time.sleep(0.01)

    def __enter__(self) -> RootWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
