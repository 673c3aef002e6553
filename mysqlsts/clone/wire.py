"""Frames over a TCP socket: the I/O half of `mysqlsts.core.clone_protocol`."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from mysqlsts.core.clone_protocol import (
    HEADER,
    FrameType,
    ProtocolError,
    decode_header,
    decode_json,
    encode_header,
    encode_json,
)


class PeerClosed(Exception):
    """The connection ended where a frame was expected."""


class Wire:
    """One side of a clone connection. Timeouts are per call (silence), never total."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._header = bytearray(HEADER.size)

    def set_timeout(self, seconds: float | None) -> None:
        self.sock.settimeout(seconds)

    def _read_into(self, view: memoryview) -> None:
        while view:
            count = self.sock.recv_into(view)
            if count == 0:
                raise PeerClosed("connection closed by peer")
            view = view[count:]

    def read_header(self) -> tuple[FrameType, int]:
        self._read_into(memoryview(self._header))
        return decode_header(bytes(self._header))

    def read_payload_into(self, buffer: bytearray, length: int) -> memoryview:
        """Read `length` payload bytes into `buffer` (grown if needed) without a copy."""
        if len(buffer) < length:
            buffer.extend(bytes(length - len(buffer)))
        view = memoryview(buffer)[:length]
        self._read_into(view)
        return view

    def read_payload(self, length: int) -> bytes:
        buffer = bytearray(length)
        self._read_into(memoryview(buffer))
        return bytes(buffer)

    def read_json(self, *expected: FrameType) -> tuple[FrameType, dict[str, Any]]:
        kind, length = self.read_header()
        if kind not in expected:
            raise ProtocolError(f"expected {'/'.join(e.name for e in expected)}, got {kind.name}")
        return kind, decode_json(self.read_payload(length))

    def send_json(self, kind: FrameType, body: dict[str, Any]) -> None:
        self.sock.sendall(encode_json(kind, body))

    def send_raw(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def send_data(self, data: memoryview | bytes) -> None:
        header = encode_header(FrameType.DATA, len(data))
        sent = self.sock.sendmsg([header, data])
        total = len(header) + len(data)
        if sent < total:  # a partial send: finish it the slow way
            rest = (header + bytes(data))[sent:]
            self.sock.sendall(rest)

    def send_keepalive(self) -> None:
        self.sock.sendall(encode_header(FrameType.KEEPALIVE, 0))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
