"""A directory as an object store (`file:///path`): the local set's, `make demo`'s and tests'.

A put writes a hidden temporary file beside the target, fsyncs it, then hard-links it to its
name: link(2) fails if the name exists, so the write is create-only and a reader sees the whole
object or nothing, even across a crash (a leftover temporary file is never listed).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from mysqlsts.store.base import (
    CHUNK,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    StoreError,
    check_name,
)

_TEMP = ".tmp-"


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"file://{self.root}"

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise StoreError(f"store {self.describe()}: no such directory")

    def put_new(self, name: str, data: bytes) -> None:
        self._check_root()
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.parent / f"{_TEMP}{path.name}.{os.getpid()}.{id(data)}"
            try:  # a failed write (disk full) leaves no temp file behind either
                with open(temp, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    os.link(temp, path)
                except FileExistsError:
                    if path.read_bytes() != data:
                        raise ObjectExists(f"store {self.describe()}: {name} exists") from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            _fsync_dir(path.parent)
        except OSError as error:
            raise StoreError(f"store {self.describe()}: cannot write {name}: "
                             f"{error.strerror or error}") from error

    def get(self, name: str) -> Iterator[bytes]:
        self._check_root()
        try:
            source = open(self._path(name), "rb")  # noqa: SIM115  # closed by the generator
        except FileNotFoundError:
            raise ObjectMissing(f"store {self.describe()}: no object {name}") from None
        return _chunks(source)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Walked from the deepest directory the prefix names, not the whole root: the
        archive's 2.6M index names a month beside its checkpoints, say, are not walked to list
        the checkpoints."""
        self._check_root()
        top = prefix.rpartition("/")[0]
        found: list[ObjectInfo] = []
        for directory, _, files in os.walk(self._path(top) if top else self.root):
            under = Path(directory).relative_to(self.root).as_posix()  # once a directory
            base = "" if under == "." else under + "/"
            for file in files:
                name = base + file
                if file.startswith(_TEMP) or not name.startswith(prefix):
                    continue
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    found.append(ObjectInfo(name, os.stat(os.path.join(directory, file)).st_size))
        yield from sorted(found, key=lambda info: info.name)

    def delete(self, name: str) -> None:
        self._check_root()
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()


def _chunks(source: object) -> Iterator[bytes]:
    assert hasattr(source, "read") and hasattr(source, "close")
    try:
        while chunk := source.read(CHUNK):
            yield chunk
    finally:
        source.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:  # some file systems refuse fsync on a directory
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)
