"""Least-privilege account statements per flavor and version; passwords only as arguments."""

from __future__ import annotations

from mysqlsts.core.accounts import backup_account, replication_account
from mysqlsts.core.version import parse_version

MARIADB = parse_version("10.11.6-MariaDB")
MARIADB_104 = parse_version("10.4.32-MariaDB")
MYSQL_84 = parse_version("8.4.3")
MYSQL_57 = parse_version("5.7.44")


def test_replication_account_is_idempotent_and_follows_the_password() -> None:
    statements = replication_account(MARIADB, "repl", "s'cret")
    assert [s.sql for s in statements] == [
        "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
        "ALTER USER %s@%s IDENTIFIED BY %s",
        "GRANT REPLICATION SLAVE ON *.* TO %s@%s",
    ]
    assert statements[0].args == ("repl", "%", "s'cret")
    assert statements[2].args == ("repl", "%")
    assert all("s'cret" not in str(s) + repr(s) for s in statements)


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
