"""The s3:// store against a real S3 HTTP server (moto's, tests/s3server.py) over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store as RawClient

from mysqlsts.store.base import ObjectExists, ObjectInfo, ObjectMissing, StoreError, read_all
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.faultproxy import FaultProxy, Mode
from tests.ports import PortPool
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket

pytestmark = pytest.mark.integration

BUCKET = "backups"


@pytest.fixture(scope="module")
def ports() -> PortPool:
    return PortPool("store")


@pytest.fixture(scope="module")
def s3(ports: PortPool) -> Iterator[S3Server]:
    with S3Server(ports.one()) as server:
        yield server


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("s3-secrets")
    (directory / "access-key-id").write_text(ACCESS_KEY + "\n")
    (directory / "secret-access-key").write_text(SECRET_KEY + "\n")
    return directory / "access-key-id", directory / "secret-access-key"


def settings(endpoint: str, keys: tuple[Path, Path], **more: float) -> S3Settings:
    return S3Settings(endpoint=endpoint, region=REGION, path_style=True,
                      access_key_file=keys[0], secret_key_file=keys[1], **more)


@pytest.fixture(scope="module")
def bucket(s3: S3Server) -> str:
    """The bucket, made with a raw client: the store layer never creates buckets."""
    raw = RawClient(BUCKET, endpoint=s3.endpoint, region=REGION, access_key_id=ACCESS_KEY,
                    secret_access_key=SECRET_KEY, virtual_hosted_style_request=False,
                    client_options={"allow_http": True})
    create_bucket(s3.endpoint, BUCKET)
    obstore.put(raw, "probe", b"ok")
    return BUCKET


def test_put_get_list_delete_under_a_prefix(s3: S3Server, bucket: str,
                                            key_files: tuple[Path, Path]) -> None:
    store = open_store(f"s3://{bucket}/sets/one", settings(s3.endpoint, key_files))
    other = open_store(f"s3://{bucket}/sets/two", settings(s3.endpoint, key_files))
    payload = bytes(range(256)) * 40_000  # ~10 MiB: more than one streamed chunk
    store.put_new("b1/part-000001", payload)
    store.put_new("b1/manifest.json", b"{}")
    other.put_new("b1/part-000001", b"not ours")
    assert read_all(store, "b1/part-000001") == payload
    assert list(store.list("b1/")) == [ObjectInfo("b1/manifest.json", 2),
                                       ObjectInfo("b1/part-000001", len(payload))]
    store.delete("b1/manifest.json")
    store.delete("b1/manifest.json")  # already gone: not an error
    assert [info.name for info in store.list()] == ["b1/part-000001"]
    assert read_all(other, "b1/part-000001") == b"not ours"
    with pytest.raises(ObjectMissing):
        read_all(store, "b1/manifest.json")


def test_put_is_create_only_on_the_server(s3: S3Server, bucket: str,
                                          key_files: tuple[Path, Path]) -> None:
    store = open_store(f"s3://{bucket}/create-only", settings(s3.endpoint, key_files))
    store.put_new("manifest.json", b"first")
    with pytest.raises(ObjectExists):
        store.put_new("manifest.json", b"second")  # If-None-Match: * refused by the server
    assert read_all(store, "manifest.json") == b"first"


def test_list_follows_pages(s3: S3Server, bucket: str, key_files: tuple[Path, Path]) -> None:
    """S3 answers at most 1000 keys per page; the list must follow the continuation."""
    store = open_store(f"s3://{bucket}/many", settings(s3.endpoint, key_files))
    names = [f"seg/{n:06d}" for n in range(1010)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: store.put_new(name, b"x"), names))
    assert [info.name for info in store.list("seg/")] == names


def test_missing_bucket_is_one_line(s3: S3Server, key_files: tuple[Path, Path]) -> None:
    store = open_store("s3://no-such-bucket/p", settings(s3.endpoint, key_files))
    with pytest.raises(StoreError) as caught:
        store.put_new("x", b"x")
    assert str(caught.value) == ("store s3://no-such-bucket/p: cannot write x: "
                                 "the bucket does not exist")


def test_unreachable_service_is_one_line(ports: PortPool, key_files: tuple[Path, Path]) -> None:
    store = open_store(f"s3://{BUCKET}", settings(f"http://127.0.0.1:{ports.one()}", key_files,
                                                  timeout_seconds=2, retry_seconds=2))
    with pytest.raises(StoreError) as caught:
        list(store.list())
    assert "the service did not answer" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_half_given_credentials_are_refused(s3: S3Server, key_files: tuple[Path, Path]) -> None:
    with pytest.raises(StoreError, match="both the access key file and the secret key file"):
        open_store(f"s3://{BUCKET}", S3Settings(endpoint=s3.endpoint,
                                                access_key_file=key_files[0]))


def test_a_stalled_service_fails_within_the_timeout_and_writes_nothing(
        s3: S3Server, bucket: str, ports: PortPool, key_files: tuple[Path, Path]) -> None:
    with FaultProxy(ports.one(), s3.port) as proxy:
        endpoint = f"http://127.0.0.1:{proxy.listen[1]}"
        store = open_store(f"s3://{bucket}/stall",
                           settings(endpoint, key_files, timeout_seconds=2, retry_seconds=3))
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.put_new("part", b"x" * 100_000)
        assert time.monotonic() - started < 30
        assert "\n" not in str(caught.value)
        proxy.heal()
    direct = open_store(f"s3://{bucket}/stall", settings(s3.endpoint, key_files))
    assert list(direct.list()) == []


def test_backup_list_over_s3(s3: S3Server, bucket: str, key_files: tuple[Path, Path]) -> None:
    import hashlib
    import json
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from mysqlsts.cli import cli
    from mysqlsts.core.backup_layout import backup_id, manifest_name, part_name
    from mysqlsts.core.backup_manifest import Manifest, Part, render_manifest

    store = open_store(f"s3://{bucket}/listed", settings(s3.endpoint, key_files))
    backup = backup_id(datetime(2026, 12, 4, 10, 0, tzinfo=UTC), "abcdef")
    data = b"x" * 1000
    store.put_new(part_name(backup, 1), data)
    manifest = Manifest(backup, "mysql", "mariadb", "10.11.6", "0-100-7",
                        "2026-12-04T10:00:00+00:00", "2026-12-04T10:01:00+00:00",
                        (Part(part_name(backup, 1), 1000, hashlib.sha256(data).hexdigest()),),
                        "zstd", "")
    store.put_new(manifest_name(backup), render_manifest(manifest, None))
    store.put_new(part_name(backup_id(datetime(2026, 12, 4, 11, 0, tzinfo=UTC), "000000"), 1),
                  b"a part of a killed backup")
    result = CliRunner().invoke(cli, [
        "backup", "list", "--store", f"s3://{bucket}/listed", "--s3-endpoint", s3.endpoint,
        "--s3-region", REGION, "--s3-path-style", "--s3-access-key-file", str(key_files[0]),
        "--s3-secret-key-file", str(key_files[1]), "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(b["id"], b["gtid"], b["size"]) for b in listed["backups"]] == [
        (backup, "0-100-7", 1000)]
    assert listed["incomplete"] == ["20261204T110000Z-000000"]


def test_parts_round_trip_over_s3_and_a_corrupt_part_is_refused(
        s3: S3Server, bucket: str, key_files: tuple[Path, Path]) -> None:
    import os
    from datetime import UTC, datetime

    from mysqlsts.core.backup_layout import backup_id
    from mysqlsts.core.backup_manifest import Manifest, ManifestError, Part
    from mysqlsts.core.backup_parts import BackupKeys
    from mysqlsts.store.catalog import read_catalog
    from mysqlsts.store.parts import PartWriter, commit, read_parts

    store = open_store(f"s3://{bucket}/parts", settings(s3.endpoint, key_files))
    keys = BackupKeys.from_secret(b"thirty-two bytes of backup key..")
    backup = backup_id(datetime(2026, 12, 4, 12, 0, tzinfo=UTC), "fedcba")
    data = os.urandom(3 * 1024 * 1024 + 17)
    writer = PartWriter(store, backup, keys, part_size=1024 * 1024, parallel=3)
    writer.write(data)
    parts = writer.finish()
    manifest = Manifest(backup, "mysql", "mariadb", "10.11.6", "0-100-9",
                        "2026-12-04T12:00:00+00:00", "2026-12-04T12:00:05+00:00", parts,
                        "zstd", keys.key_id)
    commit(store, manifest, keys)
    assert len(parts) == 4
    assert b"".join(read_parts(store, manifest, keys)) == data
    assert [m.backup_id for m in read_catalog(store, lambda key_id: keys.seal_key).backups] == [
        backup]
    # The server does not check our checksums; we do: a part replaced behind our back.
    store.delete(parts[1].name)
    store.put_new(parts[1].name, b"MSB0" + b"\0" * (parts[1].size - 4))
    with pytest.raises(ManifestError, match="is corrupt"):
        b"".join(read_parts(store, manifest, keys))
    assert isinstance(parts[0], Part)


class FailResponses:
    """A man in the middle turning the next `count` 200 answers into 503s (same length, so
    the rest of each response is intact): the service failed, or its answer was lost."""

    def __init__(self, count: int) -> None:
        self.left = count

    def __call__(self, direction: str, data: bytes) -> bytes:
        ok = b"HTTP/1.1 200 OK\r\n"
        if direction == "down" and self.left > 0 and data.startswith(ok):
            self.left -= 1
            return b"HTTP/1.1 503 XX\r\n" + data[len(ok):]
        return data


def test_a_lost_answer_to_a_create_only_put_is_retried_without_a_false_conflict(
        s3: S3Server, bucket: str, ports: PortPool, key_files: tuple[Path, Path]) -> None:
    """The server stored the part but its 200 became a 503: the retry meets its own object
    (412). That is success when the object holds exactly our bytes, a conflict otherwise."""
    failing = FailResponses(1)
    with FaultProxy(ports.one(), s3.port, rewrite=failing) as proxy:
        store = open_store(f"s3://{bucket}/retry", settings(
            f"http://127.0.0.1:{proxy.listen[1]}", key_files, retry_seconds=10))
        store.put_new("part-1", b"our bytes")
        assert failing.left == 0  # the 503 was seen and retried
        failing.left = 1
        with pytest.raises(ObjectExists):
            store.put_new("part-1", b"other bytes")
    assert read_all(open_store(f"s3://{bucket}/retry", settings(s3.endpoint, key_files)),
                    "part-1") == b"our bytes"


def test_persistent_5xx_is_one_line_after_the_retry_deadline(
        s3: S3Server, bucket: str, ports: PortPool, key_files: tuple[Path, Path]) -> None:
    with FaultProxy(ports.one(), s3.port, rewrite=FailResponses(10_000)) as proxy:
        store = open_store(f"s3://{bucket}/down", settings(
            f"http://127.0.0.1:{proxy.listen[1]}", key_files, retry_seconds=2))
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            list(store.list())
        assert time.monotonic() - started < 30
    assert "\n" not in str(caught.value) and "503" in str(caught.value)


class Statuses:
    """A man in the middle that changes nothing and notes the status of each answer."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, direction: str, data: bytes) -> bytes:
        if direction == "down" and data.startswith(b"HTTP/1.1 "):
            self.seen.append(int(data[9:12]))
        return data


def test_a_put_reset_mid_body_is_retried_and_stored_whole(
        s3: S3Server, bucket: str, ports: PortPool, key_files: tuple[Path, Path]) -> None:
    """Twice, the connection is reset 300 000 bytes into a 1 MB body: obstore does not retry
    a request cut off in transit, put_new does, and the object is whole."""
    data = bytes(range(256)) * 4000
    with FaultProxy(ports.one(), s3.port) as proxy:
        store = open_store(f"s3://{bucket}/reset", settings(
            f"http://127.0.0.1:{proxy.listen[1]}", key_files, retry_seconds=10))
        proxy.cut(Mode.RESET, after=300_000, direction="up", times=2)
        store.put_new("part-1", data)
        assert proxy.cuts_done == 2
    assert read_all(open_store(f"s3://{bucket}/reset", settings(s3.endpoint, key_files)),
                    "part-1") == data


def test_a_put_stored_with_its_answer_reset_is_retried_and_meets_its_own_object(
        s3: S3Server, bucket: str, ports: PortPool, key_files: tuple[Path, Path]) -> None:
    """The body went through and the service stored it, then the connection is reset as its
    answer starts: the retry is refused with 412 (create-only), and that is success because
    the object read back holds exactly our bytes; other bytes under the name stay a
    conflict."""
    statuses = Statuses()
    with FaultProxy(ports.one(), s3.port, rewrite=statuses) as proxy:
        store = open_store(f"s3://{bucket}/lost", settings(
            f"http://127.0.0.1:{proxy.listen[1]}", key_files, retry_seconds=10))
        proxy.cut(Mode.RESET, after=1, direction="down")
        store.put_new("part-1", b"our bytes" * 1000)
        assert proxy.cuts_done == 1
        assert statuses.seen[:3] == [200, 412, 200]  # stored, refused, read back
        proxy.cut(Mode.RESET, after=1, direction="down")
        with pytest.raises(ObjectExists):
            store.put_new("part-1", b"other bytes" * 1000)
    assert read_all(open_store(f"s3://{bucket}/lost", settings(s3.endpoint, key_files)),
                    "part-1") == b"our bytes" * 1000


def test_a_put_reset_every_time_is_one_line_after_the_retry_deadline(
        s3: S3Server, bucket: str, ports: PortPool, key_files: tuple[Path, Path]) -> None:
    with FaultProxy(ports.one(), s3.port) as proxy:
        store = open_store(f"s3://{bucket}/always", settings(
            f"http://127.0.0.1:{proxy.listen[1]}", key_files, retry_seconds=3))
        proxy.cut(Mode.RESET, after=300_000, direction="up", times=1_000_000)
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.put_new("part-1", b"x" * 1_000_000)
        took = time.monotonic() - started
        cuts = proxy.cuts_done
    assert cuts >= 3 and took < 10, (cuts, took)
    assert str(caught.value) == (f"store s3://{bucket}/always: cannot write part-1: "
                                 "the service did not answer (error sending request)")
    assert list(open_store(f"s3://{bucket}/always",
                           settings(s3.endpoint, key_files)).list()) == []
