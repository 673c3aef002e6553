"""GTID comparisons: applied-everything and errant transactions, for both flavors."""

from __future__ import annotations

import pytest

from mysqlsts.core.gtid import (
    count_errant,
    gtid_names,
    mariadb_applied,
    mariadb_errant,
    mysql_applied,
    mysql_errant,
    parse_mariadb,
    parse_mysql,
    start_from_record,
)

A = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
B = "8d2a4c1e-0000-11ef-aaaa-0242ac110003"


def test_mariadb_parse() -> None:
    assert [str(g) for g in parse_mariadb("0-100-11, 1-101-5")] == ["0-100-11", "1-101-5"]
    assert parse_mariadb("") == ()
    with pytest.raises(ValueError):
        parse_mariadb("0-100")


@pytest.mark.parametrize("retrieved,executed,applied", [
    ("0-100-11", "0-100-11", True),
    ("0-100-11", "0-100-10", False),
    ("0-100-11", "0-101-12", True),  # seq grows in the domain, whoever wrote it
    ("0-100-11,1-100-3", "0-100-11", False),
    ("", "0-100-1", True),
])
def test_mariadb_applied(retrieved: str, executed: str, applied: bool) -> None:
    assert mariadb_applied(retrieved, executed) is applied


def test_mariadb_errant_ignores_the_primary_and_what_it_holds() -> None:
    primary = "0-100-50,0-102-20"  # 102: an earlier primary whose writes the primary has
    assert mariadb_errant("0-100-60,0-102-20", primary, 100) == []  # ahead of the snapshot
    assert mariadb_errant("0-100-49,0-102-20,0-101-51", primary, 100) == ["0-101-51"]
    assert mariadb_errant("0-102-21", primary, 100) == ["0-102-21"]


def test_mysql_sets() -> None:
    assert parse_mysql(f"{A}:1-5:7,{B.upper()}:3") == {A: ((1, 5), (7, 7)), B: ((3, 3),)}
    assert mysql_applied(f"{A}:1-5", f"{A}:1-9")
    assert not mysql_applied(f"{A}:1-10", f"{A}:1-9")
    with pytest.raises(ValueError):
        parse_mysql(f"{A}:x-3")


def test_mysql_errant_lists_runs_and_counts_transactions() -> None:
    errant = mysql_errant(f"{A}:1-20,{B}:1-3:8", f"{A}:1-10,{B}:2", A)
    assert errant == [f"{B}:1", f"{B}:3", f"{B}:8"]
    assert count_errant(False, mysql_errant(f"{B}:1-4", "", A)) == 4
    assert count_errant(True, ["0-101-51", "1-101-3"]) == 2


def test_each_flavor_names_its_gtid_variables_in_one_place() -> None:
    mariadb, mysql = gtid_names(True), gtid_names(False)
    assert (mariadb.executed, mariadb.binlog_position, mariadb.replica_position,
            mariadb.start_position) == ("gtid_binlog_state", "gtid_binlog_pos",
                                        "gtid_slave_pos", "gtid_slave_pos")
    assert (mysql.executed, mysql.binlog_position, mysql.replica_position,
            mysql.start_position) == ("gtid_executed", "gtid_executed", "gtid_executed",
                                      "gtid_purged")
    # The executed set is reported first: errant transactions are looked for in it.
    assert mariadb.reported[0] == mariadb.executed and mysql.reported == (mysql.executed,)


def test_start_from_the_record_when_empty_or_strictly_behind() -> None:
    assert start_from_record("", "0-100-5", is_mariadb=True)
    assert start_from_record("", "uuid:1-5", is_mariadb=False)
    assert start_from_record("0-100-3", "0-100-5", is_mariadb=True)
    assert not start_from_record("0-100-5", "0-100-5", is_mariadb=True)  # the same
    assert not start_from_record("0-100-6", "0-100-5", is_mariadb=True)  # ahead
    assert not start_from_record("0-100-3,1-100-1", "0-100-5", is_mariadb=True)  # beside
    assert not start_from_record("uuid:1-3", "uuid:1-5", is_mariadb=False)
