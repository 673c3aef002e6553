"""`mysqlsts init` sizes the buffer pool from the memory limit, and the server really uses it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.localset import mysqlsts_command
from tests.servers import MakeServer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def run_init(conf_dir: Path, tmp_path: Path, limit: str, role_cnf: str = "[mysqld]\n") -> str:
    """The init container: the downward API's limit in the environment, as the StatefulSet
    passes it."""
    config_map = tmp_path / "config-map"
    config_map.mkdir(exist_ok=True)
    (config_map / "master.cnf").write_text(role_cnf)
    (config_map / "slave.cnf").write_text(role_cnf)
    done = subprocess.run(
        [*mysqlsts_command(), "init", "--pod-name", "mysql-1", "--config-map-dir",
         str(config_map), "--conf-dir", str(conf_dir)],
        env={**os.environ, "MYSQLSTS_SERVER_MEMORY_LIMIT": limit}, capture_output=True,
        text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize(("limit", "pool_mib"), [("2147483648", 1152), ("200Mi", 120)])
def test_server_runs_with_the_buffer_pool_init_chose(
    mariadb: MakeServer, tmp_path: Path, limit: str, pool_mib: int
) -> None:
    server = mariadb("pool", start=False)
    run_init(server.spec.conf_dir, tmp_path, limit)
    server.start()
    assert int(server.value("SELECT @@innodb_buffer_pool_size")) == pool_mib * MiB


def test_a_size_in_the_role_cnf_wins(mariadb: MakeServer, tmp_path: Path) -> None:
    server = mariadb("pool-override", start=False)
    run_init(server.spec.conf_dir, tmp_path, "2Gi", "[mysqld]\ninnodb_buffer_pool_size=256M\n")
    server.start()
    assert int(server.value("SELECT @@innodb_buffer_pool_size")) == 256 * MiB
