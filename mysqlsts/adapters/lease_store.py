"""Where the primary lease lives: a store with compare-and-swap.

`read` returns the record and an opaque version; `write` replaces the record only if the
version is still the one read (else `LeaseConflict`), as a Kubernetes Lease's resourceVersion
does. Both take a timeout: a store that does not answer in time raises `LeaseUnavailable`, and
the caller (sidecar/lease.py) counts that as a renew that did not happen.

`FileLeaseStore` is the store of `mysqlsts local` and the tests: one JSON file, changed under an
exclusive flock(2) on a lock file beside it (flock, not fcntl locks: two opens in one process
exclude each other too), written atomically. The Kubernetes Lease store is not written yet (the
sidecar may not load the Kubernetes client, .importlinter); both would share this interface.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from mysqlsts.adapters.fs import atomic_write
from mysqlsts.core.lease import LeaseRecord
from mysqlsts.core.records import RecordError, parse_object
from mysqlsts.errors import MysqlstsError

NO_RECORD = "0"  # the version of a store that holds no record yet


class LeaseUnavailable(MysqlstsError):
    """The store did not answer (in time)."""


class LeaseConflict(MysqlstsError):
    """The record changed since it was read: someone else wrote it."""


class LeaseStore(Protocol):
    def read(self, timeout: float) -> tuple[LeaseRecord | None, str]: ...

    def write(self, record: LeaseRecord, expected: str, timeout: float) -> str: ...

    def describe(self) -> str: ...


class FileLeaseStore:
    def __init__(self, path: Path, poll: float = 0.02) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._poll = poll

    def describe(self) -> str:
        return f"file:{self.path}"

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LeaseUnavailable(f"cannot open {self.lock_path}: {exc.strerror}") from exc
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LeaseUnavailable(
                            f"{self.lock_path} stayed locked for {timeout:.1f}s") from None
                    time.sleep(self._poll)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _load(self) -> tuple[LeaseRecord | None, str]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None, NO_RECORD
        except OSError as exc:
            raise LeaseUnavailable(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            body: dict[str, Any] = parse_object(data, str(self.path))
            return LeaseRecord.from_dict(body["record"]), str(int(body["version"]))
        except (RecordError, KeyError, TypeError, ValueError) as exc:
            # Not ours to repair: a torn or foreign file is a store that does not answer.
            raise LeaseUnavailable(f"{self.path} does not hold a lease: {exc}") from exc

    def read(self, timeout: float) -> tuple[LeaseRecord | None, str]:
        with self._locked(timeout):
            return self._load()

    def write(self, record: LeaseRecord, expected: str, timeout: float) -> str:
        with self._locked(timeout):
            _, version = self._load()
            if version != expected:
                raise LeaseConflict(f"{self.path} changed (version {version}, "
                                    f"expected {expected})")
            new = str(int(version) + 1)
            try:
                atomic_write(self.path, _encode(record, new), 0o600)
            except OSError as exc:
                raise LeaseUnavailable(f"cannot write {self.path}: {exc.strerror}") from exc
            return new


def _encode(record: LeaseRecord, version: str) -> str:
    return json.dumps({"version": int(version), "record": record.as_dict()}, sort_keys=True) + "\n"
