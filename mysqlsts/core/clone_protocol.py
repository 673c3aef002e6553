"""The clone wire protocol (port 3307), as pure framing and authentication helpers.

Every message is a frame: a 5-byte header (`>BI`: type, payload length) and the payload.

    receiver                                   donor
    HELLO     {"protocol": 1, "nonce": Nc}  →
                                            ←  CHALLENGE {"nonce": Nd, "proof": P_d}
      (the receiver checks P_d: a donor without the token learns nothing and gets nothing)
    AUTH      {"proof": P_r}                →
                                            ←  ERROR {"code": "refused"|"busy", …}  or
                                            ←  START {"tool": …}
                                            ←  DATA (raw backup-tool bytes) …, KEEPALIVE …
                                            ←  TRAILER {"exit_code", "bytes", "crc32",
                                                        "stderr_tail", "mac"}

P_d = HMAC-SHA256(token, "mysqlsts-clone/1 donor" | Nc | Nd) and
P_r = HMAC-SHA256(token, "mysqlsts-clone/1 receiver" | Nd | Nc): each side proves it holds the
token over the other's fresh nonce, so a recorded exchange cannot be replayed and the token never
crosses the wire. Proofs are compared with `hmac.compare_digest`. The trailer's `mac` binds the
donor's verdict (exit code, byte count, CRC-32 of the stream) to this session, so a forged or
replayed trailer cannot pass a truncated stream off as complete. CRC-32 detects truncation and
corruption at ~6 GB/s here (SHA-256: ~1.9 GB/s), so verification costs no throughput; the stream
is not encrypted — keep port 3307 inside the cluster (NetworkPolicy).

KEEPALIVE frames flow while the backup tool is silent, so the receiver can enforce an idle
timeout (silence) instead of a total one, and long clones are never cut by it.
"""

from __future__ import annotations

import hmac
import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from hashlib import sha256
from typing import Any

PROTOCOL_VERSION = 1
# Silence after which either side counts the stream as broken (keepalives flow every few s).
IDLE_TIMEOUT = 120.0
HEADER = struct.Struct(">BI")
NONCE_BYTES = 32
# Large enough for any DATA chunk we send; larger lengths mean a peer speaking something else.
MAX_FRAME = 16 * 1024 * 1024
_DOMAIN = b"mysqlsts-clone/1 "


class FrameType(IntEnum):
    HELLO = 1
    CHALLENGE = 2
    AUTH = 3
    ERROR = 4
    START = 5
    DATA = 6
    KEEPALIVE = 7
    TRAILER = 8


class ErrorCode:
    REFUSED = "refused"  # the receiver did not prove it holds the token
    BUSY = "busy"  # another stream is running; try later or elsewhere
    PROTOCOL = "protocol"  # unexpected frame or version
    FAILED = "failed"  # the donor could not start its backup


class ProtocolError(Exception):
    """The peer broke the protocol (wrong frame, bad length, bad JSON)."""


def encode_header(kind: FrameType, length: int) -> bytes:
    if not 0 <= length <= MAX_FRAME:
        raise ValueError(f"frame length {length} outside 0..{MAX_FRAME}")
    return HEADER.pack(kind, length)


def decode_header(raw: bytes) -> tuple[FrameType, int]:
    kind, length = HEADER.unpack(raw)
    try:
        frame_type = FrameType(kind)
    except ValueError:
        raise ProtocolError(f"unknown frame type {kind}") from None
    if length > MAX_FRAME:
        raise ProtocolError(f"frame length {length} exceeds {MAX_FRAME}")
    return frame_type, length


def encode_json(kind: FrameType, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return encode_header(kind, len(payload)) + payload


def decode_json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("frame JSON is not an object")
    return body


def _mac(token: str, label: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(token.encode(), _DOMAIN + label, sha256)
    for part in parts:
        # Length-prefixed, so different splits of the same bytes never collide.
        mac.update(struct.pack(">I", len(part)) + part)
    return mac.digest()


def donor_proof(token: str, receiver_nonce: bytes, donor_nonce: bytes) -> bytes:
    return _mac(token, b"donor", receiver_nonce, donor_nonce)


def receiver_proof(token: str, receiver_nonce: bytes, donor_nonce: bytes) -> bytes:
    return _mac(token, b"receiver", donor_nonce, receiver_nonce)


def proof_matches(expected: bytes, presented: bytes) -> bool:
    return hmac.compare_digest(expected, presented)


def hex_field(body: dict[str, Any], name: str, size: int) -> bytes:
    """A fixed-size binary field sent as hex; ProtocolError when absent or malformed."""
    value = body.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ProtocolError(f"field {name!r} is not {size} hex-encoded bytes")
    return raw


@dataclass(frozen=True)
class Trailer:
    """The donor's verdict on the stream it just sent."""

    exit_code: int
    byte_count: int
    crc32: int
    stderr_tail: str = ""

    def mac(self, token: str, receiver_nonce: bytes, donor_nonce: bytes) -> bytes:
        verdict = f"{self.exit_code}:{self.byte_count}:{self.crc32}".encode()
        return _mac(token, b"trailer", receiver_nonce, donor_nonce, verdict)

    def encode(self, token: str, receiver_nonce: bytes, donor_nonce: bytes) -> bytes:
        return encode_json(FrameType.TRAILER, {
            "exit_code": self.exit_code,
            "bytes": self.byte_count,
            "crc32": self.crc32,
            "stderr_tail": self.stderr_tail,
            "mac": self.mac(token, receiver_nonce, donor_nonce).hex(),
        })

    @classmethod
    def decode(
        cls, payload: bytes, token: str, receiver_nonce: bytes, donor_nonce: bytes
    ) -> Trailer:
        body = decode_json(payload)
        try:
            trailer = cls(
                exit_code=int(body["exit_code"]),
                byte_count=int(body["bytes"]),
                crc32=int(body["crc32"]),
                stderr_tail=str(body.get("stderr_tail", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"trailer is malformed: {exc!r}") from None
        presented = hex_field(body, "mac", sha256().digest_size)
        if not proof_matches(trailer.mac(token, receiver_nonce, donor_nonce), presented):
            raise ProtocolError("trailer is not authenticated by this session's token")
        return trailer


@dataclass(frozen=True)
class StreamCheck:
    """What the receiver saw, compared with the donor's trailer."""

    received_bytes: int
    received_crc32: int

    def problems(self, trailer: Trailer) -> list[str]:
        found = []
        if trailer.exit_code != 0:
            tail = f": {trailer.stderr_tail}" if trailer.stderr_tail else ""
            found.append(f"the donor's backup tool failed with exit code {trailer.exit_code}{tail}")
        if trailer.byte_count != self.received_bytes:
            found.append(f"donor sent {trailer.byte_count} bytes, {self.received_bytes} arrived")
        elif trailer.crc32 != self.received_crc32:
            found.append(
                f"stream checksum mismatch (donor crc32={trailer.crc32:08x}, "
                f"received crc32={self.received_crc32:08x})"
            )
        return found
