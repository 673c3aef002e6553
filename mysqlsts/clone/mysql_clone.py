"""The MySQL CLONE plugin path (MySQL >= 8.0.17), as statements (pure; no MySQL binaries here).

Design: unlike a physical backup stream, CLONE INSTANCE runs inside a *running* recipient server
and replaces its data in place, then restarts it. So for MySQL >= 8.0.17 the recipient pod starts
its server on an empty-but-initialised data dir, and the sidecar (not the init container) runs
`recipient_statements` against it, with the donor's sidecar having run `donor_statements` once.
The recipient's server restarts itself when the clone finishes (needs a supervisor: the pod's
container restart). Coordinates then come from `performance_schema.clone_status`
(BINLOG_FILE, BINLOG_POSITION, GTID_EXECUTED), recorded like a stream clone's.
Authentication is MySQL's own (a clone account with BACKUP_ADMIN on the donor); port 3307 and
the clone token are not involved. Statements carrying the password must never be logged: use
`redacted()` for log lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from mysqlsts.core.sql import quote_literal as _quote
from mysqlsts.core.version import ServerVersion
from mysqlsts.errors import CloneError

CLONE_PLUGIN_MIN = (8, 0, 17)


@dataclass(frozen=True)
class Statement:
    sql: str
    secret: str | None = None  # the password it carries, for redaction

    def redacted(self) -> str:
        return self.sql if self.secret is None else self.sql.replace(
            _quote(self.secret), "'***'")


def supports_clone_plugin(version: ServerVersion) -> bool:
    return not version.is_mariadb and version.at_least(*CLONE_PLUGIN_MIN)


def _require(version: ServerVersion) -> None:
    if not supports_clone_plugin(version):
        raise CloneError(
            f"the CLONE plugin needs MySQL >= 8.0.17; this server is {version.flavor} {version}; "
            "use the xtrabackup stream instead"
        )


def install_plugin_statements(installed: bool) -> list[Statement]:
    return [] if installed else [Statement("INSTALL PLUGIN clone SONAME 'mysql_clone.so'")]


def donor_statements(
    version: ServerVersion, user: str, password: str, plugin_installed: bool
) -> list[Statement]:
    """On the donor: the plugin and a clone account with BACKUP_ADMIN only."""
    _require(version)
    account = f"{_quote(user)}@'%'"
    return [
        *install_plugin_statements(plugin_installed),
        Statement(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {_quote(password)}",
                  secret=password),
        Statement(f"GRANT BACKUP_ADMIN ON *.* TO {account}"),
    ]


def recipient_statements(
    version: ServerVersion, donor_host: str, donor_port: int, user: str, password: str,
    plugin_installed: bool,
) -> list[Statement]:
    """On the recipient (connected as an account with CLONE_ADMIN)."""
    _require(version)
    return [
        *install_plugin_statements(plugin_installed),
        Statement(f"SET GLOBAL clone_valid_donor_list = {_quote(f'{donor_host}:{donor_port}')}"),
        Statement(
            f"CLONE INSTANCE FROM {_quote(user)}@{_quote(donor_host)}:{int(donor_port)} "
            f"IDENTIFIED BY {_quote(password)}",
            secret=password,
        ),
    ]


CLONE_STATUS_QUERY = (
    "SELECT STATE, ERROR_NO, ERROR_MESSAGE, BINLOG_FILE, BINLOG_POSITION, GTID_EXECUTED "
    "FROM performance_schema.clone_status"
)
