"""`mysqlsts backup` from a real donor (a DonorServer over a real mariadbd) to file:// and to
the moto S3 server, through the real CLI; the stored stream is read back, checked and
extracted with Debian's mbstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pymysql
import pytest
from test_clone import BACKUP_GRANTS, BACKUP_PASSWORD, BACKUP_USER, Donor

from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.open import open_store
from mysqlsts.store.parts import read_parts
from mysqlsts.store.settings import S3Settings
from tests.ports import PortPool
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket
from tests.servers import ServerFactory

if TYPE_CHECKING:
    from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

TOKEN = "integration-clone-token"
KEY = b"backup-at-rest-key-of-32-bytes.."


def write_secrets(path: Path) -> Path:
    """The files the backup tests read: clone tokens, backup keys, S3 key files."""
    (path / "clone-token").write_text(TOKEN + "\n")
    (path / "wrong-token").write_text("not-the-token\n")
    (path / "backup-key").write_bytes(KEY)
    (path / "other-key").write_bytes(b"another-key-of-thirty-two-bytes.")
    (path / "s3-access").write_text(ACCESS_KEY)
    (path / "s3-secret").write_text(SECRET_KEY)
    return path


def backup_donor(server: Server, port: int, secrets_dir: Path) -> Donor:
    """A donor serving backups of `server`, which gets the backup account and 20 000 rows."""
    server.sql(f"CREATE USER {BACKUP_USER}@'%' IDENTIFIED BY '{BACKUP_PASSWORD}'",
               f"GRANT {BACKUP_GRANTS} ON *.* TO {BACKUP_USER}@'%'")
    server.fill("app.rows", 20_000, payload_bytes=300)
    return Donor(server, port, secrets_dir)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_secrets(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="module")
def donor(mariadb_module: MakeServer, free_port: Callable[[], int],
          secrets_dir: Path) -> Iterator[tuple[Server, Donor]]:
    server = mariadb_module("mysql-0", server_id=100)
    running = backup_donor(server, free_port(), secrets_dir)
    yield server, running
    running.stop()


def backup_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mysqlsts", "backup", *args], text=True,
                          capture_output=True, timeout=300, env={**os.environ, **(env or {})})


def backup_to_directory(store_dir: Path, donor_port: int, secrets_dir: Path,
                        *extra: str) -> tuple[str, str]:
    """Take a backup from the donor on `donor_port` into a new file:// store at `store_dir`:
    (the store's URL, the backup's id)."""
    store_dir.mkdir()
    url = f"file://{store_dir}"
    done = backup_cli("--store", url, "--donor", f"127.0.0.1:{donor_port}",
                      "--clone-token-file", str(secrets_dir / "clone-token"), *extra)
    assert done.returncode == 0, done.stderr
    return url, done.stdout.strip()


def extract(stream: Iterator[bytes], into: Path) -> None:
    into.mkdir()
    proc = subprocess.Popen(["mbstream", "-x", "-C", str(into)], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for chunk in stream:
        proc.stdin.write(chunk)
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0


def test_backup_to_a_directory_and_back(donor: tuple[Server, Donor], secrets_dir: Path,
                                        tmp_path: Path) -> None:
    server, running = donor
    gtid = server.value("SELECT @@gtid_binlog_pos")
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    url = f"file://{store_dir}"
    done = backup_cli("--store", url, "--donor", f"127.0.0.1:{running.port}",
                      "--clone-token-file", str(secrets_dir / "clone-token"),
                      "--part-mib", "4")
    assert done.returncode == 0, done.stderr
    backup = done.stdout.strip()
    assert f"backup: complete id={backup} gtid={gtid}" in done.stderr

    listed = backup_cli("list", "--store", url, "--json")
    assert listed.returncode == 0, listed.stderr
    entry = json.loads(listed.stdout)["backups"][0]
    assert (entry["id"], entry["gtid"], entry["encrypted"]) == (backup, gtid, False)
    assert entry["parts"] >= 2 and entry["server_version"].startswith("10.")

    store = open_store(url, S3Settings())
    manifest = read_catalog(store).backups[0]
    extract(read_parts(store, manifest, None), tmp_path / "restored")
    info = (tmp_path / "restored" / "xtrabackup_binlog_info").read_text()
    assert info.split()[-1] == gtid
    assert (tmp_path / "restored" / "app" / "rows.frm").exists()
    # 20 000 rows of 300 random bytes: the table's pages came through (unprepared names).
    assert sum(f.stat().st_size for f in (tmp_path / "restored" / "app").iterdir()) > 6_000_000


def test_an_encrypted_backup_to_s3_and_a_wrong_key(donor: tuple[Server, Donor],
                                                   secrets_dir: Path, tmp_path: Path) -> None:
    server, running = donor
    with S3Server(PortPool("store").one()) as s3:
        create_bucket(s3.endpoint, "bkup")
        s3_args = ["--store", "s3://bkup/set1", "--s3-endpoint", s3.endpoint, "--s3-region",
                   REGION, "--s3-path-style", "--s3-access-key-file",
                   str(secrets_dir / "s3-access"), "--s3-secret-key-file",
                   str(secrets_dir / "s3-secret")]
        done = backup_cli(*s3_args, "--donor", f"127.0.0.1:{running.port}",
                          "--clone-token-file", str(secrets_dir / "clone-token"),
                          "--encryption-key-file", str(secrets_dir / "backup-key"),
                          "--part-mib", "4")
        assert done.returncode == 0, done.stderr
        settings = S3Settings(endpoint=s3.endpoint, region=REGION, path_style=True,
                              access_key_file=secrets_dir / "s3-access",
                              secret_key_file=secrets_dir / "s3-secret")
        store = open_store("s3://bkup/set1", settings)
        keys = BackupKeys.from_secret(KEY)
        manifest = read_catalog(store, lambda key_id: keys.seal_key).backups[0]
        assert manifest.key_id == keys.key_id
        assert manifest.gtid == server.value("SELECT @@gtid_binlog_pos")
        extract(read_parts(store, manifest, keys), tmp_path / "restored")
        assert (tmp_path / "restored" / "xtrabackup_binlog_info").exists()

        from mysqlsts.core.backup_manifest import ManifestError

        other = BackupKeys.from_secret((secrets_dir / "other-key").read_bytes())
        with pytest.raises(ManifestError, match="was encrypted with key id"):
            next(read_parts(store, manifest, other))

        listed = backup_cli("list", *s3_args, "--json", "--encryption-key-file",
                            str(secrets_dir / "other-key"))
        damaged = json.loads(listed.stdout)["damaged"]
        assert "encrypted with key id" in damaged[0]["reason"]
        listed = backup_cli("list", *s3_args, "--json", "--encryption-key-file",
                            str(secrets_dir / "backup-key"))
        assert json.loads(listed.stdout)["backups"][0]["encrypted"] is True

        refused = backup_cli(*s3_args, "--donor", f"127.0.0.1:{running.port}",
                             "--clone-token-file", str(secrets_dir / "wrong-token"))
        assert refused.returncode != 0
        assert refused.stderr.strip().splitlines()[-1].startswith("Error: ")
        assert len(read_catalog(store, lambda key_id: keys.seal_key).backups) == 1


def test_bad_input_is_one_line(secrets_dir: Path, tmp_path: Path) -> None:
    missing = backup_cli("--store", f"file://{tmp_path}/absent", "--donor", "127.0.0.1:1",
                         "--clone-token-file", str(secrets_dir / "clone-token"))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"Error: store file://{tmp_path}/absent: no such directory"]


def test_a_backup_killed_midway_leaves_no_backup(donor: tuple[Server, Donor], secrets_dir: Path,
                                                 tmp_path: Path) -> None:
    _, running = donor
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    url = f"file://{store_dir}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysqlsts", "backup", "--store", url, "--donor",
         f"127.0.0.1:{running.port}", "--clone-token-file", str(secrets_dir / "clone-token"),
         "--part-mib", "1", "--part-parallel", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(store_dir.rglob("part-000002")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the backup ended before it was killed"
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=10)
    listed = json.loads(backup_cli("list", "--store", url, "--json").stdout)
    assert listed["backups"] == [] and len(listed["incomplete"]) == 1
    assert not any(store_dir.rglob("manifest.json"))


def test_restore_gives_a_server_with_the_backups_rows_and_gtid(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path,
        mariadb: MakeServer) -> None:
    server, running = donor
    store_dir = tmp_path / "store"
    url, backup = backup_to_directory(store_dir, running.port, secrets_dir,
                                      "--encryption-key-file", str(secrets_dir / "backup-key"),
                                      "--part-mib", "4")
    gtid = server.value("SELECT @@gtid_binlog_pos")
    data_dir = tmp_path / "restored" / "data"

    wrong = backup_cli("restore", "--store", url, "--data-dir", str(data_dir),
                       "--encryption-key-file", str(secrets_dir / "other-key"))
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines()[-1].startswith("Error: backup ")
    assert not data_dir.exists()  # refused before anything was written

    restored = backup_cli("restore", "--store", url, "--backup", backup, "--data-dir",
                          str(data_dir), "--encryption-key-file",
                          str(secrets_dir / "backup-key"))
    assert restored.returncode == 0, restored.stderr
    assert f"restore complete: backup {backup} gtid={gtid}" in restored.stderr
    record = json.loads((data_dir / "mysqlsts-clone.json").read_text())
    assert record["gtid"] == gtid and record["donor"]["host"] == f"{url}@{backup}"
    copy = mariadb("restored", server_id=150, data_dir=data_dir)
    assert copy.checksum("app.rows") == server.checksum("app.rows")

    again = backup_cli("restore", "--store", url, "--data-dir", str(data_dir),
                       "--encryption-key-file", str(secrets_dir / "backup-key"))
    assert again.returncode == 0 and "restore skipped" in again.stderr


def test_a_damaged_backup_is_refused_before_anything_is_written(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path) -> None:
    _, running = donor
    store_dir = tmp_path / "store"
    url, backup = backup_to_directory(store_dir, running.port, secrets_dir, "--part-mib", "4")
    data_dir = tmp_path / "data"
    # With a key given, an unencrypted backup is anyone's (its seal is a plain SHA-256).
    keyed = backup_cli("restore", "--store", url, "--data-dir", str(data_dir),
                       "--encryption-key-file", str(secrets_dir / "backup-key"))
    assert keyed.returncode == 1
    assert f"backup {backup} is not encrypted, yet a key was given" in keyed.stderr
    assert not data_dir.exists()

    parts = sorted(store_dir.rglob("part-*"))
    parts[1].unlink()
    missing = backup_cli("restore", "--store", url, "--data-dir", str(data_dir))
    assert missing.returncode == 1
    assert f"backup {backup} cannot be restored: " in missing.stderr
    assert f"{parts[1].name} is missing" in missing.stderr
    assert not data_dir.exists()

    manifest = store_dir / "backups" / backup / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"gtid":"', '"gtid":"9'))
    edited = backup_cli("restore", "--store", url, "--backup", backup, "--data-dir",
                        str(data_dir))
    assert edited.returncode == 1 and "altered" in edited.stderr
    assert not data_dir.exists()


def test_a_restore_killed_midway_is_redone(donor: tuple[Server, Donor], secrets_dir: Path,
                                           tmp_path: Path, mariadb: MakeServer) -> None:
    server, running = donor
    store_dir = tmp_path / "store"
    url, _ = backup_to_directory(store_dir, running.port, secrets_dir, "--part-mib", "1")
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysqlsts", "backup", "restore", "--store", url, "--data-dir",
         str(data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = data_dir / ".mysqlsts-staging"
    deadline = time.monotonic() + 60
    while not (staging.is_dir() and any(staging.iterdir())) and time.monotonic() < deadline:
        assert proc.poll() is None, "the restore ended before it was killed"
        time.sleep(0.005)
    proc.kill()
    proc.wait(timeout=10)
    assert (data_dir / ".mysqlsts-in-progress").exists()  # never taken for finished
    assert not (data_dir / "mysqlsts-clone.json").exists()

    again = backup_cli("restore", "--store", url, "--data-dir", str(data_dir))
    assert again.returncode == 0, again.stderr
    assert "interrupted restore or clone; wiping it" in again.stderr
    assert "restore complete" in again.stderr
    copy = mariadb("redone", server_id=151, data_dir=data_dir)
    assert copy.checksum("app.rows") == server.checksum("app.rows")


def test_clone_from_backup_creates_ordinal_0_from_the_store(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path,
        free_port: PortPool) -> None:
    """`mysqlsts clone --from-backup URL@ID`, as mysql-0's init container runs it when the
    set is created from a backup (re-created with new Secrets): configuration through
    MYSQLSTS_* variables only; the data is adopted with the new set's root password."""
    server, running = donor
    store_dir = tmp_path / "store"
    url, backup = backup_to_directory(store_dir, running.port, secrets_dir,
                                      "--encryption-key-file", str(secrets_dir / "backup-key"))
    data_dir = tmp_path / "mysql-0"
    new_password = "new-set's \\ root"  # a quote and a backslash: the SQL literal holds
    password_file = tmp_path / "root-password"
    password_file.write_text(new_password + "\n")
    env = {"POD_NAME": "mysql-0", "MYSQLSTS_DATA_DIR": str(data_dir),
           "MYSQLSTS_FROM_BACKUP": f"{url}@{backup}",
           "MYSQLSTS_ROOT_PASSWORD_FILE": str(password_file),
           "MYSQLSTS_ENCRYPTION_KEY_FILE": str(secrets_dir / "backup-key"),
           "MYSQLSTS_HTTP_PORT": str(PortPool("store").one()), "MYSQLSTS_SRV_NAME": ""}

    def clone() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mysqlsts", "clone"], text=True,
                              capture_output=True, timeout=300, env={**os.environ, **env})

    first = clone()
    assert first.returncode == 0, first.stderr
    assert f"restore complete: backup {backup}" in first.stderr
    assert "root password is this set's" in first.stderr
    assert new_password not in first.stderr
    assert (data_dir / "mysqlsts-set").read_text() == "mysql.mysql\n"  # as after a clone
    adopted = ServerFactory(tmp_path / "a", Path("/nonexistent"), new_password, free_port)
    copy = adopted("m0", server_id=100, data_dir=data_dir)
    try:
        assert copy.checksum("app.rows") == server.checksum("app.rows")
        with pytest.raises(pymysql.err.OperationalError) as refused:  # the backup's password
            pymysql.connect(host="127.0.0.1", port=copy.spec.port, user="root",
                            password=server.root_password, connect_timeout=5)
        assert refused.value.args[0] == 1045
    finally:
        adopted.stop_all()
    # Every later start of the pod: its data is in place, so the store is not even opened.
    store_dir.rename(tmp_path / "store-gone")
    again = clone()
    assert again.returncode == 0, again.stderr
    assert "restore skipped" in again.stderr


def test_a_failed_backup_on_the_donor_leaves_nothing(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path,
        free_port: Callable[[], int]) -> None:
    server, _ = donor
    failing = Donor(server, free_port(), secrets_dir, password="not-the-password")
    try:
        store_dir = tmp_path / "store"
        store_dir.mkdir()
        done = backup_cli("--store", f"file://{store_dir}", "--donor",
                          f"127.0.0.1:{failing.port}", "--clone-token-file",
                          str(secrets_dir / "clone-token"))
    finally:
        failing.stop()
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: backup from 127.0.0.1:") and "failed" in last
    assert not any(path.is_file() for path in store_dir.rglob("*"))  # parts removed
