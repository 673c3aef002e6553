"""Crash-safe file operations: a reader never sees half a file."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mysqlsts.core.records import RecordError
from mysqlsts.errors import ConfigError

T = TypeVar("T")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush the file system that holds `path` to disk: every file written there (syncfs(2)).

    Cheaper than an fsync per file when a tool (mbstream, mariabackup) wrote thousands of them
    without syncing, and it costs only what is still dirty. Where syncfs is missing, sync(2)."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write a temp file beside `path`, fsync it, rename it over `path`, fsync the directory.

    A crash at any instant leaves either the old file or the new one, never a torn one.
    """
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by umask and ignored for old files
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_secret(path: Path, what: str) -> str:
    """Read a mounted Secret; the error names the file, never its content."""
    try:
        value = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if not value:
        raise ConfigError(f"{what} file {path} is empty")
    return value


def read_back(path: Path, parse: Callable[[bytes, str], T]) -> T | None:
    """A file the tool wrote earlier and now reads back (a record, a counter, a pid), parsed by
    `parse(bytes, name)`; None when there is no such file. A file that cannot be read (a
    directory, no permission) or whose content `parse` refuses (undecodable bytes, a truncated
    or wrongly typed record) is one `RecordError` naming it: the caller warns or stops, it
    never meets a traceback."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse(data, str(path))
    except RecordError:
        raise
    except (ValueError, TypeError) as exc:  # a parser that was not written for this reader
        raise RecordError(f"{path} does not hold what it should: {exc}") from exc
