"""The restore drill's pure parts: what is checked, what fails, where the verdict lives, and
how `backup list` shows it (over a file:// store, through the CLI)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.core.backup_layout import backup_of, manifest_name
from mysqlsts.core.backup_verify import (
    FAILED,
    OK,
    CheckedTable,
    Verdict,
    Verification,
    check_failure,
    gtid_problem,
    heartbeat_problem,
    latest,
    parse_record_name,
    record_name,
    render_verdict,
    tables_to_check,
)
from mysqlsts.core.gtid import mariadb_same_position
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.parts import parts_not_stored, remove_backup
from tests.unit.test_backup_list import START, write_backup

ID = "20261204T190000Z-123abc"
AT = datetime(2026, 12, 4, 20, 15, 7, 123456, tzinfo=UTC)


def test_record_name_round_trip() -> None:
    name = record_name(ID, AT, OK)
    assert name == f"backups/{ID}/verify-20261204T201507Z-ok.json"
    assert parse_record_name(name) == (ID, Verification("2026-12-04T20:15:07+00:00", OK))
    assert backup_of(name) == ID  # it lives under its backup, so it goes with it
    with pytest.raises(ValueError):
        record_name(ID, AT, "maybe")


@pytest.mark.parametrize("name", [
    f"backups/{ID}/manifest.json", f"backups/{ID}/part-000001",
    f"backups/{ID}/verify-20261204T201507Z-maybe.json",
    f"backups/{ID}/verify-20261399T201507Z-ok.json", "backups/not-an-id/verify-20261204T201507Z"
    "-ok.json", f"binlog/{ID}/verify-20261204T201507Z-ok.json",
    f"backups/{ID}/x/verify-20261204T201507Z-ok.json"])
def test_other_names_are_not_verdicts(name: str) -> None:
    assert parse_record_name(name) is None


def test_latest_takes_each_backups_newest() -> None:
    other = "20261205T190000Z-abcdef"
    names = [record_name(ID, AT, OK), record_name(ID, AT + timedelta(hours=1), FAILED),
             record_name(ID, AT - timedelta(days=1), OK), record_name(other, AT, OK),
             f"backups/{ID}/manifest.json"]
    assert latest(names) == {ID: Verification("2026-12-04T21:15:07+00:00", FAILED),
                             other: Verification("2026-12-04T20:15:07+00:00", OK)}


def test_render_verdict() -> None:
    verdict = Verdict(ID, FAILED, "CHECK TABLE app.t failed: Corrupt", AT, 12.3456, "0-100-5",
                      (CheckedTable("app.a", 42), CheckedTable("app.t", None, "Corrupt")),
                      "0-100-4")
    assert json.loads(render_verdict(verdict)) == {
        "backup_id": ID, "result": "failed", "reason": "CHECK TABLE app.t failed: Corrupt",
        "started": "2026-12-04T20:15:07+00:00", "duration_seconds": 12.346,
        "gtid": "0-100-5", "heartbeat_gtid": "0-100-4",
        "tables": [{"name": "app.a", "checksum": 42},
                   {"name": "app.t", "checksum": None, "failure": "Corrupt"}]}


def test_tables_to_check() -> None:
    rows = [{"TABLE_SCHEMA": s, "TABLE_NAME": t, "TABLE_TYPE": k} for s, t, k in [
        ("app", "rows", "BASE TABLE"), ("app", "v", "VIEW"), ("mysql", "user", "VIEW"),
        ("mysql", "global_priv", "BASE TABLE"), ("information_schema", "TABLES", "SYSTEM VIEW"),
        ("performance_schema", "threads", "BASE TABLE"), ("sys", "sys_config", "BASE TABLE"),
        ("app", "seq", "SEQUENCE"), ("a b", "c`d", "BASE TABLE")]]
    assert tables_to_check(rows) == ["a b.c`d", "app.rows", "mysql.global_priv"]


def rows(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Table": "app.t", "Op": "check", "Msg_type": t, "Msg_text": m} for t, m in pairs]


@pytest.mark.parametrize(("result", "failure"), [
    (rows(("status", "OK")), None),
    (rows(("status", "Table is already up to date")), None),
    (rows(("note", "The storage engine for the table doesn't support check")), None),
    (rows(("warning", "1 client is using or hasn't closed the table properly"),
          ("status", "OK")), None),
    (rows(("error", "Size of datafile is:    100      Should be: 200"), ("error", "Corrupt")),
     "Size of datafile is: 100 Should be: 200; Corrupt"),
    (rows(("status", "Operation failed")), "Operation failed"),
    (rows(("Error", "Table 'app.t' doesn't exist"), ("status", "Operation failed")),
     "Table 'app.t' doesn't exist; Operation failed"),
])
def test_check_failure(result: list[dict[str, str]], failure: str | None) -> None:
    assert check_failure(result) == failure


def test_gtid_positions() -> None:
    assert mariadb_same_position("0-100-5,1-101-7", "1-101-7, 0-100-5")
    assert not mariadb_same_position("0-100-5", "0-100-6")
    assert not mariadb_same_position("0-100-5", "0-101-5")  # another server wrote it
    assert not mariadb_same_position("", "0-100-5")
    # A primary's backup: its gtid_slave_pos is empty, the recorded position is applied.
    assert gtid_problem("0-100-5", "", "0-100-5") is None
    # A replica's backup: its own position came with the data.
    assert gtid_problem("0-100-5", "0-100-5", "0-100-5") is None
    assert gtid_problem("0-100-5", "0-100-3", "0-100-3") == (
        "the restored server stands at GTID 0-100-3, the backup's manifest says 0-100-5")
    assert "ahead of the backup's 0-100-5" in str(gtid_problem("0-100-5", "0-100-6", "0-100-6"))
    assert "stands at GTID (none)" in str(gtid_problem("0-100-5", "", ""))


def test_heartbeat_must_be_inside_the_backup() -> None:
    assert heartbeat_problem("0-100-5", "0-100-4") is None
    assert heartbeat_problem("0-100-5", "0-100-5") is None
    assert heartbeat_problem("0-100-5,1-7-3", "0-99-2,0-100-4,1-7-3") is None  # binlog state
    assert heartbeat_problem("0-100-5", "") is None
    assert heartbeat_problem("0-100-5", "0-100-6") == (
        "the heartbeat row was written after GTID 0-100-6, which the backup's position "
        "0-100-5 does not include")
    assert heartbeat_problem("0-100-5", "1-100-1") is not None  # a domain the backup lacks


def test_list_shows_the_last_verification_and_a_verdict_is_no_part(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    verified = write_backup(store, START, "aaaaaa", "0-100-10")
    failed = write_backup(store, START + timedelta(days=1), "bbbbbb", "0-100-20")
    never = write_backup(store, START + timedelta(days=2), "cccccc", "0-100-30")
    store.put_new(record_name(verified, AT, FAILED), b"{}")
    store.put_new(record_name(verified, AT + timedelta(minutes=5), OK), b"{}")
    store.put_new(record_name(failed, AT, FAILED), b"{}")

    catalog = read_catalog(store)
    assert [m.backup_id for m in catalog.backups] == [verified, failed, never]
    assert catalog.incomplete == () and catalog.damaged == ()
    for manifest in catalog.backups:
        assert parts_not_stored(store, manifest) == []

    runner = CliRunner()
    listed = runner.invoke(cli, ["backup", "list", "--store", f"file://{tmp_path}", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [b["verified"] for b in json.loads(listed.output)["backups"]] == [
        {"time": "2026-12-04T20:20:07+00:00", "result": "ok"},
        {"time": "2026-12-04T20:15:07+00:00", "result": "failed"}, None]
    table = runner.invoke(cli, ["backup", "list", "--store", f"file://{tmp_path}"])
    lines = table.output.splitlines()
    assert lines[0].endswith("VERIFIED")
    assert lines[1].endswith("ok 2026-12-04T20:20:07+00:00")
    assert lines[2].endswith("failed 2026-12-04T20:15:07+00:00")
    assert lines[3].endswith("never")

    # Its verdicts go with a removed backup; a verdict alone is no backup.
    remove_backup(store, verified)
    assert not list(store.list(f"backups/{verified}/"))
    store.put_new(record_name(never, AT, OK), b"{}")
    (tmp_path / manifest_name(never)).unlink()
    catalog = read_catalog(store)
    assert [m.backup_id for m in catalog.backups] == [failed]
    assert catalog.incomplete == (never,) and never not in catalog.verified


def test_verify_bad_input_is_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["backup", "verify", "--store", f"file://{tmp_path}/absent"])
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines() == [
        f"Error: store file://{tmp_path}/absent: no such directory"]
    empty = runner.invoke(cli, ["backup", "verify", "--store", f"file://{tmp_path}"])
    assert empty.exit_code == 2  # a configuration error, as `backup restore` says it
    assert empty.output.strip().splitlines() == [
        f"Error: store file://{tmp_path} holds no backup"]
    write_backup(FileStore(tmp_path), START, "aaaaaa", "0-100-10")
    scratch = runner.invoke(cli, ["backup", "verify", "--store", f"file://{tmp_path}",
                                  "--scratch-dir", f"{tmp_path}/nowhere"])
    assert scratch.exit_code == 2
    assert scratch.output.strip().splitlines() == [
        f"Error: scratch dir {tmp_path}/nowhere: no such directory"]
    # A bad scratch dir says nothing about the backup: no verdict is recorded.
    assert not [n for n in FileStore(tmp_path).list("backups/") if "verify-" in n.name]
    # Nor does a key given for an unencrypted backup: the caller's mistake.
    (tmp_path / "key").write_bytes(b"k" * 32)
    keyed = runner.invoke(cli, ["backup", "verify", "--store", f"file://{tmp_path}",
                                "--encryption-key-file", str(tmp_path / "key")])
    assert keyed.exit_code == 2
    assert "is not encrypted, yet a key was given" in keyed.output.strip().splitlines()[-1]
    assert not [n for n in FileStore(tmp_path).list("backups/") if "verify-" in n.name]


def test_a_backup_missing_a_part_fails_before_any_server_and_is_recorded(
        tmp_path: Path) -> None:
    """The restore's own check refuses the backup before anything is extracted: the drill
    records that verdict; an edited manifest is no backup at all (one line, nothing recorded).
    """
    store_dir, scratch = tmp_path / "store", tmp_path / "scratch"
    store_dir.mkdir()
    scratch.mkdir()
    store = FileStore(store_dir)
    backup = write_backup(store, START, "aaaaaa", "0-100-10")
    (store_dir / "backups" / backup / "part-000001").unlink()
    runner = CliRunner()
    url = f"file://{store_dir}"
    failed = runner.invoke(cli, ["backup", "verify", "--store", url, "--scratch-dir",
                                 str(scratch)])
    assert failed.exit_code == 3  # a failed drill (BackupUnverified): the Job fails at once
    [line] = [line for line in failed.output.splitlines() if line.startswith("Error:")]
    assert line.startswith(f"Error: backup {backup} failed verification: backup {backup} "
                           "cannot be restored: ")
    assert "part-000001 is missing" in line
    [verdict] = [info.name for info in store.list("backups/") if "/verify-" in info.name]
    assert verdict.endswith("-failed.json")
    assert json.loads(b"".join(store.get(verdict)))["result"] == "failed"
    assert list(scratch.iterdir()) == []

    edited = write_backup(store, START + timedelta(days=1), "bbbbbb", "0-100-20")
    path = store_dir / manifest_name(edited)
    path.write_text(path.read_text().replace("0-100-20", "0-100-21"))
    refused = runner.invoke(cli, ["backup", "verify", "--store", url, "--scratch-dir",
                                  str(scratch)])
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1].startswith(f"Error: backup {edited}: ")
    assert "altered" in refused.output
    assert not list(store.list(f"backups/{edited}/verify-"))
