"""The file:// store: create-only, whole or nothing, listed in name order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mysqlsts.store.base import ObjectExists, ObjectInfo, ObjectMissing, StoreError, read_all
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings


def test_put_get_list_delete(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}", S3Settings())
    store.put_new("backups/b/part-2", b"two")
    store.put_new("backups/b/part-1", b"one" * 1_000_000)
    store.put_new("other", b"")
    assert read_all(store, "backups/b/part-1") == b"one" * 1_000_000
    assert list(store.list("backups/")) == [ObjectInfo("backups/b/part-1", 3_000_000),
                                            ObjectInfo("backups/b/part-2", 3)]
    assert [info.name for info in store.list()] == ["backups/b/part-1", "backups/b/part-2",
                                                    "other"]
    store.delete("backups/b/part-2")
    store.delete("backups/b/part-2")  # already gone: not an error
    assert [info.name for info in store.list("backups/")] == ["backups/b/part-1"]


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "a/b/", "a/b/c", "q/", "q", "a/.tmp"])
def test_a_prefix_lists_what_the_whole_listing_holds_under_it(tmp_path: Path,
                                                              prefix: str) -> None:
    """Walked from the prefix's directory: the same names as the whole listing filtered."""
    store = FileStore(tmp_path)
    for name in ("a/b/c", "a/b/d", "a/bx", "ab", "z", "a/b/e/f"):
        store.put_new(name, name.encode())
    (tmp_path / "a" / ".tmp-x").write_bytes(b"torn")
    whole = [info for info in store.list() if info.name.startswith(prefix)]
    assert list(store.list(prefix)) == whole
    assert {info.name for info in whole} <= {"a/b/c", "a/b/d", "a/bx", "ab", "z", "a/b/e/f"}


def test_create_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put_new("manifest", b"first")
    with pytest.raises(ObjectExists):
        store.put_new("manifest", b"second")
    assert read_all(store, "manifest") == b"first"
    store.put_new("manifest", b"first")  # the same bytes again: a retried write, done
    assert [info.name for info in store.list()] == ["manifest"]  # no temporary file left


def test_leftover_temporary_files_are_not_objects(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".tmp-part-1.123.456").write_bytes(b"half")  # a crash mid-put
    assert list(store.list()) == []
    with pytest.raises(ObjectMissing):
        read_all(store, "b/part-1")


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from mysqlsts.store.base import StoreError
from mysqlsts.store.filestore import FileStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    FileStore(Path(sys.argv[1])).put_new("backups/b/part-000001", b"x" * 100_000)
except StoreError as error:
    print(error)
"""


def test_a_failed_write_leaves_neither_object_nor_temporary_file(tmp_path: Path) -> None:
    """A write the disk refuses (a file size limit stands in for a full disk) is a StoreError,
    and nothing of it stays in the store's directory."""
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cannot write backups/b/part-000001: File too large" in done.stdout
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_missing_directory_is_one_line(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "absent")
    with pytest.raises(StoreError, match="no such directory"):
        store.put_new("x", b"x")
    assert not (tmp_path / "absent").exists()  # nothing created on a typo


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "dir/", "a//b"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        FileStore(tmp_path).put_new(name, b"x")


def test_s3_without_obstore_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "obstore", None)  # import obstore raises ImportError
    monkeypatch.delitem(sys.modules, "mysqlsts.store.s3store", raising=False)
    with pytest.raises(StoreError, match="s3:// needs the obstore package"):
        open_store("s3://bucket/p", S3Settings())
