"""Heartbeat rows in pt-heartbeat's layout and format."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mysqlsts.sidecar.heartbeat import (
    format_ts,
    parse_ts,
    read_statement,
    table_statements,
    write_statement,
)


def test_ts_is_utc_with_microseconds_like_pt_heartbeat() -> None:
    assert format_ts(1_700_000_000.25) == "2023-11-14T22:13:20.250000"
    assert len(format_ts(0.0)) == 26


@pytest.mark.parametrize("text,expected", [
    ("2023-11-14T22:13:20.250000", 1_700_000_000.25),
    ("2023-11-14T22:13:20", 1_700_000_000.0),
    ("2023-11-14 22:13:20.5", 1_700_000_000.5),
])
def test_parse_ts(text: str, expected: float) -> None:
    assert parse_ts(text) == pytest.approx(expected)


def test_parse_ts_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="unrecognised heartbeat timestamp"):
        parse_ts("yesterday")


def test_round_trip_keeps_microseconds() -> None:
    assert parse_ts(format_ts(1_712_345_678.123456)) == pytest.approx(1_712_345_678.123456)


def test_write_binds_every_value() -> None:
    statement = write_statement("mysqlsts", 1_700_000_000.0, 100, "0-100-7")
    assert statement.sql == ("REPLACE INTO `mysqlsts`.`heartbeat` (ts, server_id, gtid) "
                             "VALUES (%s, %s, %s)")
    assert statement.args == ("2023-11-14T22:13:20.000000", 100, "0-100-7")
    assert read_statement("hb", 101).args == (101,)
    assert "NULL AS gtid" in read_statement("hb", 101, with_gtid=False).sql


def _columns(ddl: str) -> list[str]:
    return re.findall(r"^\s*(\w+)\s+(?:varchar|int|bigint|text)", ddl.replace(", ", ",\n"),
                      re.M)


def test_table_is_pt_heartbeats() -> None:
    ours = table_statements("mysqlsts")[1].sql
    # pt-heartbeat's columns, then ours: the primary's executed GTIDs (errant transactions).
    expected = ["ts", "server_id", "file", "position", "relay_master_log_file",
                "exec_master_log_pos", "gtid"]
    assert _columns(ours.split("(", 1)[1]) == expected
    tool = shutil.which("pt-heartbeat")
    if tool is None:
        pytest.skip("percona-toolkit is not installed")
    doc = Path(tool).read_text()  # the DDL is in the tool's own POD
    block = doc[doc.index("CREATE TABLE heartbeat ("):]
    block = block[:block.index(");")]
    theirs = [re.sub(r"\s+--.*", "", line).strip().rstrip(",")
              for line in block.splitlines()[1:] if line.strip()]
    ours_lines = [part.strip() for part in ours.split("(", 1)[1].rsplit(")", 1)[0].split(", ")]
    normalise = [re.sub(r"\s+", " ", line) for line in theirs]
    assert normalise == ours_lines[:-1]
    assert ours_lines[-1] == "gtid text DEFAULT NULL"
