"""Pick small files out of an xbstream (mariabackup's / xtrabackup's stream) as it passes (pure).

A backup is stored as the stream itself, never extracted on the way; but its manifest needs the
GTID position, which is inside the stream, in `xtrabackup_binlog_info` (and the slave info).
`FileCatcher.feed()` follows the chunk framing of every byte that passes and keeps the payload
of the named top-level files. Chunk layout (little-endian):

    "XBSTCK01" | flags u8 | type u8 ('P' payload, 'E' end of file) | path length u32 | path
    then for 'P': payload length u64 | offset u64 | checksum u32 | payload
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from mysqlsts.errors import MysqlstsError

MAGIC = b"XBSTCK01"
_HEAD = len(MAGIC) + 1 + 1 + 4
_PAYLOAD_HEAD = 8 + 8 + 4
_MAX_PATH = 4096
_MAX_KEPT = 1024 * 1024  # the info files are a few lines; never buffer more of one


class StreamFormatError(MysqlstsError):
    """The bytes are not an xbstream."""


class FileCatcher:
    def __init__(self, names: Iterable[str]) -> None:
        self.wanted = set(names)
        self.files: dict[str, bytearray] = {}
        self._buffer = bytearray()
        self._skip = 0  # payload bytes of an unwanted chunk still to pass
        self._keep: bytearray | None = None  # where the current payload goes, if wanted
        self._keep_left = 0

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self._skip:
                taken = min(self._skip, len(view))
                if self._keep is not None and len(self._keep) + taken <= _MAX_KEPT:
                    self._keep += view[:taken]
                self._skip -= taken
                view = view[taken:]
                continue
            need = self._header_size()
            want = need - len(self._buffer) if need else _HEAD - len(self._buffer)
            self._buffer += view[:max(want, 0)]
            view = view[max(want, 0):]
            self._advance()

    def _header_size(self) -> int:
        """The size of the current chunk's header, once enough of it is buffered; else 0."""
        if len(self._buffer) < _HEAD:
            return 0
        if self._buffer[:len(MAGIC)] != MAGIC:
            raise StreamFormatError("the backup stream is not an xbstream (bad chunk magic)")
        kind = self._buffer[9:10]
        path_length: int = struct.unpack_from("<I", self._buffer, 10)[0]
        if path_length > _MAX_PATH:
            raise StreamFormatError("the backup stream has a chunk with an oversized path")
        if kind == b"E":
            return _HEAD + path_length
        if kind == b"P":
            return _HEAD + path_length + _PAYLOAD_HEAD
        raise StreamFormatError(f"the backup stream has an unknown chunk type {bytes(kind)!r}")

    def _advance(self) -> None:
        need = self._header_size()
        if not need or len(self._buffer) < need:
            return
        (path_length,) = struct.unpack_from("<I", self._buffer, 10)
        path = bytes(self._buffer[_HEAD:_HEAD + path_length]).decode(errors="replace")
        if self._buffer[9:10] == b"P":
            (length,) = struct.unpack_from("<Q", self._buffer, _HEAD + path_length)
            self._skip = length
            self._keep = (self.files.setdefault(path, bytearray())
                          if path in self.wanted else None)
        self._buffer.clear()

    def text(self) -> dict[str, str]:
        return {name: bytes(data).decode(errors="replace") for name, data in self.files.items()}
