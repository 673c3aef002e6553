"""The one reader for files the tool reads back: missing is None, anything else wrong is one
RecordError naming the file."""

from pathlib import Path

import pytest

from mysqlsts.adapters.fs import read_back
from mysqlsts.core.records import RecordError, parse_count


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert read_back(tmp_path / "absent", parse_count) is None


def test_a_count_is_read(tmp_path: Path) -> None:
    (tmp_path / "n").write_bytes(b"42\n")
    assert read_back(tmp_path / "n", parse_count) == 42


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"4\xff2\n", "undecodable bytes"), (b"-1\n", "does not hold a number: \"-1\""),
     (b"", "does not hold a number"), (b"12 apples", "does not hold a number")],
)
def test_a_damaged_count_is_one_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "n").write_bytes(content)
    with pytest.raises(RecordError, match=str(tmp_path / "n")) as caught:
        read_back(tmp_path / "n", parse_count)
    assert message in str(caught.value)


def test_a_directory_where_a_file_should_be_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    with pytest.raises(RecordError, match=f"cannot read {tmp_path / 'n'}: Is a directory"):
        read_back(tmp_path / "n", parse_count)


def test_a_parser_s_own_value_error_becomes_one_error(tmp_path: Path) -> None:
    (tmp_path / "n").write_bytes(b"x")

    def strict(data: bytes, what: str) -> int:
        return int(data)

    with pytest.raises(RecordError, match="does not hold what it should"):
        read_back(tmp_path / "n", strict)
