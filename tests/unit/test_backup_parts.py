"""Parts written in parallel and read back checked, over a file:// store."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mysqlsts.core.backup_layout import backup_id, manifest_name, part_name
from mysqlsts.core.backup_manifest import Manifest, ManifestError, Part
from mysqlsts.core.backup_parts import (
    BackupKeys,
    PartError,
    pack_chunks,
    pack_part,
    unpack_part,
)
from mysqlsts.store.base import ObjectInfo, StoreError
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.filestore import FileStore
from mysqlsts.store.parts import (
    FIRST_PART_SIZE,
    PART_SIZE,
    PartWriter,
    commit,
    read_parts,
    remove_backup,
)

ID = backup_id(datetime(2026, 12, 4, 19, 0, tzinfo=UTC), "123abc")
KEYS = BackupKeys.from_secret(b"a secret of thirty-two bytes....")


def manifest(parts: tuple[Part, ...], keys: BackupKeys | None) -> Manifest:
    return Manifest(ID, "mysql", "mariadb", "10.11.6", "0-100-5", "2026-12-04T19:00:00+00:00",
                    "2026-12-04T19:01:00+00:00", parts, "zstd",
                    "" if keys is None else keys.key_id)


def write(store: FileStore, data: bytes, keys: BackupKeys | None) -> Manifest:
    writer = PartWriter(store, ID, keys, part_size=1000, parallel=3)
    for offset in range(0, len(data), 333):
        writer.write(data[offset:offset + 333])
    m = manifest(writer.finish(), keys)
    commit(store, m, keys)
    return m


@pytest.mark.parametrize("keys", [None, KEYS])
def test_round_trip(tmp_path: Path, keys: BackupKeys | None) -> None:
    store = FileStore(tmp_path)
    data = os.urandom(5000) + b"z" * 5500  # incompressible and compressible
    m = write(store, data, keys)
    assert [p.name for p in m.parts] == [part_name(ID, n) for n in range(1, 12)]
    assert b"".join(read_parts(store, m, keys)) == data
    catalog = read_catalog(store, lambda key_id: KEYS.seal_key)
    assert [b.backup_id for b in catalog.backups] == [ID]
    assert m.parts[-2].size < 100  # 1000 bytes of "z", compressed
    if keys is not None:
        assert data[:100] not in (tmp_path / part_name(ID, 1)).read_bytes()  # sealed


def test_a_corrupt_part_is_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    m = write(store, os.urandom(3000), KEYS)
    path = tmp_path / part_name(ID, 2)
    stored = bytearray(path.read_bytes())
    stored[len(stored) // 2] ^= 1
    path.write_bytes(stored)
    with pytest.raises(ManifestError, match=f"{part_name(ID, 2)} is corrupt"):
        b"".join(read_parts(store, m, KEYS))


def test_a_wrong_key_is_one_line_before_any_part_is_read(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    m = write(store, os.urandom(3000), KEYS)
    for part in m.parts:
        store.delete(part.name)  # nothing to read: the key check must come first
    other = BackupKeys.from_secret(b"another secret of 32 bytes......")
    with pytest.raises(ManifestError) as caught:
        next(read_parts(store, m, other))
    assert str(caught.value) == (f"backup {ID} was encrypted with key id {KEYS.key_id}; "
                                 f"key id {other.key_id} was given")


def test_a_part_moved_to_another_name_does_not_open() -> None:
    stored = pack_part(part_name(ID, 1), b"data", KEYS)
    assert unpack_part(part_name(ID, 1), stored, KEYS) == b"data"
    with pytest.raises(PartError, match="does not open"):
        unpack_part(part_name(ID, 2), stored, KEYS)
    with pytest.raises(PartError, match="no key"):
        unpack_part(part_name(ID, 1), stored, None)


@pytest.mark.parametrize("keys", [None, KEYS])
def test_a_part_packed_from_pieces_is_a_part(keys: BackupKeys | None) -> None:
    plain = os.urandom(70_000) + b"y" * 200_000 + os.urandom(3)
    pieces = [plain[:1], b"", memoryview(plain)[1:70_001], plain[70_001:]]
    stored = pack_chunks(part_name(ID, 1), pieces, keys)
    assert stored[:4] == (b"MSB0" if keys is None else b"MSB1")
    assert unpack_part(part_name(ID, 1), bytes(stored), keys) == plain
    assert len(stored) < 75_000  # compressed
    assert unpack_part(part_name(ID, 1), bytes(pack_chunks(part_name(ID, 1), [], keys)),
                       keys) == b""
    if keys is not None:
        assert plain[:100] not in stored  # sealed
        with pytest.raises(PartError, match="does not open"):
            unpack_part(part_name(ID, 2), bytes(stored), keys)


def test_a_buffer_the_caller_reuses_is_copied(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    writer = PartWriter(store, ID, None, part_size=1000, parallel=2)
    buffer = bytearray(700)
    sent = []
    for _ in range(5):  # the receiver's way: one buffer, refilled for each frame
        buffer[:] = os.urandom(700)
        sent.append(bytes(buffer))
        writer.write(memoryview(buffer))
    m = manifest(writer.finish(), None)
    assert [p.name for p in m.parts] == [part_name(ID, n) for n in range(1, 5)]
    assert b"".join(read_parts(store, m, None)) == b"".join(sent)


def plain_sizes(store: FileStore, m: Manifest) -> list[int]:
    return [len(unpack_part(p.name, b"".join(store.get(p.name)), None)) for p in m.parts]


def test_the_first_parts_are_small_and_double_up_to_the_part_size(tmp_path: Path) -> None:
    # So the first upload starts after a few MiB, not a whole part (docs/backup.md "Figures").
    store = FileStore(tmp_path)
    writer = PartWriter(store, ID, None, part_size=1000, parallel=2, first_part_size=100)
    data = os.urandom(4000)
    for offset in range(0, len(data), 333):
        writer.write(data[offset:offset + 333])
    m = manifest(writer.finish(), None)
    assert plain_sizes(store, m) == [100, 200, 400, 800, 1000, 1000, 500]
    assert b"".join(read_parts(store, m, None)) == data


def test_the_default_ramp_is_4_8_16_then_32_mib(tmp_path: Path) -> None:
    mib = 1024 * 1024
    assert (4 * mib, 32 * mib) == (FIRST_PART_SIZE, PART_SIZE)
    store = FileStore(tmp_path)
    writer = PartWriter(store, ID, None)
    piece = os.urandom(mib // 2) * 2  # compresses: the test stays quick
    for _ in range(100):
        writer.write(piece)
    m = manifest(writer.finish(), None)
    assert plain_sizes(store, m) == [4 * mib, 8 * mib, 16 * mib, 32 * mib, 32 * mib, 8 * mib]
    # A part size below the first part's: every part that size, as before.
    (tmp_path / "small").mkdir()
    store = FileStore(tmp_path / "small")
    small = PartWriter(store, ID, None, part_size=mib)
    for _ in range(3):
        small.write(piece)
    assert plain_sizes(store, manifest(small.finish(), None)) == [mib] * 3


class HeldStore(FileStore):
    """Writes wait until `release` is set; counts the writes under way at once."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.now = self.most = self.started = 0

    def put_new(self, name: str, data: bytes) -> None:
        with self.lock:
            self.now += 1
            self.started += 1
            self.most = max(self.most, self.now)
        try:
            assert self.release.wait(30)
            super().put_new(name, data)
        finally:
            with self.lock:
                self.now -= 1


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_parts_are_packed_ahead_while_parallel_ones_are_written(tmp_path: Path) -> None:
    store = HeldStore(tmp_path)
    writer = PartWriter(store, ID, None, part_size=100, parallel=2, ahead=1)
    producer = threading.Thread(target=lambda: [writer.write(os.urandom(100))
                                                for _ in range(3)])
    producer.start()
    producer.join(30)
    # Three parts cut while the store holds every write: two written at once, one packed
    # ahead, and the producer was not held up by it.
    assert not producer.is_alive()
    wait_for(lambda: store.started == 2)
    time.sleep(0.1)
    assert store.started == 2
    # A fourth would wait for the first (bounded memory): the producer blocks.
    fourth = threading.Thread(target=writer.write, args=(os.urandom(100),))
    fourth.start()
    fourth.join(0.2)
    assert fourth.is_alive()
    store.release.set()
    fourth.join(30)
    m = manifest(writer.finish(), None)
    assert [p.name for p in m.parts] == [part_name(ID, n) for n in range(1, 5)]
    assert store.most == 2


def test_a_part_packed_ahead_is_not_written_once_the_backup_stops(tmp_path: Path) -> None:
    store = HeldStore(tmp_path)
    writer = PartWriter(store, ID, None, part_size=100, parallel=2, ahead=1)
    for _ in range(3):
        writer.write(os.urandom(100))
    wait_for(lambda: store.started == 2)
    stopping = threading.Thread(target=writer.abandon)
    stopping.start()
    wait_for(lambda: writer._stopped)
    store.release.set()
    stopping.join(30)
    assert not stopping.is_alive()
    assert store.started == 2  # the third never began
    assert sorted(info.name for info in store.list()) == [part_name(ID, 1), part_name(ID, 2)]


class FailingStore(FileStore):
    def put_new(self, name: str, data: bytes) -> None:
        if name.endswith("part-000003"):
            raise StoreError("store: cannot write (injected)")
        super().put_new(name, data)


def test_a_failed_part_fails_the_backup_and_no_manifest_is_written(tmp_path: Path) -> None:
    store = FailingStore(tmp_path)
    writer = PartWriter(store, ID, None, part_size=100, parallel=2)
    with pytest.raises(StoreError, match="injected"):
        for _ in range(10):
            writer.write(os.urandom(100))
        writer.finish()
    writer.abandon()
    catalog = read_catalog(store)
    assert catalog.backups == () and catalog.incomplete == (ID,)
    assert remove_backup(store, ID) >= 2
    assert list(store.list()) == []


def test_remove_deletes_the_manifest_first(tmp_path: Path) -> None:
    deleted: list[str] = []

    class Recording(FileStore):
        def delete(self, name: str) -> None:
            deleted.append(name)
            super().delete(name)

    store = Recording(tmp_path)
    write(store, os.urandom(2500), None)
    remove_backup(store, ID)
    assert deleted[0] == manifest_name(ID) and len(deleted) == 4
    assert list(store.list()) == list[ObjectInfo]()
