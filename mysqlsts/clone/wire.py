"""Frames over a TCP socket: the I/O half of `mysqlsts.core.clone_protocol`."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from typing import Any

from mysqlsts.core.clone_protocol import (
    HANDSHAKE_FRAME_MAX,
    HEADER,
    MAX_FRAME,
    FrameType,
    Opener,
    ProtocolError,
    Sealer,
    decode_header,
    decode_json,
    encode_json,
)

# struct tcp_info (linux/tcp.h): the byte whose low bit is tcpi_delivery_rate_app_limited,
# tcpi_notsent_bytes and tcpi_delivery_rate, at their fixed offsets.
_TCP_INFO = struct.Struct("=7xB136xI12xQ")


class PeerClosed(Exception):
    """The connection ended where a frame was expected."""


class Wire:
    """One side of a clone connection. Reads wait at most until a deadline (the handshake's,
    counted once for all its reads) or for a timeout per read (silence, while streaming)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._header = bytearray(HEADER.size)
        self._deadline: float | None = None

    def set_deadline(self, seconds: float) -> None:
        """From now on every read and send must be done within `seconds` in total."""
        self._deadline = time.monotonic() + seconds

    def set_timeout(self, seconds: float | None) -> None:
        """From now on each read or send may wait `seconds` (no total)."""
        self._deadline = None
        self.sock.settimeout(seconds)

    def _before_io(self) -> None:
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the handshake's deadline passed")
            self.sock.settimeout(remaining)

    def _read_into(self, view: memoryview) -> None:
        while view:
            self._before_io()
            count = self.sock.recv_into(view)
            if count == 0:
                raise PeerClosed("connection closed by peer")
            view = view[count:]

    def read_header(self, limit: int = MAX_FRAME) -> tuple[FrameType, int]:
        self._read_into(memoryview(self._header))
        return decode_header(bytes(self._header), limit)

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
        """A handshake frame: small by definition, so a larger claim is refused unread."""
        kind, length = self.read_header(HANDSHAKE_FRAME_MAX)
        if kind not in expected:
            raise ProtocolError(f"expected {'/'.join(e.name for e in expected)}, got {kind.name}")
        return kind, decode_json(self.read_payload(length))

    def send_json(self, kind: FrameType, body: dict[str, Any]) -> None:
        self._before_io()
        self.sock.sendall(encode_json(kind, body))

    def send_sealed(self, sealer: Sealer, kind: FrameType, data: bytes) -> None:
        header, sealed = sealer.seal(kind, data)
        self._before_io()
        sent = self.sock.sendmsg([header, sealed])
        if sent < len(header) + len(sealed):  # a partial send: finish it the slow way
            self.sock.sendall((header + sealed)[sent:])

    def link_state(self) -> tuple[int, float | None]:
        """What the kernel knows of the link (Linux TCP_INFO): the bytes it holds that the
        link has not sent yet, and its latest delivery rate in bytes per second when that was
        measured with the network, not us, as the limit (else None). (0, None) elsewhere."""
        try:
            raw = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
        except (OSError, AttributeError):
            return 0, None
        if len(raw) < _TCP_INFO.size:
            return 0, None
        flags, unsent, rate = _TCP_INFO.unpack(raw)
        app_limited = flags & 1
        return unsent, None if app_limited or not rate else float(rate)

    def wait_writable(self) -> None:
        """Until the socket's send buffer has room (Linux: half of it free), within the send
        timeout (TimeoutError)."""
        _, ready, _ = select.select([], [self.sock], [], self.sock.gettimeout())
        if not ready:
            raise TimeoutError("the peer has taken nothing for the whole timeout")

    def read_sealed(self, opener: Opener, buffer: bytearray,
                    limit: int = MAX_FRAME) -> tuple[FrameType, bytes]:
        """The next sealed frame, opened; ProtocolError when it was not sealed by our donor."""
        kind, length = self.read_header(limit)
        return kind, opener.open(kind, self.read_payload_into(buffer, length))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
