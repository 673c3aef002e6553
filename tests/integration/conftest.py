"""Real mariadbd servers on loopback for integration tests.

`mariadb` (a factory fixture) starts servers from a data dir bootstrapped once per session and
copied, so each test gets fresh servers in about a second. `local_set` starts whole `mysqlsts
local` replica sets. Every process started here is stopped at teardown. Ports come from
tests/ports.py's pool: servers from the clone share, sets from the local share.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from mysqlsts.bootstrap import bootstrap_data_dir
from tests.integration.sidecar_servers import (  # noqa: F401 (fixtures of the sidecar modules)
    harness,
    sidecar_ports,
    sidecar_template,
)
from tests.localset import LocalSetFactory, need_mariadb
from tests.ports import PortPool
from tests.servers import MakeServer, ServerFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session", autouse=True)
def private_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This session's own TMPDIR, so every server started from here (mariadbd's tmpdir
    defaults to it) keeps its temporary tables where no other work on the machine cleans up:
    files `#sql-temptable-*` in the shared /tmp were seen deleted under running servers."""
    directory = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(directory))
        yield directory


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
    need_mariadb()
    data_dir = tmp_path_factory.mktemp("template") / "data"
    bootstrap_data_dir(data_dir, root_password)
    return data_dir


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


@pytest.fixture(scope="session")
def local_ports() -> PortPool:
    return PortPool("local")


@pytest.fixture
def local_set(
    tmp_path_factory: pytest.TempPathFactory, local_ports: PortPool
) -> Iterator[LocalSetFactory]:
    """Factory: `local_set(replicas=1)` is a started set for this test."""
    # A short directory, not tmp_path (named after the test): a pod's socket path must stay
    # within the kernel's 107 bytes.
    with ExitStack() as stack:
        yield LocalSetFactory(tmp_path_factory.mktemp("ls"), local_ports, stack)


@pytest.fixture(scope="module")
def local_set_module(
    tmp_path_factory: pytest.TempPathFactory, local_ports: PortPool
) -> Iterator[LocalSetFactory]:
    """Like `local_set`, for a set the tests of a module share."""
    with ExitStack() as stack:
        yield LocalSetFactory(tmp_path_factory.mktemp("ls"), local_ports, stack)


# The modules that take minutes (--durations, 2026-12: about 4.5, 3, 3 and 1.5 min alone), longest
# first. pytest-xdist (--dist loadfile) hands a worker its next module while the current one
# still runs its last tests, so a long module started late ends the run late.
LONGEST_FIRST = ("test_local_set.py", "test_local_set_failures.py", "test_local_set_outage.py",
                 "test_consistency.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, then the other modules with a local set (tens of seconds per
    test), then the short server tests, which fill the workers' gaps at the end. Order within a
    module is kept."""
    with_sets = {item.path for item in items
                 if {"local_set", "local_set_module"} & set(getattr(item, "fixturenames", ()))}

    def rank(item: pytest.Item) -> int:
        if item.path.name in LONGEST_FIRST:
            return LONGEST_FIRST.index(item.path.name)
        return len(LONGEST_FIRST) + (item.path not in with_sets)

    items.sort(key=rank)
