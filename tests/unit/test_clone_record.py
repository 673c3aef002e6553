import json
from pathlib import Path

import pytest

from mysqlsts.adapters.datadir import read_clone_failures, read_clone_record, write_clone_record
from mysqlsts.core.backupinfo import BackupCoordinates
from mysqlsts.core.clone_record import CLONE_RECORD, CloneRecord, DonorAddress, record_clone
from mysqlsts.core.coordinates import Coordinates
from mysqlsts.core.datadir import CLONE_FAILURES
from mysqlsts.errors import CloneError

DONOR = DonorAddress(1, "mysql-1.mysql", 3307)
RECORD = CloneRecord(
    donor=DONOR, flavor="mariadb", coordinates=Coordinates("0-100-9"),
    coordinates_origin="slave_info",
    donor_binlog=Coordinates("0-100-9", "mysql-bin.000001", 667),
    bytes=123456, duration_seconds=4.25, completed_at="2024-05-01T10:00:00+00:00",
)


def test_round_trip():
    assert CloneRecord.from_json(RECORD.to_json()) == RECORD


def test_json_shape_names_the_donor():
    body = json.loads(RECORD.to_json())
    assert body["donor"] == {"ordinal": 1, "host": "mysql-1.mysql", "port": 3307}
    assert body["gtid"] == "0-100-9" and body["version"] == 1
    assert body["binlog_file"] is None and body["binlog_position"] is None
    assert body["donor_binlog"] == {"gtid": "0-100-9", "file": "mysql-bin.000001",
                                    "position": 667}


def test_summary_for_status():
    assert RECORD.summary() == {
        "donor": "mysql-1.mysql:3307", "bytes": 123456, "seconds": 4.25, "gtid": "0-100-9",
        "binlog_file": None, "binlog_position": None,
    }


def test_record_from_a_replica_donors_backup_keeps_both_positions():
    own = Coordinates("0-101-3", "mysql-bin.000002", 99)
    primary = Coordinates("0-100-9")
    record = record_clone(BackupCoordinates(own, primary), DONOR, "mariadb", 10, 1.5, "now")
    assert (record.coordinates, record.donor_binlog) == (primary, own)
    assert record.coordinates_origin == "slave_info"


def test_a_backup_without_coordinates_is_refused():
    with pytest.raises(CloneError, match="carries no replication coordinates"):
        record_clone(BackupCoordinates(None, None), DONOR, "mariadb", 10, 1.5, "now")


@pytest.mark.parametrize("text", ["", "{}", "[]", '{"donor": {"ordinal": "x"}}'])
def test_garbage_is_not_a_record(text):
    with pytest.raises(ValueError, match="not a clone record"):
        CloneRecord.from_json(text)


def test_read_clone_record(tmp_path):
    assert read_clone_record(tmp_path) is None
    write_clone_record(tmp_path, RECORD)
    assert read_clone_record(tmp_path) == RECORD
    (tmp_path / CLONE_RECORD).write_text("{")
    with pytest.raises(CloneError, match="unreadable"):
        read_clone_record(tmp_path)


def test_a_record_or_counter_with_an_undecodable_byte_is_one_clone_error(tmp_path: Path) -> None:
    # #13 item 8: one non-UTF-8 byte used to be an uncaught UnicodeDecodeError (a crash loop).
    (tmp_path / CLONE_RECORD).write_bytes(b'{"donor": "\xff"}')
    with pytest.raises(CloneError, match="unreadable"):
        read_clone_record(tmp_path)
    (tmp_path / CLONE_FAILURES).write_bytes(b"\xff\n")
    with pytest.raises(CloneError, match=CLONE_FAILURES):
        read_clone_failures(tmp_path)
