"""Real mariadbd servers on loopback for integration tests.

`mariadb` (a factory fixture) starts servers from a data dir bootstrapped once per session and
copied, so each test gets fresh servers in about a second. `local_set` starts whole `mysqlsts
local` replica sets. Every process started here is stopped at teardown. Ports come from
tests/ports.py's pool: servers from the clone share, sets from the local share.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.local.mariadbd import ServerSpec
from tests.localset import LOCAL_SET_SPAN, LocalSet
from tests.ports import PortPool
from tests.servers import Server

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
        server = Server(spec=spec, root_password=self.root_password, name=name)
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


def need_mariadb() -> None:
    if shutil.which("mariadbd") is None or shutil.which("mariabackup") is None:
        pytest.skip("mariadbd and mariabackup are not installed (scripts/setup-host test)")


@pytest.fixture(scope="session")
def local_ports() -> PortPool:
    return PortPool("local")


class LocalSetFactory:
    """Starts `mysqlsts local` sets under `base`, each on its own block of the local share; each
    is brought down (and checked for leftover processes) and its ports released at the end."""

    def __init__(self, base: Path, ports: PortPool, stack: ExitStack) -> None:
        self.base, self.ports, self.stack = base, ports, stack
        self.count = 0

    def __call__(self, replicas: int = 3, env: dict[str, str] | None = None,
                 setup_sql: Sequence[str] = ()) -> LocalSet:
        """A set of `replicas` pods, up and ready; `env` reaches every pod (as a StatefulSet's
        env would); `setup_sql` runs on the primary before the set is handed out."""
        need_mariadb()
        base_port = self.stack.enter_context(self.ports.reserved(LOCAL_SET_SPAN))
        self.count += 1
        directory = self.base / f"local-set-{self.count}"
        local = self.stack.enter_context(
            LocalSet.started(directory, base_port, replicas=replicas, env=env))
        if setup_sql:
            local.sql(0, *setup_sql)
        return local

    def base_port(self) -> int:
        """A reserved block for a test that drives `mysqlsts local up` itself."""
        need_mariadb()
        return self.stack.enter_context(self.ports.reserved(LOCAL_SET_SPAN))


@pytest.fixture
def local_set(tmp_path: Path, local_ports: PortPool) -> Iterator[LocalSetFactory]:
    """Factory: `local_set(replicas=1)` is a started set for this test."""
    with ExitStack() as stack:
        yield LocalSetFactory(tmp_path, local_ports, stack)


@pytest.fixture(scope="module")
def local_set_module(
    tmp_path_factory: pytest.TempPathFactory, local_ports: PortPool
) -> Iterator[LocalSetFactory]:
    """Like `local_set`, for a set the tests of a module share."""
    with ExitStack() as stack:
        yield LocalSetFactory(tmp_path_factory.mktemp("local"), local_ports, stack)
