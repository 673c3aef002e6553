"""`mysqlsts archive` refuses bad input with one line before it contacts anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli


def one_line_failure(args: list[str]) -> str:
    result = CliRunner().invoke(cli, ["archive", *args], env={"MYSQLSTS_STORE": None,
                                                              "MYSQLSTS_PRIMARY": None})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(("args", "expected"), [
    ([], "Error: --store is required (s3://bucket[/prefix] or file:///dir)"),
    (["--store", "file:///x"], "Error: --primary HOST:PORT is required (the primary's "
                               "server)"),
    (["--store", "file:///x", "--primary", "db:99999"], "Error: --primary must be HOST:PORT "
                                                         "(the primary's server), not 'db:99999'"),
    (["--store", "file:///x", "--primary", "db:3306", "--start-gtid", "0-1"],
     "Error: --start-gtid: not a MariaDB GTID: '0-1'"),
    (["--store", "ftp://x", "--primary", "db:3306"], None),
])
def test_bad_options_are_one_line(args: list[str], expected: str | None) -> None:
    line = one_line_failure(args)
    assert line.startswith("Error: ")
    if expected is not None:
        assert line == expected


def test_a_missing_password_file_or_store_is_one_line_and_writes_nothing(
        tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    missing = tmp_path / "nope"
    line = one_line_failure(["--store", f"file://{store}", "--primary", "127.0.0.1:1",
                             "--replication-password-file", str(missing)])
    assert line == f"Error: cannot read replication password file {missing}: No such file or " \
                   "directory"
    assert list(store.iterdir()) == []
    (tmp_path / "pw").write_text("secret-value\n")
    result = CliRunner().invoke(cli, [
        "archive", "--store", f"file://{tmp_path / 'absent'}", "--primary", "127.0.0.1:1",
        "--replication-password-file", str(tmp_path / "pw")])
    assert result.exit_code != 0
    assert "absent" in result.output and "secret-value" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_check_needs_a_store_and_says_when_there_is_no_archive(tmp_path: Path) -> None:
    assert one_line_failure(["check"]) == ("Error: --store is required "
                                           "(s3://bucket[/prefix] or file:///dir)")
    result = CliRunner().invoke(cli, ["archive", "check", "--store", f"file://{tmp_path}"])
    assert result.exit_code == 0, result.output
    assert result.output == f"no archive in file://{tmp_path}\n"
