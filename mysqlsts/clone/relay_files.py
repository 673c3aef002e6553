"""A recovery's chosen transactions written as relay log files as they are cut, segment by
segment, so a recovery holds one segment at a time whatever the archive range.

One file per run of segments under the same FORMAT_DESCRIPTION (normally one file), each
opened by core.pitr's `relay_log_header`; the index lists them once all are written. A chunked
segment's transaction (a large one) is written chunk by chunk as the chunks are read, never
held whole: chunk 0's file header (magic, FORMAT_DESCRIPTION) says which file it goes on. Nothing
is synced: a recovery killed meanwhile is redone whole, its relay directory wiped first.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_segment import Segment, Transaction
from mysqlsts.core.datadir import PITR_RELAY
from mysqlsts.core.disk_full import FULL_ERRNOS, disk_full
from mysqlsts.core.pitr import file_description, relay_log_header
from mysqlsts.errors import CloneError

RELAY_NAME = "pitr-relay"  # the server's --relay-log base name in the relay directory


class RelayFiles:
    """Relay log files under `relay` (a path's base name: `relay.000001`, ..., `relay.index`),
    written as transactions are added; the server ids they carry."""

    def __init__(self, relay: Path) -> None:
        self.relay = relay
        self.files: list[Path] = []
        self.server_ids: set[int] = set()
        self._out: BinaryIO | None = None
        self._description: ev.Event | None = None

    def add(self, segment: Segment) -> None:
        if not segment.transactions:
            return
        out = self._file(segment.description)
        for transaction in segment.transactions:
            out.write(transaction.data)
            self.server_ids.add(transaction.gtid.server_id)

    def add_chunks(self, transaction: Transaction, chunks: Iterator[bytes]) -> None:
        """A large transaction from its segment's content, chunk by chunk (`chunks`, each
        checked by its reader): chunk 0 opens with the file header, left out here."""
        first = next(chunks)
        description = file_description(first)
        out = self._file(description)
        out.write(first[len(ev.file_header(description)):])
        del first
        for chunk in chunks:
            out.write(chunk)
        self.server_ids.add(transaction.gtid.server_id)

    def _file(self, description: ev.Event) -> BinaryIO:
        """The file transactions written under `description` go on (a new one after another's)."""
        if self._out is None or self._description is None or (
                self._description.body != description.body):
            self._close_file()
            path = self.relay.with_name(f"{self.relay.name}.{len(self.files) + 1:06d}")
            self._out = path.open("wb")
            self._out.write(relay_log_header(description, len(self.files) + 1))
            self.files.append(path)
            self._description = description
        return self._out

    def close(self) -> list[Path]:
        """The last file closed and the index written: the files, in order."""
        self._close_file()
        self.relay.with_name(self.relay.name + ".index").write_text(
            "".join(f"{p}\n" for p in self.files))
        return self.files

    def _close_file(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


@contextlib.contextmanager
def relay_dir(data_dir: Path) -> Iterator[Path]:
    """The recovery's relay directory in `data_dir` (PITR_RELAY), emptied first (a killed
    recovery left it) and removed at the end whatever happened; `data_dir` is made for it
    and, if this made it and nothing else came into it, removed again. A full disk while it
    is written is one sentence naming it and what it holds."""
    made = not data_dir.exists()
    path = data_dir / PITR_RELAY
    try:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        yield path
    except OSError as error:
        if error.errno not in FULL_ERRNOS:
            raise
        written = f"{error.filename or path} (the point-in-time recovery's relay log files)"
        raise CloneError(disk_full(str(data_dir), written)) from None
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):
                data_dir.rmdir()
