"""Replication statements per flavor and version, and the plan from observed status."""

from __future__ import annotations

import pytest
from test_status import MARIADB_ROW, MYSQL84_ROW

from mysqlsts.core.coordinates import Coordinates
from mysqlsts.core.replication import (
    Action,
    Source,
    configure_statements,
    io_restart_due,
    plan_replication,
    restart_io_statements,
    start_statement,
    status_statement,
)
from mysqlsts.core.status import parse_replica_status
from mysqlsts.core.version import ServerVersion, parse_version

MARIADB = parse_version("10.11.6-MariaDB-0+deb12u1")
MYSQL_84 = parse_version("8.4.3")
MYSQL_8023 = parse_version("8.0.23")
MYSQL_8022 = parse_version("8.0.22")
MYSQL_8018 = parse_version("8.0.18")
MYSQL_57 = parse_version("5.7.44-log")

SOURCE = Source("mysql-0.mysql", 3306, "repl", "pa'ss\\word", connect_retry=10)


@pytest.mark.parametrize("version,show,start", [
    (MARIADB, "SHOW SLAVE STATUS", "START SLAVE"),
    (MYSQL_57, "SHOW SLAVE STATUS", "START SLAVE"),
    (MYSQL_8018, "SHOW SLAVE STATUS", "START SLAVE"),
    (MYSQL_8022, "SHOW REPLICA STATUS", "START REPLICA"),
    (MYSQL_84, "SHOW REPLICA STATUS", "START REPLICA"),
])
def test_status_and_start_keywords(version: ServerVersion, show: str, start: str) -> None:
    assert status_statement(version).sql == show
    assert start_statement(version).sql == start


def test_mariadb_configure_from_a_clone_record() -> None:
    statements, origin = configure_statements(
        MARIADB, SOURCE, Coordinates(gtid="0-100-57", binlog_file="mysql-bin.000002",
                                     binlog_position=1234), gtid_state="")
    assert [s.sql for s in statements] == [
        "SET GLOBAL gtid_slave_pos = %s",
        "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
        "MASTER_CONNECT_RETRY=%s, MASTER_USE_GTID=slave_pos",
        "START SLAVE",
    ]
    assert statements[0].args == ("0-100-57",)
    assert statements[1].args == ("mysql-0.mysql", 3306, "repl", "pa'ss\\word", 10)
    assert "0-100-57" in origin


def test_mysql_84_uses_change_replication_source_and_gtid_purged() -> None:
    gtid = "5b1a2f0e-8c1d-11ef-9f0a-0242ac110002:1-12"
    statements, _ = configure_statements(MYSQL_84, SOURCE, Coordinates(gtid=gtid), "")
    assert [s.sql for s in statements] == [
        "SET GLOBAL gtid_purged = %s",
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%s, SOURCE_USER=%s, "
        "SOURCE_PASSWORD=%s, SOURCE_CONNECT_RETRY=%s, SOURCE_AUTO_POSITION=%s, "
        "GET_SOURCE_PUBLIC_KEY=%s",
        "START REPLICA",
    ]
    assert statements[1].args == ("mysql-0.mysql", 3306, "repl", "pa'ss\\word", 10, 1, 1)
    assert "MASTER" not in " ".join(s.sql for s in statements)


def test_mysql_8023_boundary() -> None:
    new, _ = configure_statements(MYSQL_8023, SOURCE, None, "")
    old, _ = configure_statements(MYSQL_8022, SOURCE, None, "")
    assert new[0].sql.startswith("CHANGE REPLICATION SOURCE TO")
    assert old[0].sql.startswith("CHANGE MASTER TO") and "MASTER_AUTO_POSITION=%s" in old[0].sql
    assert "GET_MASTER_PUBLIC_KEY=%s" in old[0].sql
    assert old[-1].sql == "START REPLICA"  # 8.0.22 has START REPLICA but not the new CHANGE


def test_mysql_57_has_no_public_key_option() -> None:
    statements, _ = configure_statements(MYSQL_57, SOURCE, None, "")
    assert "PUBLIC_KEY" not in statements[0].sql
    assert statements[-1].sql == "START SLAVE"


def test_the_servers_own_position_is_never_overwritten() -> None:
    statements, origin = configure_statements(MARIADB, SOURCE, Coordinates(gtid="0-100-57"),
                                              gtid_state="0-100-80")
    assert not any("gtid_slave_pos" in s.sql for s in statements)
    assert "0-100-80" in origin


def test_a_position_behind_the_record_is_moved_to_it() -> None:
    """A backup of a restored primary carries the stale gtid_slave_pos of the replica its own
    backup came from: a replica restored from it starts at the record, never replays."""
    statements, origin = configure_statements(
        MARIADB, SOURCE, Coordinates(gtid="0-100-57,7-100-3"), gtid_state="0-100-20")
    assert statements[0].sql == "SET GLOBAL gtid_slave_pos = %s"
    assert statements[0].args == ("0-100-57,7-100-3",)
    assert "the clone record's GTID" in origin
    # Beside it (another domain ahead) is not behind it: the server's own stays.
    beside, _ = configure_statements(MARIADB, SOURCE, Coordinates(gtid="0-100-57"),
                                     gtid_state="0-100-20,1-100-4")
    assert not any("gtid_slave_pos" in s.sql for s in beside)
    # MySQL keeps a non-empty gtid_executed whatever the record says.
    uuid = "5b1a2f0e-8c1d-11ef-9f0a-0242ac110002"
    mysql, _ = configure_statements(MYSQL_84, SOURCE, Coordinates(gtid=f"{uuid}:1-9"),
                                    gtid_state=f"{uuid}:1-3")
    assert not any("gtid_purged" in s.sql for s in mysql)


def test_no_record_starts_from_an_empty_position() -> None:
    statements, origin = configure_statements(MARIADB, SOURCE, None, "")
    assert [s.sql.split()[0] for s in statements] == ["CHANGE", "START"]
    assert "empty GTID position" in origin


def test_record_without_gtid_uses_file_and_position() -> None:
    record = Coordinates(gtid=None, binlog_file="mysql-bin.000007", binlog_position=881)
    statements, origin = configure_statements(MARIADB, SOURCE, record, "")
    change = statements[0]
    assert "MASTER_LOG_FILE=%s, MASTER_LOG_POS=%s, MASTER_USE_GTID=no" in change.sql
    assert change.args[-2:] == ("mysql-bin.000007", 881)
    mysql, _ = configure_statements(MYSQL_84, SOURCE, record, "")
    assert "SOURCE_LOG_FILE=%s, SOURCE_LOG_POS=%s, SOURCE_AUTO_POSITION=%s" in mysql[0].sql
    assert "mysql-bin.000007:881" in origin


def test_statements_never_show_the_password() -> None:
    statements, _ = configure_statements(MARIADB, SOURCE, None, "")
    text = " ".join(str(s) + repr(s) for s in statements) + repr(SOURCE) + str(SOURCE)
    assert "pa'ss" not in text


def _status(row: dict[str, object]):  # type: ignore[no-untyped-def]
    return parse_replica_status(row)


def test_plan_not_configured_configures() -> None:
    plan = plan_replication(MARIADB, None, SOURCE, None, "")
    assert plan.action is Action.CONFIGURE
    assert plan.statements[-1].sql == "START SLAVE"
    reset = _status({**MARIADB_ROW, "Master_Host": ""})
    assert plan_replication(MARIADB, reset, SOURCE, None, "").action is Action.CONFIGURE


def test_plan_running_is_left_alone() -> None:
    row = {**MARIADB_ROW, "Master_Host": "mysql-0.mysql", "Master_Port": 3306}
    plan = plan_replication(MARIADB, _status(row), SOURCE, Coordinates(gtid="0-100-1"), "0-100-9")
    assert plan.action is Action.LEAVE and plan.statements == ()
    connecting = _status({**row, "Slave_IO_Running": "Connecting"})
    assert plan_replication(MARIADB, connecting, SOURCE, None, "").action is Action.LEAVE


def test_plan_stopped_without_error_starts() -> None:
    row = {**MARIADB_ROW, "Master_Host": "mysql-0.mysql", "Master_Port": 3306,
           "Slave_IO_Running": "No", "Slave_SQL_Running": "No"}
    plan = plan_replication(MARIADB, _status(row), SOURCE, None, "")
    assert plan.action is Action.START
    assert [s.sql for s in plan.statements] == ["START SLAVE"]
    only_sql = _status({**row, "Slave_IO_Running": "Yes"})
    assert plan_replication(MARIADB, only_sql, SOURCE, None, "").action is Action.START


def test_plan_error_is_reported_never_acted_on() -> None:
    plan = plan_replication(MYSQL_84, _status(MYSQL84_ROW), SOURCE, None, "x:1-9")
    assert plan.action is Action.REPORT and plan.statements == ()
    assert "1062" in plan.reason and "SQL error" in plan.reason
    io_error = {**MARIADB_ROW, "Slave_IO_Running": "No", "Last_IO_Errno": 1236,
                "Last_IO_Error": "Got fatal error 1236 from master"}
    plan = plan_replication(MARIADB, _status(io_error), SOURCE, None, "")
    assert plan.action is Action.REPORT and "I/O error 1236" in plan.reason


def test_plan_mentions_a_different_source_but_keeps_it() -> None:
    plan = plan_replication(MARIADB, _status(MARIADB_ROW), SOURCE, None, "")
    assert plan.action is Action.LEAVE
    assert "127.0.0.1:21610" in plan.reason and "left unchanged" in plan.reason


@pytest.mark.parametrize("version,keyword", [
    (MARIADB, "SLAVE"), (MYSQL_8018, "SLAVE"), (MYSQL_8022, "REPLICA"), (MYSQL_84, "REPLICA"),
])
def test_the_io_thread_restarts_alone(version: ServerVersion, keyword: str) -> None:
    assert [s.sql for s in restart_io_statements(version)] == [
        f"STOP {keyword} IO_THREAD", f"START {keyword} IO_THREAD"]


def test_the_io_thread_is_restarted_only_when_the_source_is_back() -> None:
    waiting = parse_replica_status({**MARIADB_ROW, "Slave_IO_Running": "Connecting",
                                    "Last_IO_Errno": 2003, "Last_IO_Error": "refused"})
    assert io_restart_due(waiting, source_reachable=True)
    assert not io_restart_due(waiting, source_reachable=False)
    # Running, stopped by hand, or failing on an error an operator must see: left alone.
    assert not io_restart_due(parse_replica_status(MARIADB_ROW), source_reachable=True)
    stopped = parse_replica_status({**MARIADB_ROW, "Slave_IO_Running": "No"})
    assert not io_restart_due(stopped, source_reachable=True)
    denied = parse_replica_status({**MARIADB_ROW, "Slave_IO_Running": "Connecting",
                                   "Last_IO_Errno": 1045, "Last_IO_Error": "denied"})
    assert not io_restart_due(denied, source_reachable=True)
    assert not io_restart_due(None, source_reachable=True)


def test_a_restored_primary_takes_the_backups_gtid_before_it_logs_anything() -> None:
    from mysqlsts.core.coordinates import Coordinates
    from mysqlsts.core.replication import restored_primary_statements

    record = Coordinates(gtid="0-100-42")
    [statement] = restored_primary_statements(MARIADB, "", record)
    assert (statement.sql, statement.args) == ("SET GLOBAL gtid_binlog_state = %s",
                                               ("0-100-42",))
    # Once anything is logged the binlog is the truth: a restart never rewinds it.
    assert restored_primary_statements(MARIADB, "0-100-43", record) == []
    assert restored_primary_statements(MARIADB, "", None) == []
    assert restored_primary_statements(MARIADB, "", Coordinates(binlog_file="b.1")) == []
    assert restored_primary_statements(MYSQL_84, "", record) == []
