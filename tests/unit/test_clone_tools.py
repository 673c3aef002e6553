from pathlib import Path

import pytest

from mysqlsts.clone.tools import (
    backup_argv,
    credentials_cnf,
    extract_argv,
    prepare_argv,
    tool_for,
)
from mysqlsts.errors import ConfigError


@pytest.mark.parametrize(("flavor", "backup", "stream"), [
    ("mariadb", "mariabackup", "mbstream"), ("mysql", "xtrabackup", "xbstream")])
def test_commands_per_flavor(flavor, backup, stream):
    tool = tool_for(flavor)
    argv = backup_argv(tool, Path("/w/backup.cnf"), Path("/w/target"), Path("/var/lib/mysql"),
                       "127.0.0.1", 3306, 4)
    assert argv == [
        backup, "--defaults-extra-file=/w/backup.cnf", "--backup", "--stream=xbstream",
        "--target-dir=/w/target", "--datadir=/var/lib/mysql", "--host=127.0.0.1",
        "--port=3306", "--slave-info", "--parallel=4",
    ]
    assert extract_argv(tool, Path("/d/s"), 2) == [stream, "-x", "-C", "/d/s", "--parallel=2"]
    assert prepare_argv(tool, Path("/d/s"), "256M") == [
        backup, "--prepare", "--target-dir=/d/s", "--use-memory=256M"]


def test_no_password_on_the_command_line():
    argv = backup_argv(tool_for("mariadb"), Path("/w/c"), Path("/w/t"), Path("/d"), "h", 1, 1)
    assert not any("password" in arg for arg in argv)


def test_unknown_flavor():
    with pytest.raises(ConfigError, match="unknown flavor"):
        tool_for("postgres")


def test_credentials_cnf_quotes_the_password():
    assert credentials_cnf("bk", 'p"a\\ss#;x') == (
        '[client]\nuser="bk"\npassword="p\\"a\\\\ss#;x"\n')
    with pytest.raises(ConfigError, match="line break"):
        credentials_cnf("bk", "a\nb")
