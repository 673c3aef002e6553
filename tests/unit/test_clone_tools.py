from pathlib import Path

import pytest

from mysqlsts.clone.mysql_clone import (
    donor_statements,
    recipient_statements,
    supports_clone_plugin,
)
from mysqlsts.clone.tools import (
    backup_argv,
    credentials_cnf,
    extract_argv,
    prepare_argv,
    tool_for,
)
from mysqlsts.core.version import parse_version
from mysqlsts.errors import CloneError, ConfigError


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


MYSQL_8_0_17 = parse_version("8.0.17")


def test_clone_plugin_versions():
    assert supports_clone_plugin(parse_version("8.0.17"))
    assert supports_clone_plugin(parse_version("8.4.3"))
    assert not supports_clone_plugin(parse_version("8.0.16"))
    assert not supports_clone_plugin(parse_version("11.4.2-MariaDB"))


def test_recipient_statements():
    statements = recipient_statements(MYSQL_8_0_17, "mysql-1.mysql", 3306, "clone", "pw'x",
                                      plugin_installed=False)
    assert [s.sql for s in statements] == [
        "INSTALL PLUGIN clone SONAME 'mysql_clone.so'",
        "SET GLOBAL clone_valid_donor_list = 'mysql-1.mysql:3306'",
        "CLONE INSTANCE FROM 'clone'@'mysql-1.mysql':3306 IDENTIFIED BY 'pw\\'x'",
    ]
    assert statements[-1].redacted() == (
        "CLONE INSTANCE FROM 'clone'@'mysql-1.mysql':3306 IDENTIFIED BY '***'")
    installed = recipient_statements(MYSQL_8_0_17, "h", 3306, "u", "p", plugin_installed=True)
    assert not any("INSTALL PLUGIN" in s.sql for s in installed)


def test_donor_statements():
    statements = donor_statements(parse_version("8.0.36"), "clone", "pw", plugin_installed=True)
    assert [s.redacted() for s in statements] == [
        "CREATE USER IF NOT EXISTS 'clone'@'%' IDENTIFIED BY '***'",
        "GRANT BACKUP_ADMIN ON *.* TO 'clone'@'%'",
    ]


@pytest.mark.parametrize("version", ["8.0.16", "10.11.6-MariaDB"])
def test_clone_plugin_refused_where_unsupported(version):
    with pytest.raises(CloneError, match="8.0.17"):
        recipient_statements(parse_version(version), "h", 1, "u", "p", plugin_installed=False)
