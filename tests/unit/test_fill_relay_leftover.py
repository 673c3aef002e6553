"""Every fill of a data dir removes a point-in-time recovery's relay directory that a killed
recovery left (it holds no marker, so the data dir reads as empty), except the fill of the
recovery whose relay files are there; on real paths."""

from pathlib import Path

import pytest

from mysqlsts.adapters.datadir import fill_data_dir, state_of
from mysqlsts.core.datadir import PITR_RELAY, DataDirState


def leftover_relay(data: Path) -> Path:
    """A relay directory as a recovery killed while it read the archive leaves it."""
    relay = data / PITR_RELAY
    relay.mkdir(parents=True)
    (relay / "pitr-relay.000001").write_bytes(b"\xfebin" + b"x" * 65536)
    (relay / "pitr-relay.000002").write_bytes(b"\xfebin")
    return relay


def populate(staging: Path) -> None:
    (staging / "mysql").mkdir()
    (staging / "ibdata1").write_bytes(b"x")


def test_a_fill_removes_a_leftover_relay_dir_with_its_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    leftover_relay(data)
    assert state_of(data) is DataDirState.EMPTY  # no reader takes it for data
    fill_data_dir(data, populate)
    assert sorted(p.name for p in data.iterdir()) == ["ibdata1", "mysql"]
    assert state_of(data) is DataDirState.INITIALIZED


def test_a_fill_that_fails_still_removed_it_and_stays_marked_unfinished(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    relay = leftover_relay(data)

    def failing(staging: Path) -> None:
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        fill_data_dir(data, failing)
    assert not relay.exists()
    assert state_of(data) is DataDirState.INCOMPLETE


def test_the_recoverys_own_fill_keeps_its_relay_files_until_it_removes_them(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    relay = leftover_relay(data)
    seen: list[str] = []

    def applying(staging: Path) -> None:  # what point-in-time recovery's `advance` reads
        seen.extend(sorted(p.name for p in relay.iterdir()))
        populate(staging)

    fill_data_dir(data, applying, relay_in_use=True)
    assert seen == ["pitr-relay.000001", "pitr-relay.000002"]
