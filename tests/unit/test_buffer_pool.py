"""innodb_buffer_pool_size from the server container's memory limit (`mysqlsts init`)."""

import os

import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.core.cnf import (
    MEMORY_CNF,
    BufferPool,
    ServerMemory,
    buffer_pool_for,
    parse_memory_quantity,
    render_memory_cnf,
)

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2147483648", 2 * GiB),  # the downward API's answer for limits.memory: 2Gi
        ("2Gi", 2 * GiB),
        ("512Mi", 512 * MiB),
        ("512M", 512 * 1000**2),
        (" 1Ti ", 1024 * GiB),
    ],
)
def test_memory_quantities(text, expected):
    assert parse_memory_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "2 GB", "-1", "1.5Gi", "2gi", "lots"])
def test_bad_memory_quantities(text):
    with pytest.raises(ValueError, match="not a memory quantity"):
        parse_memory_quantity(text)


@pytest.mark.parametrize(
    ("limit", "flavor", "expected"),
    [
        # 60 % of 2 GiB is 1228.8 MiB: down to 9 chunks of 128 MiB, never up past the share.
        (2 * GiB, "mariadb", BufferPool(1152 * MiB, None)),
        (1 * GiB, "mariadb", BufferPool(512 * MiB, None)),
        (512 * MiB, "mariadb", BufferPool(256 * MiB, None)),
        # Under one chunk: whole MiB, not below the floor.
        (200 * MiB, "mariadb", BufferPool(120 * MiB, None)),
        (16 * MiB, "mariadb", BufferPool(32 * MiB, None)),
        # MySQL: one instance per GiB (at most 8) and a multiple of chunk x instances, so the
        # server has nothing to round up.
        (2 * GiB, "mysql", BufferPool(1152 * MiB, 1)),
        (6 * GiB, "mysql", BufferPool(3456 * MiB, 3)),
        (64 * GiB, "mysql", BufferPool(38 * GiB, 8)),  # 38.4 GiB down to 8 x 128 MiB steps
        (200 * MiB, "mysql", BufferPool(120 * MiB, 1)),
    ],
)
def test_buffer_pool_is_the_share_of_the_limit_rounded_down(limit, flavor, expected):
    pool = buffer_pool_for(limit, 60, flavor)
    assert pool == expected
    if pool.size >= 128 * MiB:
        assert pool.size % (128 * MiB * (pool.instances or 1)) == 0
        assert pool.size <= limit * 60 // 100


def test_percent_is_honoured():
    assert buffer_pool_for(4 * GiB, 25, "mariadb").size == 1 * GiB
    assert buffer_pool_for(4 * GiB, 75, "mariadb").size == 3 * GiB


def test_rendered_cnf():
    text = render_memory_cnf(ServerMemory(2 * GiB, 60, "mariadb"))
    assert "[mysqld]\n" in text
    assert f"innodb_buffer_pool_size={1152 * MiB}\n" in text
    assert "instances" not in text  # no such variable in MariaDB 10.11: the server would refuse
    mysql = render_memory_cnf(ServerMemory(2 * GiB, 60, "mysql"))
    assert "innodb_buffer_pool_instances=1\n" in mysql


def init(tmp_path, *args, env=None):
    cm = tmp_path / "config-map"
    cm.mkdir(exist_ok=True)
    (cm / "master.cnf").write_text("[mysqld]\nlog-bin\n")
    (cm / "slave.cnf").write_text("[mysqld]\nread_only=ON\n")
    return CliRunner().invoke(
        cli,
        ["init", "--pod-name", "mysql-1", "--config-map-dir", str(cm),
         "--conf-dir", str(tmp_path / "conf.d"), *args],
        env=env or {},
    )


def test_init_writes_the_buffer_pool_from_the_environment(tmp_path):
    # As the StatefulSet passes it: the downward API's bytes in MYSQLSTS_SERVER_MEMORY_LIMIT.
    result = init(tmp_path, env={"MYSQLSTS_SERVER_MEMORY_LIMIT": str(2 * GiB)})
    assert result.exit_code == 0, result.output
    conf = tmp_path / "conf.d"
    assert sorted(os.listdir(conf)) == [MEMORY_CNF, "server-id.cnf", "slave.cnf"]
    assert f"innodb_buffer_pool_size={1152 * MiB}\n" in (conf / MEMORY_CNF).read_text()
    assert "buffer_pool=buffer-pool.cnf" in result.output
    # conf.d is read in name order: the role cnf comes later, so a size set there wins.
    assert sorted([MEMORY_CNF, "slave.cnf", "master.cnf"])[0] == MEMORY_CNF


def test_init_without_a_limit_removes_an_earlier_buffer_pool_file(tmp_path):
    assert init(tmp_path, "--server-memory-limit", "1Gi").exit_code == 0
    assert (tmp_path / "conf.d" / MEMORY_CNF).exists()
    result = init(tmp_path)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "conf.d" / MEMORY_CNF).exists()


def test_init_refuses_a_bad_limit_in_one_line_and_writes_nothing(tmp_path):
    result = init(tmp_path, env={"MYSQLSTS_SERVER_MEMORY_LIMIT": "two gigs"})
    assert result.exit_code == 2
    assert "not a memory quantity" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "conf.d").exists()
