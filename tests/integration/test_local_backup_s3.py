"""`local up`, `local backup` and `local restore` with an s3:// store at another endpoint: moto's
S3 server over HTTP, reached with the same `--s3-*` options as `mysqlsts backup`. The set's
pods reach it too (its archiver writes there, mysql-0 of the restored set restores from it);
the key files are recorded by path, never their contents."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mysqlsts.store.binlog_archive import load_records
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.localset import LocalSetFactory
from tests.ports import PortPool
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket

pytestmark = pytest.mark.integration

BUCKET = "local-backups"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server(PortPool("store").one()) as server:
        create_bucket(server.endpoint, BUCKET)
        yield server


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("s3-keys")
    (directory / "access").write_text(ACCESS_KEY + "\n")
    (directory / "secret").write_text(SECRET_KEY + "\n")
    return directory


def s3_args(s3: S3Server, keys: Path) -> tuple[str, ...]:
    return ("--s3-endpoint", s3.endpoint, "--s3-region", REGION, "--s3-path-style",
            "--s3-access-key-file", str(keys / "access"),
            "--s3-secret-key-file", str(keys / "secret"))


def settings(s3: S3Server, keys: Path) -> S3Settings:
    return S3Settings(endpoint=s3.endpoint, region=REGION, path_style=True,
                      access_key_file=keys / "access", secret_key_file=keys / "secret")


def test_a_local_set_backs_up_to_s3_and_a_new_set_restores_from_it(
        s3: S3Server, keys: Path, local_set: LocalSetFactory) -> None:
    url = f"s3://{BUCKET}/set1"
    source = local_set(replicas=2, up_args=("--store", url, *s3_args(s3, keys)))
    spec = json.loads((source.directory / "spec.json").read_text())
    assert spec["s3"] == {"endpoint": s3.endpoint, "region": REGION, "path_style": True,
                          "access_key_file": str(keys / "access"),
                          "secret_key_file": str(keys / "secret")}
    assert SECRET_KEY not in (source.directory / "spec.json").read_text()
    objects = open_store(url, settings(s3, keys))
    # The pods were given the options: mysql-1's archiver writes into the bucket.
    deadline = time.monotonic() + 120
    while not load_records(objects, None):
        assert time.monotonic() < deadline, "nothing archived\n" + source.diagnostics()
        time.sleep(0.5)

    source.sql(0, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
               "INSERT INTO app.t SELECT seq FROM app.seq_1_to_500")
    source.wait_caught_up([1])
    checksum = source.sql(0, "CHECKSUM TABLE app.t")[0][1]
    taken = source.run("backup", "--dir", str(source.directory))  # the set's own options
    backup_id = taken.stdout.strip()
    assert "donor=mysql-1" in taken.stderr and f"store={url}" in taken.stderr, taken.stderr
    assert [m.backup_id for m in read_catalog(objects).backups] == [backup_id]
    # Given on the command line, the options replace the set's for this backup.
    again = source.run("backup", "--dir", str(source.directory), *s3_args(s3, keys))
    assert [m.backup_id for m in read_catalog(objects).backups] == [
        backup_id, again.stdout.strip()]

    restored = local_set.unstarted()
    with restored.brought_down():
        restored.run("restore", "--dir", str(restored.directory), "--from", url,
                     "--backup", backup_id, "--base-port", str(restored.base_port),
                     *s3_args(s3, keys), "--timeout", "600")
        [pod] = restored.wait_ready(1, timeout=60)
        assert pod["ready"], pod
        assert restored.status()["restored_from"] == f"{url}@{backup_id}"
        assert restored.sql(0, "CHECKSUM TABLE app.t")[0][1] == checksum


def test_up_refuses_s3_options_without_a_store(local_set: LocalSetFactory, s3: S3Server,
                                               keys: Path) -> None:
    target = local_set.unstarted()
    done = target.run("up", "--dir", str(target.directory), "--base-port",
                      str(target.base_port), *s3_args(s3, keys), check=False)
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "the --s3-* options go with --store" in line, done.stderr
    assert not target.directory.exists()
