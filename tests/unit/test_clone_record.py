import json

import pytest

from mysqlsts.clone.record import read_clone_record
from mysqlsts.core.backupinfo import BinlogCoordinates
from mysqlsts.core.clone_record import CloneRecord, DonorRef
from mysqlsts.core.datadir import CLONE_RECORD
from mysqlsts.errors import CloneError

RECORD = CloneRecord(
    donor=DonorRef(1, "mysql-1.mysql", 3307), flavor="mariadb", gtid="0-100-9",
    binlog_file=None, binlog_position=None, coordinates_origin="slave_info",
    donor_binlog=BinlogCoordinates("0-100-9", "mysql-bin.000001", 667),
    bytes=123456, duration_seconds=4.25, completed_at="2024-05-01T10:00:00+00:00",
)


def test_round_trip():
    assert CloneRecord.from_json(RECORD.to_json()) == RECORD


def test_json_shape_names_the_donor():
    body = json.loads(RECORD.to_json())
    assert body["donor"] == {"ordinal": 1, "host": "mysql-1.mysql", "port": 3307}
    assert body["gtid"] == "0-100-9" and body["version"] == 1


@pytest.mark.parametrize("text", ["", "{}", "[]", '{"donor": {"ordinal": "x"}}'])
def test_garbage_is_not_a_record(text):
    with pytest.raises(ValueError, match="not a clone record"):
        CloneRecord.from_json(text)


def test_read_clone_record(tmp_path):
    assert read_clone_record(tmp_path) is None
    (tmp_path / CLONE_RECORD).write_text(RECORD.to_json())
    assert read_clone_record(tmp_path) == RECORD
    (tmp_path / CLONE_RECORD).write_text("{")
    with pytest.raises(CloneError, match="unreadable"):
        read_clone_record(tmp_path)
