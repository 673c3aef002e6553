"""Least-privilege account statements per flavor and version; passwords only as arguments."""

from __future__ import annotations

from mysqlsts.core.accounts import backup_account, native_password_hash, replication_account
from mysqlsts.core.version import parse_version

MARIADB = parse_version("10.11.6-MariaDB")
MARIADB_104 = parse_version("10.4.32-MariaDB")
MYSQL_84 = parse_version("8.4.3")
MYSQL_57 = parse_version("5.7.44")


def test_native_password_hash_is_the_servers() -> None:
    # SELECT PASSWORD('password') on MariaDB and MySQL 5.7 (the integration tier compares
    # others with a real server's PASSWORD()).
    assert native_password_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"


def test_mariadb_accounts_carry_only_the_hash_so_the_binlog_never_holds_the_password() -> None:
    statements = replication_account(MARIADB, "repl", "s'cret")
    assert [s.sql for s in statements] == [
        "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY PASSWORD %s",
        "ALTER USER %s@%s IDENTIFIED BY PASSWORD %s",
        "GRANT REPLICATION SLAVE ON *.* TO %s@%s",
    ]
    assert statements[0].args == ("repl", "%", native_password_hash("s'cret"))
    assert statements[1].args == statements[0].args  # a restart re-applies the hash, not text
    assert statements[2].args == ("repl", "%")
    for statement in [*statements, *backup_account(MARIADB, "bk", "s'cret")]:
        assert all("s'cret" not in str(arg) for arg in statement.args)
        assert "s'cret" not in str(statement) + repr(statement)


def test_mysql_accounts_use_the_form_the_server_rewrites_before_logging() -> None:
    # MySQL writes CREATE/ALTER USER ... IDENTIFIED BY '<text>' to its binary log as
    # IDENTIFIED WITH '<plugin>' AS '<hash>'; other forms (INSERT into mysql.user, or
    # IDENTIFIED WITH ... BY on old versions) are not rewritten, so only this form is used.
    for version in (MYSQL_84, MYSQL_57):
        statements = replication_account(version, "repl", "s'cret")
        assert [s.sql for s in statements][:2] == [
            "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
            "ALTER USER %s@%s IDENTIFIED BY %s",
        ]
        assert statements[0].args == ("repl", "%", "s'cret")
        assert "s'cret" not in str(statements[0]) + repr(statements[0])


def test_mariadb_backup_privileges() -> None:
    grants = [s.sql for s in backup_account(MARIADB, "bk", "pw")][2:]
    assert grants == [
        "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR ON *.* TO %s@%s"]
    old = [s.sql for s in backup_account(MARIADB_104, "bk", "pw")][2:]
    assert old == ["GRANT RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT ON *.* TO %s@%s"]


def test_mysql_8_backup_privileges() -> None:
    grants = [s.sql for s in backup_account(MYSQL_84, "bk", "pw")][2:]
    assert grants == [
        "GRANT BACKUP_ADMIN, RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT ON *.* TO %s@%s",
        "GRANT SELECT ON performance_schema.log_status TO %s@%s",
        "GRANT SELECT ON performance_schema.keyring_component_status TO %s@%s",
    ]
    assert all("SUPER" not in g and "ALL" not in g for g in grants)
    assert [s.sql for s in backup_account(MYSQL_57, "bk", "pw")][2:] == [
        "GRANT RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT ON *.* TO %s@%s"]
