import os
import stat

import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.core.cnf import choose_role_cnf
from mysqlsts.core.identity import Role


@pytest.mark.parametrize(
    ("role", "available", "expected"),
    [
        (Role.PRIMARY, {"master.cnf", "slave.cnf"}, "master.cnf"),
        (Role.PRIMARY, {"primary.cnf", "replica.cnf"}, "primary.cnf"),
        (Role.REPLICA, {"master.cnf", "slave.cnf"}, "slave.cnf"),
        (Role.REPLICA, {"primary.cnf", "secondary.cnf"}, "secondary.cnf"),
        (Role.REPLICA, {"primary.cnf", "replica.cnf"}, "replica.cnf"),
        (Role.REPLICA, {"master.cnf"}, None),
    ],
)
def test_role_cnf_choice(role, available, expected):
    assert choose_role_cnf(role, available) == expected


@pytest.fixture
def config_map(tmp_path):
    cm = tmp_path / "config-map"
    cm.mkdir()
    (cm / "master.cnf").write_text("[mysqld]\nlog-bin\n")
    (cm / "slave.cnf").write_text("[mysqld]\nread_only=ON\n")
    return cm


def run_init(pod, cm, conf):
    return CliRunner().invoke(
        cli, ["init", "--pod-name", pod, "--config-map-dir", str(cm), "--conf-dir", str(conf)]
    )


def test_primary_gets_master_cnf_and_server_id(config_map, tmp_path):
    conf = tmp_path / "conf.d"
    result = run_init("mysql-0", config_map, conf)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(conf)) == ["master.cnf", "server-id.cnf"]
    assert (conf / "master.cnf").read_text() == "[mysqld]\nlog-bin\n"
    text = (conf / "server-id.cnf").read_text()
    assert "server_id=100\n" in text
    # Every server starts read-only whatever the ConfigMap's role cnf says (this file sorts
    # after master.cnf and primary.cnf): only the primary's sidecar lifts it.
    assert text.endswith("read_only=ON\n")
    assert sorted(["master.cnf", "primary.cnf", "server-id.cnf"])[-1] == "server-id.cnf"
    assert "report_host=mysql-0.mysql\n" in text


def test_replica_gets_slave_cnf_and_rerun_is_idempotent(config_map, tmp_path):
    conf = tmp_path / "conf.d"
    assert run_init("mysql-2", config_map, conf).exit_code == 0
    first = {name: (conf / name).read_bytes() for name in os.listdir(conf)}
    assert run_init("mysql-2", config_map, conf).exit_code == 0
    second = {name: (conf / name).read_bytes() for name in os.listdir(conf)}
    assert first == second
    assert sorted(first) == ["server-id.cnf", "slave.cnf"]
    assert b"server_id=102\n" in first["server-id.cnf"]


def test_stale_role_file_is_removed(config_map, tmp_path):
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "master.cnf").write_text("left over")
    assert run_init("mysql-1", config_map, conf).exit_code == 0
    assert not (conf / "master.cnf").exists()


@pytest.mark.parametrize(
    ("pod", "setup", "message"),
    [
        ("mysql", None, "does not end in -<ordinal>"),
        ("mysql-4294967295", None, "outside"),
        ("mysql-1", "no-slave-cnf", "has no slave.cnf"),
        ("mysql-1", "no-config-dir", "cannot read config dir"),
        ("mysql-1", "unreadable-cnf", "cannot read"),
        ("mysql-1", "unwritable-conf", "cannot write to conf dir"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(config_map, tmp_path, pod, setup, message):
    conf = tmp_path / "conf.d"
    cm = config_map
    if setup == "no-slave-cnf":
        (cm / "slave.cnf").unlink()
    elif setup == "no-config-dir":
        cm = tmp_path / "missing"
    elif setup == "unreadable-cnf":
        (cm / "slave.cnf").unlink()
        (cm / "slave.cnf").mkdir()  # reading a directory fails even for root
    elif setup == "unwritable-conf":
        conf.write_text("a file where a directory should be")
    result = run_init(pod, cm, conf)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert message in lines[0]


def test_server_id_cnf_is_world_readable(config_map, tmp_path):
    conf = tmp_path / "conf.d"
    assert run_init("mysql-1", config_map, conf).exit_code == 0
    mode = stat.S_IMODE((conf / "server-id.cnf").stat().st_mode)
    assert mode == 0o644


@pytest.mark.parametrize("flag", [["--service", "mysql\n[mysqld]\nskip-grant-tables"],
                                  ["--pod-name", "mysql-1\nskip-grant-tables"]])
def test_a_name_with_a_newline_is_refused_in_one_line_and_writes_nothing(config_map, tmp_path,
                                                                          flag):
    conf = tmp_path / "conf.d"
    args = ["init", "--pod-name", "mysql-1", "--config-map-dir", str(config_map), "--conf-dir",
            str(conf), *flag]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "not a DNS label" in result.output
    assert not conf.exists()
