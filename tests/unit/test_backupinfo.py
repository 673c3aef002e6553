from __future__ import annotations

import pytest

from mysqlsts.core.backupinfo import (
    coordinates_from_files,
    flavor_of_version,
    parse_binlog_info,
    parse_slave_info,
)
from mysqlsts.core.coordinates import Coordinates
from mysqlsts.errors import CloneError

UUID1 = "c777888a-b6df-11e2-a604-080027635ef5"
UUID2 = "5c2b1b5e-2a1c-11ee-9d1e-0242ac120002"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # MariaDB 10.x (mariabackup 10.11, as captured from a real backup here)
        ("mysql-bin.000001\t1041776\t0-100-12\n",
         Coordinates("0-100-12", "mysql-bin.000001", 1041776)),
        # MariaDB, several replication domains
        ("mysql-bin.000007\t342\t0-100-12,1-101-3\n",
         Coordinates("0-100-12,1-101-3", "mysql-bin.000007", 342)),
        # binlog without GTID
        ("mysql-bin.000002\t1232\n", Coordinates(None, "mysql-bin.000002", 1232)),
        # xtrabackup 8.x: a GTID set
        (f"binlog.000003\t197\t{UUID1}:1-4\n",
         Coordinates(f"{UUID1}:1-4", "binlog.000003", 197)),
        # xtrabackup 8.x: a GTID set broken over lines
        (f"binlog.000003\t197\t{UUID1}:1-5,\n{UUID2}:1-3\n",
         Coordinates(f"{UUID1}:1-5,{UUID2}:1-3", "binlog.000003", 197)),
        # empty GTID column
        ("mysql-bin.000001\t4\t\n", Coordinates(None, "mysql-bin.000001", 4)),
    ],
)
def test_binlog_info_variants(text, expected):
    assert parse_binlog_info(text) == expected


@pytest.mark.parametrize("text", ["", "garbage", "mysql-bin.000001\tnot-a-number\t0-1-2", "\t5\t"])
def test_malformed_binlog_info_is_an_error(text):
    with pytest.raises(CloneError, match="malformed"):
        parse_binlog_info(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # MariaDB GTID replica (captured from mariabackup 10.11 here)
        ("SET GLOBAL gtid_slave_pos = '0-100-9';\nCHANGE MASTER TO master_use_gtid = slave_pos;\n",
         Coordinates("0-100-9", None, None)),
        # MariaDB / xtrabackup file+position replica
        ("CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000002', MASTER_LOG_POS=1234;\n",
         Coordinates(None, "mysql-bin.000002", 1234)),
        # xtrabackup 8.0.23+ file+position
        ("CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='mysql-bin.000004', SOURCE_LOG_POS=99;\n",
         Coordinates(None, "mysql-bin.000004", 99)),
        # xtrabackup 8.x GTID, old and new syntax, multi-line set
        (f"SET GLOBAL gtid_purged='{UUID1}:1-5,\n{UUID2}:1-3';\n"
         "CHANGE MASTER TO MASTER_AUTO_POSITION=1;\n",
         Coordinates(f"{UUID1}:1-5,{UUID2}:1-3", None, None)),
        (f"SET GLOBAL gtid_purged='{UUID1}:1-7';\n"
         "CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION=1 FOR CHANNEL '';\n",
         Coordinates(f"{UUID1}:1-7", None, None)),
        # a replica that never connected: MariaDB writes an empty file name
        ("CHANGE MASTER TO MASTER_LOG_FILE='', MASTER_LOG_POS=0;\n", Coordinates()),
    ],
)
def test_slave_info_variants(text, expected):
    assert parse_slave_info(text) == expected


def test_multi_source_slave_info_is_refused():
    text = ("CHANGE MASTER 'a' TO MASTER_LOG_FILE='a-bin.000001', MASTER_LOG_POS=4;\n"
            "CHANGE MASTER 'b' TO MASTER_LOG_FILE='b-bin.000003', MASTER_LOG_POS=9;\n")
    with pytest.raises(CloneError, match="several sources"):
        parse_slave_info(text)


def test_primary_donor_uses_its_own_binlog():
    coords = coordinates_from_files({"xtrabackup_binlog_info": "mysql-bin.000001\t667\t0-100-11\n"})
    assert coords.origin == "binlog_info"
    assert coords.for_replication == Coordinates("0-100-11", "mysql-bin.000001", 667)


@pytest.mark.parametrize("prefix", ["xtrabackup", "mariadb_backup"])
def test_replica_donor_uses_slave_info_and_keeps_its_own_binlog(prefix):
    coords = coordinates_from_files({
        f"{prefix}_binlog_info": "mysql-bin.000001\t667\t0-101-11\n",
        f"{prefix}_slave_info": "SET GLOBAL gtid_slave_pos = '0-100-9';\n"
                                "CHANGE MASTER TO master_use_gtid = slave_pos;\n",
    })
    assert coords.origin == "slave_info"
    assert coords.for_replication == Coordinates("0-100-9")
    assert coords.donor_binlog == Coordinates("0-101-11", "mysql-bin.000001", 667)


def test_mariadb_11_names_win_over_legacy_names():
    coords = coordinates_from_files({
        "mariadb_backup_binlog_info": "mysql-bin.000002\t10\t0-100-20\n",
        "xtrabackup_binlog_info": "mysql-bin.000001\t4\t0-100-1\n",
    })
    assert coords.for_replication == Coordinates("0-100-20", "mysql-bin.000002", 10)


def test_no_files_means_no_coordinates():
    coords = coordinates_from_files({})
    assert coords.for_replication is None


@pytest.mark.parametrize(("version", "flavor"), [
    ("10.11.6-MariaDB-0+deb12u1-log", "mariadb"), ("11.4.2-MariaDB", "mariadb"),
    ("10.11.6", "mariadb"), ("8.4.3", "mysql"), ("8.0.36-28", "mysql"), ("5.7.44-log", "mysql"),
    ("", None), ("unknown", None),
])
def test_flavor_of_version(version: str, flavor: str | None) -> None:
    assert flavor_of_version(version) == flavor
