"""The accounts the primary's sidecar creates, with least privilege, per flavor and version.

Idempotent and password-following: CREATE USER IF NOT EXISTS makes the account once, ALTER USER
sets the current password from the Secret (so a rotated password takes effect on the next sidecar
start), GRANT adds what is missing. User, host and credential are bound arguments, never pasted
into SQL text: `'repl'@'%'` is a valid account name written as two string literals.

The statements run with the binary log on, on purpose: replicas receive the accounts through
replication (or a clone), so every pod can serve as a backup donor with the same account. Turning
the binary log off for them (`sql_log_bin=0`) would leave a replica, and so every clone taken
from it, without the backup account it needs as the next pod's donor. So what reaches the
binary log, and from there every relay log, clone and backup, must not be the password:
- MariaDB logs the statement as written: it gets only the mysql_native_password hash
  (`IDENTIFIED BY PASSWORD '*…'`, computed here), which a holder of the logs cannot log in with;
- MySQL rewrites `IDENTIFIED BY '…'` in CREATE/ALTER USER to the stored hash before logging
  (refman "Passwords and Logging"), and its default caching_sha2_password hash is salted, so it
  is computed by the server.
"""

from __future__ import annotations

import hashlib

from mysqlsts.core.replication import Statement
from mysqlsts.core.version import ServerVersion

ANY_HOST = "%"


def replication_privileges(version: ServerVersion) -> tuple[str, ...]:
    return ("REPLICATION SLAVE",)


def backup_grants(version: ServerVersion) -> tuple[tuple[str, str], ...]:
    """(privileges, object) pairs the backup tool needs on the donor, and nothing more."""
    if version.is_mariadb:
        if version.at_least(10, 5, 9):
            # mariabackup: BACKUP STAGE / FTWRL (RELOAD), the processlist (PROCESS), the binlog
            # position (BINLOG MONITOR) and, with --slave-info on a replica, SHOW SLAVE STATUS.
            return (("RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR", "*.*"),)
        return (("RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT", "*.*"),)
    grants = [("RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT", "*.*")]
    if version.at_least(8):
        # xtrabackup 8 takes a backup lock (BACKUP_ADMIN, also what the CLONE plugin's donor
        # needs) and reads the binlog position from performance_schema.log_status.
        grants = [("BACKUP_ADMIN, RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT", "*.*"),
                  ("SELECT", "performance_schema.log_status")]
        if version.at_least(8, 0, 24):
            grants.append(("SELECT", "performance_schema.keyring_component_status"))
    return tuple(grants)


def native_password_hash(password: str) -> str:
    """mysql_native_password's stored form: '*' + upper hex of SHA1(SHA1(password))."""
    inner = hashlib.sha1(password.encode()).digest()  # noqa: S324 (the protocol's, not ours)
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def credential_clause(version: ServerVersion, password: str) -> tuple[str, str]:
    """`IDENTIFIED …` and its argument, such that the binary log never holds the password."""
    if version.is_mariadb:
        return "IDENTIFIED BY PASSWORD %s", native_password_hash(password)
    return "IDENTIFIED BY %s", password  # the server logs its hash instead


def account_statements(
    version: ServerVersion, user: str, password: str, grants: tuple[tuple[str, str], ...]
) -> list[Statement]:
    account = (user, ANY_HOST)
    clause, credential = credential_clause(version, password)
    statements = [
        Statement(f"CREATE USER IF NOT EXISTS %s@%s {clause}", (*account, credential)),
        Statement(f"ALTER USER %s@%s {clause}", (*account, credential)),
    ]
    statements += [Statement(f"GRANT {privileges} ON {target} TO %s@%s", account)
                   for privileges, target in grants]
    return statements


def replication_account(version: ServerVersion, user: str, password: str) -> list[Statement]:
    grants = ((", ".join(replication_privileges(version)), "*.*"),)
    return account_statements(version, user, password, grants)


def backup_account(version: ServerVersion, user: str, password: str) -> list[Statement]:
    return account_statements(version, user, password, backup_grants(version))
