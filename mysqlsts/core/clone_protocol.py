"""The clone wire protocol (port 3307), as pure framing, authentication and sealing helpers.

Every message is a frame: a 5-byte header (`>BI`: type, payload length) and the payload.

    receiver                                   donor
    HELLO     {"protocol": 2, "nonce": Nc,
               "compression": ["zstd"]}     →   (the offer: optional, see clone_compression)
                                            ←  CHALLENGE {"nonce": Nd, "proof": P_d}
      (the receiver checks P_d: a donor without the token learns nothing and gets nothing)
    AUTH      {"proof": P_r}                →
                                            ←  ERROR {"code": "refused"|"busy"|"failed", …}
                                               or, sealed from here on:
                                            ←  START {"tool": …, "compression": "zstd"|"none"}
                                            ←  DATA (backup-tool bytes) or DATA_ZSTD …,
                                               KEEPALIVE …
                                            ←  TRAILER {"exit_code", "bytes", "stderr_tail"}

P_d = HMAC-SHA256(token, "mysqlsts-clone/2 donor" | Nc | Nd) and
P_r = HMAC-SHA256(token, "mysqlsts-clone/2 receiver" | Nd | Nc): each side proves it holds the
token over the other's fresh nonce, so a recorded exchange cannot be replayed and the token never
crosses the wire. Proofs are compared with `hmac.compare_digest`.

Sealed frames: from START on, every frame the donor sends is AES-256-GCM encrypted under a key
that HKDF-SHA256 derives from the token and both nonces (fresh per session), with the frame's
sequence number as the GCM nonce and its header as associated data. A frame altered, dropped,
reordered, replayed from another session or injected fails authentication, and a stream cut
before its sealed TRAILER is incomplete; the backup itself crosses the network encrypted.
`cryptography` (OpenSSL) does the cipher work; nothing here is a home-made cipher. The key comes
from the shared token, so someone who later learns the token can decrypt a recorded stream (no
forward secrecy); rotate the token Secret if it leaks.

Limits, so that a client who has not authenticated costs the donor almost nothing:
`HANDSHAKE_FRAME_MAX` bytes per frame before authentication (a larger claim is refused before
anything is allocated), a handshake deadline counted from accept (the donor's setting), and
`MAX_FRAME` for sealed frames.

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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PROTOCOL_VERSION = 2
# Silence after which either side counts the stream as broken (keepalives flow every few s).
IDLE_TIMEOUT = 120.0
HEADER = struct.Struct(">BI")
NONCE_BYTES = 32
TAG_BYTES = 16
# The largest DATA chunk a donor sends; big chunks keep the per-frame cost (a GCM tag, a header,
# a system call) negligible.
CHUNK = 1024 * 1024
# Any sealed frame: a DATA chunk and its tag. Larger lengths mean a peer speaking something else.
MAX_FRAME = CHUNK + TAG_BYTES
# Frames before authentication (HELLO, CHALLENGE, AUTH, ERROR) are ~100-300 bytes.
HANDSHAKE_FRAME_MAX = 4096
_DOMAIN = b"mysqlsts-clone/2 "


class FrameType(IntEnum):
    HELLO = 1
    CHALLENGE = 2
    AUTH = 3
    ERROR = 4
    START = 5
    DATA = 6
    KEEPALIVE = 7
    TRAILER = 8
    DATA_ZSTD = 9  # a DATA chunk compressed with zstd (core.clone_compression)


class ErrorCode:
    REFUSED = "refused"  # the receiver did not prove it holds the token
    BUSY = "busy"  # another stream is running; try later or elsewhere
    PROTOCOL = "protocol"  # unexpected frame or version
    FAILED = "failed"  # the donor could not start its backup


class ProtocolError(Exception):
    """The peer broke the protocol (wrong frame, bad length, bad JSON, failed authentication)."""


def encode_header(kind: FrameType, length: int) -> bytes:
    if not 0 <= length <= MAX_FRAME:
        raise ValueError(f"frame length {length} outside 0..{MAX_FRAME}")
    return HEADER.pack(kind, length)


def decode_header(raw: bytes, limit: int = MAX_FRAME) -> tuple[FrameType, int]:
    """The frame's type and length; ProtocolError for an unknown type or a length over
    `limit`, checked before the payload is read, let alone allocated."""
    kind, length = HEADER.unpack(raw)
    try:
        frame_type = FrameType(kind)
    except ValueError:
        raise ProtocolError(f"unknown frame type {kind}") from None
    if length > limit:
        raise ProtocolError(f"frame length {length} exceeds {limit}")
    return frame_type, length


def json_payload(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def encode_json(kind: FrameType, body: dict[str, Any]) -> bytes:
    payload = json_payload(body)
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


def stream_key(token: str, receiver_nonce: bytes, donor_nonce: bytes) -> bytes:
    """The AES-256 key of one session's donor → receiver stream."""
    return HKDF(
        algorithm=SHA256(), length=32, salt=receiver_nonce + donor_nonce,
        info=_DOMAIN + b"stream donor to receiver",
    ).derive(token.encode())


class _Sequenced:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._sequence = 0

    def _next_nonce(self) -> bytes:
        nonce = self._sequence.to_bytes(12, "big")
        self._sequence += 1
        return nonce


class Sealer(_Sequenced):
    """The donor's half: seals each frame in order."""

    def seal(self, kind: FrameType, plaintext: bytes) -> tuple[bytes, bytes]:
        """The header and the sealed payload of the next frame."""
        header = encode_header(kind, len(plaintext) + TAG_BYTES)
        return header, self._aead.encrypt(self._next_nonce(), plaintext, header)


class Opener(_Sequenced):
    """The receiver's half: opens each frame in order; ProtocolError for any it did not seal."""

    def open(self, kind: FrameType, sealed: bytes | memoryview) -> bytes:
        header = encode_header(kind, len(sealed))
        try:
            # bytes, not a view: cryptography < 42 (Debian 12's 38) takes nothing else.
            return self._aead.decrypt(self._next_nonce(), bytes(sealed), header)
        except InvalidTag:
            raise ProtocolError(f"a {kind.name} frame fails authentication (altered on the way, "
                                "or not from this session's donor)") from None


@dataclass(frozen=True)
class Trailer:
    """The donor's verdict on the stream it just sent (sealed, so authentic)."""

    exit_code: int
    byte_count: int
    stderr_tail: str = ""

    def payload(self) -> bytes:
        return json_payload({"exit_code": self.exit_code, "bytes": self.byte_count,
                             "stderr_tail": self.stderr_tail})

    @classmethod
    def decode(cls, payload: bytes) -> Trailer:
        body = decode_json(payload)
        try:
            return cls(exit_code=int(body["exit_code"]), byte_count=int(body["bytes"]),
                       stderr_tail=str(body.get("stderr_tail", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"trailer is malformed: {exc!r}") from None

    def problems(self, received_bytes: int) -> list[str]:
        """What is wrong with a stream of `received_bytes` that ended with this trailer."""
        found = []
        if self.exit_code != 0:
            tail = f": {self.stderr_tail}" if self.stderr_tail else ""
            found.append(f"the donor's backup tool failed with exit code {self.exit_code}{tail}")
        if self.byte_count != received_bytes:
            found.append(f"donor sent {self.byte_count} bytes, {received_bytes} arrived")
        return found
