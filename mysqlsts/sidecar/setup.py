"""The sidecar's one-time set-up of its server: accounts and heartbeat table on the primary,
replication on a replica. Each returns the sentence to log; errors propagate to the loop, which
retries on a later cycle.
"""

from __future__ import annotations

from typing import Any

import pymysql

from mysqlsts.adapters.db import execute
from mysqlsts.core.accounts import backup_account, replication_account
from mysqlsts.core.coordinates import Coordinates
from mysqlsts.core.gtid import gtid_names
from mysqlsts.core.lease import read_only_statements
from mysqlsts.core.replication import Action, Plan, Source, Statement, plan_replication
from mysqlsts.core.status import Observation
from mysqlsts.core.version import ServerVersion
from mysqlsts.settings import Accounts
from mysqlsts.sidecar.heartbeat import table_statements, upgrade_statements


def set_up_primary(
    conn: pymysql.connections.Connection[Any],
    version: ServerVersion,
    accounts: Accounts,
    replication_password: str,
    backup_password: str,
    heartbeat_database: str,
    restored: list[Statement] | None = None,
    lift_read_only: bool = False,
) -> str:
    # Without a primary lease (--primary-lease none) the server, started read-only as every
    # server is, is made writable here; with one, only the lease worker does, and the set-up
    # waits for it (MySQL's super_read_only would refuse these statements anyway).
    if lift_read_only:
        execute(conn, [Statement(text) for text in
                       read_only_statements(False, not version.is_mariadb)])
    # First the GTID state of a primary restored from a backup (before anything is logged);
    # binary logging stays on: the accounts and the table reach the replicas through it.
    execute(conn, [
        *(restored or []),
        *replication_account(version, accounts.replication_user, replication_password),
        *backup_account(version, accounts.backup_user, backup_password),
        *table_statements(heartbeat_database),
        *upgrade_statements(heartbeat_database, version),
    ])
    position = f"binlog GTID state set to the backup's {restored[0].args[0]}, " if restored else ""
    lifted = "read-only lifted (no primary lease), " if lift_read_only else ""
    return (
        f"primary set up: {lifted}{position}accounts {accounts.replication_user} (replication) and "
        f"{accounts.backup_user} (backup) are current, heartbeat table "
        f"{heartbeat_database}.heartbeat exists"
    )


def binlog_state(version: ServerVersion, observation: Observation) -> str:
    """The GTIDs the server's binary log holds (MariaDB `gtid_binlog_state`)."""
    return observation.gtid.get(gtid_names(version.is_mariadb).executed, "")


def gtid_state(version: ServerVersion, observation: Observation) -> str:
    """The server's own replication position: what a clone record must not overwrite."""
    return observation.gtid.get(gtid_names(version.is_mariadb).replica_position, "")


def plan_replica(
    version: ServerVersion, observation: Observation, source: Source, record: Coordinates | None
) -> Plan:
    return plan_replication(version, observation.replica, source, record,
                            gtid_state(version, observation))


def set_up_replica(conn: pymysql.connections.Connection[Any], plan: Plan) -> str:
    if plan.action in (Action.CONFIGURE, Action.START):
        execute(conn, plan.statements)
    return plan.reason
