"""Both halves of the clone handshake, side by side: HELLO → CHALLENGE → AUTH, then the donor's
sealed START (docs/clone.md, "The protocol on port 3307"; the frames: core.clone_protocol).

Each end proves it holds the clone token without sending it, over fresh nonces from both; the
receiver learns that a donor lacks the token before it sends its own proof. Both derive the
same stream key, which seals everything the donor sends after the handshake.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mysqlsts.clone.wire import PeerClosed, Wire
from mysqlsts.core import clone_compression
from mysqlsts.core.clone_protocol import (
    HANDSHAKE_FRAME_MAX,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    ErrorCode,
    FrameType,
    Opener,
    ProtocolError,
    decode_json,
    donor_proof,
    hex_field,
    proof_matches,
    receiver_proof,
    stream_key,
)
from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.errors import CloneError

log = logging.getLogger(__name__)


def send_error(wire: Wire, code: str, message: str) -> None:
    """Tell the other end why, if it still listens."""
    with contextlib.suppress(OSError):
        wire.send_json(FrameType.ERROR, {"code": code, "message": message})


# -- the donor's half ------------------------------------------------------------------------


class Refused(Exception):
    """The donor refused this client during the handshake, told it why, and logged it."""


@dataclass(frozen=True)
class ReceiverProven:
    """A receiver that proved the token: the session's stream key and its compression offer."""

    key: bytes
    offer: Any  # as the receiver sent it; clone_compression.choose judges it


def donor_handshake(wire: Wire, token: Callable[[], str], peer: str) -> ReceiverProven | None:
    """Read HELLO, prove the token (CHALLENGE), check the receiver's proof (AUTH). None when the
    connection closed before saying anything (a port probe, not counted); `Refused` otherwise.
    `token` is read once the client has said hello (a rotated Secret takes effect at once)."""
    try:
        _, hello = wire.read_json(FrameType.HELLO)
    except PeerClosed:
        log.debug("clone donor connection closed before a hello peer=%s", peer)
        return None
    except (ProtocolError, OSError) as exc:
        log.warning("clone donor refused a client that broke the protocol peer=%s "
                    "reason=%s", peer, exc)
        send_error(wire, ErrorCode.PROTOCOL, "expected a mysqlsts clone hello")
        raise Refused from None
    try:
        if hello.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"protocol {hello.get('protocol')!r} is not supported")
        receiver_nonce = hex_field(hello, "nonce", NONCE_BYTES)
        donor_nonce = secrets.token_bytes(NONCE_BYTES)
        secret = token()
        wire.send_json(FrameType.CHALLENGE, {
            "nonce": donor_nonce.hex(),
            "proof": donor_proof(secret, receiver_nonce, donor_nonce).hex(),
        })
        _, auth = wire.read_json(FrameType.AUTH)
        presented = hex_field(auth, "proof", 32)
    except (ProtocolError, PeerClosed, OSError) as exc:
        log.warning("clone donor refused a client during the handshake peer=%s reason=%s",
                    peer, exc)
        send_error(wire, ErrorCode.PROTOCOL, "handshake failed")
        raise Refused from None
    if not proof_matches(receiver_proof(secret, receiver_nonce, donor_nonce), presented):
        log.warning("clone donor refused a client without the clone token peer=%s", peer)
        send_error(wire, ErrorCode.REFUSED, "the client did not prove the clone token")
        raise Refused
    return ReceiverProven(stream_key(secret, receiver_nonce, donor_nonce),
                          hello.get("compression"))


# -- the receiver's half ---------------------------------------------------------------------


class DonorUnavailable(Exception):
    """This donor cannot serve now (unreachable, not ready, busy); another may, or later."""


@dataclass(frozen=True)
class StreamStarted:
    """A donor that proved the token and started its stream."""

    opener: Opener  # opens the sealed frames that follow
    compression: str  # what the donor chose


def receiver_handshake(wire: Wire, token: str, candidate: DonorAddress,
                       compression: str) -> StreamStarted:
    """Send HELLO (offering `compression`: auto|zstd|none), check the donor's proof, prove ours,
    read START. DonorUnavailable when the donor answers that it cannot serve now, CloneError
    when either side lacks the token; protocol and socket errors are left to the caller."""
    receiver_nonce = secrets.token_bytes(NONCE_BYTES)
    wire.send_json(FrameType.HELLO, {"protocol": PROTOCOL_VERSION,
                                     "nonce": receiver_nonce.hex(),
                                     "compression": clone_compression.offer(compression)})
    kind, body = wire.read_json(FrameType.CHALLENGE, FrameType.ERROR)
    if kind is FrameType.ERROR:
        raise DonorUnavailable(f"answered {body.get('code')}: {body.get('message')}")
    donor_nonce = hex_field(body, "nonce", NONCE_BYTES)
    if not proof_matches(donor_proof(token, receiver_nonce, donor_nonce),
                         hex_field(body, "proof", 32)):
        raise CloneError(f"donor {candidate} does not hold our clone token "
                         "(the clone-token Secret differs between pods?)")
    wire.send_json(FrameType.AUTH, {
        "proof": receiver_proof(token, receiver_nonce, donor_nonce).hex()})
    opener = Opener(stream_key(token, receiver_nonce, donor_nonce))
    kind, length = wire.read_header(HANDSHAKE_FRAME_MAX)
    if kind is FrameType.START:
        start = decode_json(opener.open(kind, wire.read_payload(length)))
        chosen = start.get("compression", clone_compression.NONE)
        if chosen not in (clone_compression.NONE, *clone_compression.offer(compression)):
            raise ProtocolError(f"the donor chose compression {chosen!r}, not offered")
        return StreamStarted(opener, chosen)
    if kind is not FrameType.ERROR:
        raise ProtocolError(f"expected START/ERROR, got {kind.name}")
    body = decode_json(wire.read_payload(length))
    if body.get("code") == ErrorCode.REFUSED:
        raise CloneError(f"donor {candidate} refused our clone token "
                         "(the clone-token Secret differs between pods?)")
    raise DonorUnavailable(f"answered {body.get('code')}: {body.get('message')}")
