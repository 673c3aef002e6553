"""Status rows parse into one flavor-neutral record, whichever statement produced them.

MARIADB_ROW was recorded from MariaDB 10.11 (`SHOW SLAVE STATUS` through pymysql's DictCursor);
MYSQL84_ROW has MySQL 8.4's `SHOW REPLICA STATUS` columns, in the server's order.
"""

from __future__ import annotations

from typing import Any

from mysqlsts.core.status import Observation, parse_replica_status

MARIADB_ROW: dict[str, Any] = {
    "Slave_IO_State": "Waiting for master to send event", "Master_Host": "127.0.0.1",
    "Master_User": "repl", "Master_Port": 21610, "Connect_Retry": 1,
    "Master_Log_File": "mysql-bin.000001", "Read_Master_Log_Pos": 2660,
    "Relay_Log_File": "relay-bin.000002", "Relay_Log_Pos": 2959,
    "Relay_Master_Log_File": "mysql-bin.000001", "Slave_IO_Running": "Yes",
    "Slave_SQL_Running": "Yes", "Replicate_Do_DB": "", "Replicate_Ignore_DB": "",
    "Replicate_Do_Table": "", "Replicate_Ignore_Table": "", "Replicate_Wild_Do_Table": "",
    "Replicate_Wild_Ignore_Table": "", "Last_Errno": 0, "Last_Error": "", "Skip_Counter": 0,
    "Exec_Master_Log_Pos": 2660, "Relay_Log_Space": 3262, "Until_Condition": "None",
    "Until_Log_File": "", "Until_Log_Pos": 0, "Master_SSL_Allowed": "No",
    "Master_SSL_CA_File": "", "Master_SSL_CA_Path": "", "Master_SSL_Cert": "",
    "Master_SSL_Cipher": "", "Master_SSL_Key": "", "Seconds_Behind_Master": 0,
    "Master_SSL_Verify_Server_Cert": "No", "Last_IO_Errno": 0, "Last_IO_Error": "",
    "Last_SQL_Errno": 0, "Last_SQL_Error": "", "Replicate_Ignore_Server_Ids": "",
    "Master_Server_Id": 100, "Master_SSL_Crl": "", "Master_SSL_Crlpath": "",
    "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-100-11", "Replicate_Do_Domain_Ids": "",
    "Replicate_Ignore_Domain_Ids": "", "Parallel_Mode": "optimistic", "SQL_Delay": 0,
    "SQL_Remaining_Delay": None,
    "Slave_SQL_Running_State": "Slave has read all relay log; waiting for more updates",
    "Slave_DDL_Groups": 8, "Slave_Non_Transactional_Groups": 0,
    "Slave_Transactional_Groups": 3, "Replicate_Rewrite_DB": "",
}

MYSQL84_ROW: dict[str, Any] = {
    "Replica_IO_State": "Waiting for source to send event", "Source_Host": "mysql-0.mysql",
    "Source_User": "repl", "Source_Port": 3306, "Connect_Retry": 10,
    "Source_Log_File": "binlog.000003", "Read_Source_Log_Pos": 1577,
    "Relay_Log_File": "mysql-1-relay-bin.000004", "Relay_Log_Pos": 1793,
    "Relay_Source_Log_File": "binlog.000003", "Replica_IO_Running": "Yes",
    "Replica_SQL_Running": "No", "Replicate_Do_DB": "", "Replicate_Ignore_DB": "",
    "Replicate_Do_Table": "", "Replicate_Ignore_Table": "", "Replicate_Wild_Do_Table": "",
    "Replicate_Wild_Ignore_Table": "", "Last_Errno": 1062,
    "Last_Error": "Could not execute Write_rows event on table app.t; Duplicate entry '1'",
    "Skip_Counter": 0, "Exec_Source_Log_Pos": 1201, "Relay_Log_Space": 2213,
    "Until_Condition": "None", "Until_Log_File": "", "Until_Log_Pos": 0,
    "Source_SSL_Allowed": "No", "Source_SSL_CA_File": "", "Source_SSL_CA_Path": "",
    "Source_SSL_Cert": "", "Source_SSL_Cipher": "", "Source_SSL_Key": "",
    "Seconds_Behind_Source": None, "Source_SSL_Verify_Server_Cert": "No", "Last_IO_Errno": 0,
    "Last_IO_Error": "", "Last_SQL_Errno": 1062,
    "Last_SQL_Error": "Could not execute Write_rows event on table app.t; Duplicate entry '1'",
    "Replicate_Ignore_Server_Ids": "", "Source_Server_Id": 100,
    "Source_UUID": "5b1a2f0e-8c1d-11ef-9f0a-0242ac110002",
    "Source_Info_File": "mysql.slave_master_info", "SQL_Delay": 0,
    "SQL_Remaining_Delay": None, "Replica_SQL_Running_State": "", "Source_Retry_Count": 10,
    "Source_Bind": "", "Last_IO_Error_Timestamp": "",
    "Last_SQL_Error_Timestamp": "241010 12:00:01", "Source_SSL_Crl": "",
    "Source_SSL_Crlpath": "",
    "Retrieved_Gtid_Set": "5b1a2f0e-8c1d-11ef-9f0a-0242ac110002:1-12",
    "Executed_Gtid_Set": "5b1a2f0e-8c1d-11ef-9f0a-0242ac110002:1-9", "Auto_Position": 1,
    "Replicate_Rewrite_DB": "", "Channel_Name": "", "Source_TLS_Version": "",
    "Source_public_key_path": "", "Get_Source_public_key": 1, "Network_Namespace": "",
}


def test_mariadb_slave_status() -> None:
    status = parse_replica_status(MARIADB_ROW)
    assert status is not None
    assert status.configured and status.io_running and status.sql_running
    assert (status.source_host, status.source_port) == ("127.0.0.1", 21610)
    assert status.seconds_behind_source == 0
    assert status.last_errno == 0 and status.last_error == ""
    assert status.gtid_mode == "Slave_Pos" and status.retrieved_gtid == "0-100-11"
    assert (status.relay_log_file, status.relay_log_pos) == ("relay-bin.000002", 2959)
    assert (status.relay_source_log_file, status.exec_source_log_pos) == (
        "mysql-bin.000001", 2660)


def test_mysql_replica_status_with_an_sql_error() -> None:
    status = parse_replica_status(MYSQL84_ROW)
    assert status is not None
    assert status.configured and status.io_running and not status.sql_running
    assert status.sql_state == "No"
    assert status.seconds_behind_source is None  # NULL stays NULL, never 0
    assert status.last_errno == 1062 and "Duplicate entry" in status.last_error
    assert status.gtid_mode == "1"
    assert status.executed_gtid.endswith(":1-9")
    assert status.exec_source_log_pos == 1201 and status.source_port == 3306


def test_io_error_wins_over_sql_error() -> None:
    row = {**MARIADB_ROW, "Slave_IO_Running": "Connecting", "Last_IO_Errno": 2003,
           "Last_IO_Error": "error connecting to master", "Last_SQL_Errno": 1062,
           "Last_SQL_Error": "dup"}
    status = parse_replica_status(row)
    assert status is not None
    assert not status.io_running and status.io_state == "Connecting"
    assert (status.last_errno, status.last_error) == (2003, "error connecting to master")


def test_no_row_and_a_reset_source_are_not_configured() -> None:
    assert parse_replica_status(None) is None
    reset = parse_replica_status({**MARIADB_ROW, "Master_Host": "", "Slave_IO_Running": "No",
                                  "Slave_SQL_Running": "No"})
    assert reset is not None and not reset.configured
    assert not Observation(taken_at=0, up=True, replica=reset).replica_configured


def test_text_values_as_bytes_and_strings() -> None:
    row = {**MYSQL84_ROW, "Source_Host": b"mysql-0.mysql", "Source_Port": "3306",
           "Seconds_Behind_Source": "7"}
    status = parse_replica_status(row)
    assert status is not None
    assert (status.source_host, status.source_port, status.seconds_behind_source) == (
        "mysql-0.mysql", 3306, 7)
