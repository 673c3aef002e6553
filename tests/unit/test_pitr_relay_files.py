"""A recovery's relay log files written segment by segment (clone/relay_files.py): one file per
run of segments under the same FORMAT_DESCRIPTION, each readable back as exactly the
transactions added, the index listing them in order; and the relay directory's lifetime."""

from __future__ import annotations

from pathlib import Path

import pytest

from mysqlsts.clone.point_in_time import own_server_id
from mysqlsts.clone.relay_files import RelayFiles, relay_dir
from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_segment import Segment
from mysqlsts.core.datadir import PITR_RELAY
from mysqlsts.core.pitr import transactions_of
from tests.unit.test_binlog_core import fde
from tests.unit.test_pitr_plan import EPOCH, make_segment, transaction


def test_segments_under_one_description_share_a_file_and_a_new_one_starts_another(
        tmp_path: Path) -> None:
    one, two, three, four = (transaction(n, EPOCH + n) for n in range(1, 5))
    upgraded = ev.parse_event(fde(version=b"11.4.2-MariaDB"), checksum=True)
    relay = RelayFiles(tmp_path / "pitr-relay")
    relay.add(make_segment([one]))
    relay.add(make_segment([]))  # nothing chosen in it: no file of its own
    relay.add(make_segment([two]))
    relay.add(Segment(upgraded, (three,)))
    relay.add(make_segment([four]))
    files = relay.close()
    assert [f.name for f in files] == ["pitr-relay.000001", "pitr-relay.000002",
                                       "pitr-relay.000003"]
    assert [transactions_of(f.read_bytes()).transactions for f in files] == [
        (one, two), (three,), (four,)]
    assert transactions_of(files[1].read_bytes()).description.body == upgraded.body
    assert (tmp_path / "pitr-relay.index").read_text() == "".join(f"{f}\n" for f in files)
    assert relay.server_ids == {one.gtid.server_id}
    assert own_server_id(relay.server_ids) not in relay.server_ids


def test_the_relay_dir_is_emptied_first_and_removed_after_whatever_happens(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / PITR_RELAY).mkdir(parents=True)
    (data_dir / PITR_RELAY / "pitr-relay.000009").write_bytes(b"left by a killed run")
    with relay_dir(data_dir) as directory:
        assert directory == data_dir / PITR_RELAY and list(directory.iterdir()) == []
    assert not directory.exists() and data_dir.exists()  # not made here: kept
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError), relay_dir(fresh) as directory:
        (directory / "pitr-relay.000001").write_bytes(b"x")
        raise RuntimeError("a segment refused")
    assert not fresh.exists()  # made for the relay dir alone: removed with it
