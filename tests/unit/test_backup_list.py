"""`mysqlsts backup list` over a file:// store: only backups with a manifest exist."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.core.backup_layout import backup_id, manifest_name, part_name
from mysqlsts.core.backup_manifest import Manifest, Part, render_manifest
from mysqlsts.store.filestore import FileStore

START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def write_backup(store: FileStore, start: datetime, suffix: str, gtid: str,
                 manifest: bool = True) -> str:
    backup = backup_id(start, suffix)
    data = f"data of {backup}".encode()
    store.put_new(part_name(backup, 1), data)
    if manifest:
        m = Manifest(backup, "mysql", "mariadb", "10.11.6", gtid, start.isoformat(),
                     (start + timedelta(minutes=2)).isoformat(),
                     (Part(part_name(backup, 1), len(data), hashlib.sha256(data).hexdigest()),),
                     "zstd", "")
        store.put_new(manifest_name(backup), render_manifest(m, None))
    return backup


def test_list_json(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    older = write_backup(store, START, "aaaaaa", "0-100-10")
    newer = write_backup(store, START + timedelta(days=1), "bbbbbb", "0-100-20")
    running = write_backup(store, START + timedelta(days=2), "cccccc", "", manifest=False)
    edited = write_backup(store, START + timedelta(days=3), "dddddd", "0-100-30")
    path = tmp_path / manifest_name(edited)
    path.write_text(path.read_text().replace("0-100-30", "0-100-31"))
    store.put_new("binlog/segments/ignored", b"x")

    result = CliRunner().invoke(cli, ["backup", "list", "--store", f"file://{tmp_path}",
                                      "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(b["id"], b["gtid"], b["end_time"]) for b in listed["backups"]] == [
        (older, "0-100-10", "2026-12-01T03:02:00+00:00"),
        (newer, "0-100-20", "2026-12-02T03:02:00+00:00"),
    ]
    assert listed["recoverable"] == {"from": "2026-12-01T03:02:00+00:00",
                                     "to": "2026-12-02T03:02:00+00:00", "continuous": False,
                                     "archived_segments": 0}
    assert listed["incomplete"] == [running]
    assert [d["id"] for d in listed["damaged"]] == [edited]
    assert "altered" in listed["damaged"][0]["reason"]


def test_list_table_and_bad_input(tmp_path: Path) -> None:
    write_backup(FileStore(tmp_path), START, "aaaaaa", "0-100-10")
    runner = CliRunner()
    table = runner.invoke(cli, ["backup", "list", "--store", f"file://{tmp_path}"])
    assert table.exit_code == 0 and "0-100-10" in table.output
    missing = runner.invoke(cli, ["backup", "list", "--store", f"file://{tmp_path}/absent"])
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines() == [
        f"Error: store file://{tmp_path}/absent: no such directory"]
    bad = runner.invoke(cli, ["backup", "list", "--store", "ftp://x"])
    assert bad.exit_code == 2 and "scheme must be s3:// or file://" in bad.output


def test_prune_keeps_what_the_window_needs(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    ages = [30, 20, 9, 6, 1]  # days; window 7d, minimum 2
    ids = [write_backup(store, now - timedelta(days=age), f"00000{n}", f"0-100-{n}")
           for n, age in enumerate(ages)]
    killed = write_backup(store, now - timedelta(days=2), "ffffff", "", manifest=False)
    fresh = write_backup(store, now - timedelta(minutes=5), "eeeeee", "", manifest=False)
    runner = CliRunner()
    args = ["backup", "prune", "--store", f"file://{tmp_path}", "--retain-window", "7d",
            "--retain-min", "2"]
    dry = runner.invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert len(list(store.list())) == 5 * 2 + 2  # nothing deleted

    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    listed = json.loads(runner.invoke(cli, ["backup", "list", "--store", f"file://{tmp_path}",
                                            "--json"]).output)
    # 9 days old is the base for the point 7 days ago; 30 and 20 days go.
    assert [b["id"] for b in listed["backups"]] == ids[2:]
    assert listed["incomplete"] == [fresh]  # may still be running: kept
    assert killed not in {info.name.split("/")[1] for info in store.list()}
    assert "oldest_needed=" + ids[2] in done.output


def test_prune_refuses_a_bad_window(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["backup", "prune", "--store", f"file://{tmp_path}",
                                      "--retain-window", "7w"])
    assert result.exit_code == 2 and "positive number with d, h or m" in result.output


def test_list_json_names_an_archive_it_cannot_read(tmp_path: Path) -> None:
    """The window comes from core.backup_catalog.recoverable, as the metrics' does: an index
    record that does not parse is named, and the backups' own points stand."""
    store = FileStore(tmp_path)
    write_backup(store, START, "aaaaaa", "0-100-10")
    store.put_new("binlog/index/0000000000-0000000100-0000000011-0123456789abcdef.json",
                  b"not json")
    result = CliRunner().invoke(cli, ["backup", "list", "--store", f"file://{tmp_path}",
                                      "--json"])
    assert result.exit_code == 0, result.output
    window = json.loads(result.output)["recoverable"]
    assert window["from"] == window["to"] == "2026-12-01T03:02:00+00:00"
    assert window["continuous"] is False and window["archived_segments"] == 0
    assert "binlog/index/" in window["archive_error"]
