"""`mysqlsts backup verify`, the restore drill, through the real CLI: backups taken from a real
donor (a DonorServer over a real mariadbd) into file:// stores, restored into scratch servers.

A good backup verifies, and the scratch server's table checksums are the donor's at the
backup's GTID; a backup of corrupt data, and a backup whose manifest names another GTID than
its data holds (sealed with the right key, as a buggy writer with the key would), fail with one
line and are recorded `failed`; an interrupted drill leaves no server and no scratch data."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_backup_take import KEY, backup_cli, backup_to_directory
from test_clone import BACKUP_GRANTS, BACKUP_PASSWORD, BACKUP_USER, TOKEN, Donor

from mysqlsts.core.backup_layout import manifest_name
from mysqlsts.core.backup_manifest import render_manifest
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.sidecar.heartbeat import table_statements, write_statement
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings

if TYPE_CHECKING:
    from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets")
    (path / "clone-token").write_text(TOKEN + "\n")
    (path / "backup-key").write_bytes(KEY)
    return path


def beat(server: Server) -> str:
    """Write the heartbeat row as the primary's sidecar writes it; the GTID state it holds."""
    state = str(server.value("SELECT @@global.gtid_binlog_state"))
    statement = write_statement("mysqlsts", time.time(), 100, state)
    server.sql(statement.sql, args=statement.args)
    return state


@pytest.fixture(scope="module")
def donor(mariadb_module: MakeServer, free_port: Callable[[], int],
          secrets_dir: Path) -> Iterator[tuple[Server, Donor]]:
    server = mariadb_module("mysql-0", server_id=100)
    server.sql(f"CREATE USER {BACKUP_USER}@'%' IDENTIFIED BY '{BACKUP_PASSWORD}'",
               f"GRANT {BACKUP_GRANTS} ON *.* TO {BACKUP_USER}@'%'",
               *(statement.sql for statement in table_statements("mysqlsts")))
    server.fill("app.rows", 20_000, payload_bytes=300)
    server.sql("CREATE TABLE app.small (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=Aria",
               "INSERT INTO app.small VALUES (1, 'one'), (2, 'two')")
    running = Donor(server, free_port(), secrets_dir)
    yield server, running
    running.stop()


def verdicts(store_dir: Path, backup: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text())
            for path in sorted((store_dir / "backups" / backup).glob("verify-*.json"))]


def listed_verification(url: str, *extra: str) -> dict[str, str] | None:
    listed = backup_cli("list", "--store", url, "--json", *extra)
    assert listed.returncode == 0, listed.stderr
    entry = json.loads(listed.stdout)["backups"][0]
    verified: dict[str, str] | None = entry["verified"]
    return verified


def scratch_servers(scratch: Path) -> list[int]:
    """Pids of processes whose command line names the scratch dir (a drill's server)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(scratch) in cmdline and "mariadbd" in cmdline:
                found.append(int(proc.name))
    return found


def test_a_good_backup_verifies_with_the_donors_checksums(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path) -> None:
    server, running = donor
    heartbeat = beat(server)
    gtid = server.value("SELECT @@gtid_binlog_pos")
    at_backup = {table: server.checksum(table)[1] for table in ("app.rows", "app.small")}
    url, backup = backup_to_directory(tmp_path / "store", running.port, secrets_dir,
                                      "--encryption-key-file", str(secrets_dir / "backup-key"),
                                      "--part-mib", "4")
    assert listed_verification(url, "--encryption-key-file",
                               str(secrets_dir / "backup-key")) is None
    server.fill("app.rows", 500)  # the donor moves on: the backup must not
    beat(server)
    assert server.checksum("app.rows")[1] != at_backup["app.rows"]

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = backup_cli("verify", "--store", url, "--scratch-dir", str(scratch),
                      "--encryption-key-file", str(secrets_dir / "backup-key"))
    assert done.returncode == 0, done.stderr
    assert f"backup verify: backup {backup} verified: " in done.stderr
    assert f"gtid={gtid}" in done.stderr

    [verdict] = verdicts(tmp_path / "store", backup)
    assert (verdict["result"], verdict["reason"], verdict["gtid"]) == ("ok", "", gtid)
    assert verdict["heartbeat_gtid"] == heartbeat
    checksums = {t["name"]: t["checksum"] for t in verdict["tables"]}
    assert {table: checksums[table] for table in at_backup} == at_backup
    assert "mysqlsts.heartbeat" in checksums and "mysql.gtid_slave_pos" in checksums
    assert listed_verification(url, "--encryption-key-file",
                               str(secrets_dir / "backup-key")) == {
        "time": verdict["started"], "result": "ok"}
    # The verdict is no part: the backup restores as before, and nothing is left behind.
    store = open_store(url, S3Settings())
    keys = BackupKeys.from_secret(KEY)
    assert [m.backup_id for m in read_catalog(store, lambda _: keys.seal_key).backups] == [
        backup]
    assert list(scratch.iterdir()) == [] and scratch_servers(scratch) == []


@contextlib.contextmanager
def a_broken_table(server: Server) -> Iterator[None]:
    """app.broken, a MyISAM table whose data file is cut in half on the donor, for the time
    of the block: a backup tool copies MyISAM files as they are."""
    server.sql("CREATE TABLE app.broken (id INT PRIMARY KEY, note CHAR(200)) ENGINE=MyISAM",
               "INSERT INTO app.broken SELECT seq, 'x' FROM app.seq_1_to_1000",
               "FLUSH TABLES app.broken")
    data_file = server.data_dir / "app" / "broken.MYD"
    with data_file.open("r+b") as handle:
        handle.truncate(data_file.stat().st_size // 2)
    try:
        yield
    finally:
        server.sql("DROP TABLE app.broken")


def test_a_backup_of_corrupt_data_fails_and_is_recorded(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path) -> None:
    """A damaged table on the donor is copied faithfully: the backup is whole, its data is
    not, and only the drill can tell."""
    server, running = donor
    with a_broken_table(server):
        url, backup = backup_to_directory(tmp_path / "store", running.port, secrets_dir)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = backup_cli("verify", "--store", url, "--backup", backup, "--scratch-dir",
                      str(scratch))
    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: backup {backup} failed verification: CHECK TABLE "
                           "app.broken failed: "), done.stderr
    [verdict] = verdicts(tmp_path / "store", backup)
    assert verdict["result"] == "failed" and "app.broken" in verdict["reason"]
    tables = {t["name"]: t for t in verdict["tables"]}
    assert "Corrupt" in tables["app.broken"]["failure"]
    assert tables["app.broken"]["checksum"] is None
    assert tables["app.rows"]["checksum"] == server.checksum("app.rows")[1]  # the others ran
    assert listed_verification(url) == {"time": verdict["started"], "result": "failed"}
    assert list(scratch.iterdir()) == [] and scratch_servers(scratch) == []


def test_a_manifest_naming_another_gtid_fails(donor: tuple[Server, Donor], secrets_dir: Path,
                                              tmp_path: Path) -> None:
    """A manifest sealed with the right key that names a GTID the data does not hold (what a
    writer with a bug would leave): the seal cannot catch it, the drill does."""
    _, running = donor
    store_dir = tmp_path / "store"
    url, backup = backup_to_directory(store_dir, running.port, secrets_dir,
                                      "--encryption-key-file", str(secrets_dir / "backup-key"))
    store = open_store(url, S3Settings())
    keys = BackupKeys.from_secret(KEY)
    [manifest] = read_catalog(store, lambda _: keys.seal_key).backups
    domain, server_id, seq = manifest.gtid.split("-")
    wrong = f"{domain}-{server_id}-{int(seq) + 7}"
    (store_dir / manifest_name(backup)).unlink()
    store.put_new(manifest_name(backup), render_manifest(
        dataclasses.replace(manifest, gtid=wrong), keys.seal_key))

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = backup_cli("verify", "--store", url, "--scratch-dir", str(scratch),
                      "--encryption-key-file", str(secrets_dir / "backup-key"))
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"Error: backup {backup} failed verification: backup {backup}: the data holds GTID "
        f"{manifest.gtid}, the manifest says {wrong}"), done.stderr
    [verdict] = verdicts(store_dir, backup)
    assert verdict["result"] == "failed"
    assert list(scratch.iterdir()) == []


def test_an_interrupted_drill_leaves_nothing(donor: tuple[Server, Donor], secrets_dir: Path,
                                            tmp_path: Path) -> None:
    _, running = donor
    url, backup = backup_to_directory(tmp_path / "store", running.port, secrets_dir)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysqlsts", "backup", "verify", "--store", url,
         "--scratch-dir", str(scratch)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while not scratch_servers(scratch) and time.monotonic() < deadline:
        assert proc.poll() is None, "the drill ended before its server started"
        time.sleep(0.01)
    assert scratch_servers(scratch), "no scratch server seen"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode != 0
    assert scratch_servers(scratch) == []
    assert list(scratch.iterdir()) == []
    assert verdicts(tmp_path / "store", backup) == []  # an interrupt says nothing of the backup
    assert "Traceback" not in stderr


def test_verify_after_drills_the_backup_it_took(donor: tuple[Server, Donor], secrets_dir: Path,
                                                tmp_path: Path) -> None:
    """`backup --verify-after` (the CronJob's step): one process takes the backup, prints its
    id, then drills that backup and records the verdict beside it."""
    server, running = donor
    store_dir = tmp_path / "store"
    url, older = backup_to_directory(store_dir, running.port, secrets_dir)
    gtid = server.value("SELECT @@gtid_binlog_pos")
    at_backup = server.checksum("app.rows")[1]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = backup_cli("--store", url, "--donor", f"127.0.0.1:{running.port}",
                      "--clone-token-file", str(secrets_dir / "clone-token"),
                      "--scratch-dir", str(scratch), env={"MYSQLSTS_VERIFY_AFTER": "true"})
    assert done.returncode == 0, done.stderr
    backup = done.stdout.strip()
    assert backup != older
    assert f"backup verify: backup {backup} verified: " in done.stderr
    assert f"gtid={gtid}" in done.stderr
    [verdict] = verdicts(store_dir, backup)
    assert verdict["result"] == "ok" and verdict["gtid"] == gtid
    assert {t["name"]: t["checksum"] for t in verdict["tables"]}["app.rows"] == at_backup
    assert verdicts(store_dir, older) == []  # the new backup's drill, nobody else's
    listed = backup_cli("list", "--store", url, "--json")
    assert {entry["id"]: entry["verified"] for entry in json.loads(listed.stdout)["backups"]} == {
        older: None, backup: {"time": verdict["started"], "result": "ok"}}
    assert list(scratch.iterdir()) == [] and scratch_servers(scratch) == []


def test_verify_after_a_failed_drill_exits_1_in_one_line(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path) -> None:
    """The backup is committed (its id printed, its manifest there) but does not pass: the
    command exits 3 with the drill's one line, so the Job fails; the verdict says `failed`."""
    server, running = donor
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    url = f"file://{store_dir}"
    with a_broken_table(server):
        done = backup_cli("--store", url, "--donor", f"127.0.0.1:{running.port}",
                          "--clone-token-file", str(secrets_dir / "clone-token"),
                          "--verify-after")
    assert done.returncode == 3, done.stderr
    backup = done.stdout.strip()
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"Error: backup {backup} failed verification: CHECK TABLE "
                                "app.broken failed: "), done.stderr
    assert [line for line in lines if line.startswith("Error: ")] == [lines[-1]]
    assert "Traceback" not in done.stderr
    assert (store_dir / manifest_name(backup)).exists()
    [verdict] = verdicts(store_dir, backup)
    assert verdict["result"] == "failed" and "app.broken" in verdict["reason"]


def test_verify_after_refuses_what_the_drill_cannot_run_before_any_backup(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path) -> None:
    _, running = donor
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    common = ("--store", f"file://{store_dir}", "--donor", f"127.0.0.1:{running.port}",
              "--clone-token-file", str(secrets_dir / "clone-token"), "--verify-after")
    for extra, said in ((("--flavor", "mysql"), "MariaDB backups only"),
                        (("--scratch-dir", str(tmp_path / "nowhere")), "no such directory")):
        done = backup_cli(*common, *extra)
        assert done.returncode != 0
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("Error: ") and said in line, done.stderr
        assert done.stdout == "" and list(store_dir.iterdir()) == []
