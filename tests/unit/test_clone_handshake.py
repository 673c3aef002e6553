"""Both halves of the clone handshake against each other, over a real socket pair."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from mysqlsts.clone.handshake import (
    DonorUnavailable,
    ReceiverProven,
    Refused,
    StreamStarted,
    donor_handshake,
    receiver_handshake,
    send_error,
)
from mysqlsts.clone.wire import Wire
from mysqlsts.core.clone_protocol import (
    NONCE_BYTES,
    PROTOCOL_VERSION,
    ErrorCode,
    FrameType,
    ProtocolError,
    Sealer,
    json_payload,
)
from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.errors import CloneError

TOKEN = "clone-token-for-tests"
DONOR = DonorAddress(0, "127.0.0.1", 3307)


@contextmanager
def donor_thread(act: Callable[[Wire], object]) -> Iterator[tuple[Wire, list[object]]]:
    """A socket pair: the donor's end runs `act` on a thread, the receiver's end is yielded
    with the list that `act`'s result (or exception) lands in."""
    donor_sock, receiver_sock = socket.socketpair()
    donor, receiver = Wire(donor_sock), Wire(receiver_sock)
    donor.set_deadline(5)
    receiver.set_deadline(5)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(act(donor))
        except Exception as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield receiver, outcome
    finally:
        receiver.close()
        thread.join(5)
        donor.close()


def start_stream(proven: ReceiverProven | None, wire: Wire, codec: str = "none") -> None:
    assert proven is not None
    wire.send_sealed(Sealer(proven.key), FrameType.START,
                     json_payload({"tool": "mariabackup", "compression": codec}))


def test_both_halves_agree_on_the_key_and_the_compression() -> None:
    def donor(wire: Wire) -> ReceiverProven | None:
        proven = donor_handshake(wire, lambda: TOKEN, "peer")
        start_stream(proven, wire, "zstd")
        return proven

    with donor_thread(donor) as (receiver, outcome):
        started = receiver_handshake(receiver, TOKEN, DONOR, "auto")
    assert isinstance(started, StreamStarted)
    assert started.compression == "zstd"
    (proven,) = outcome
    assert isinstance(proven, ReceiverProven) and proven.offer == ["zstd"]


def test_a_donor_without_our_token_is_found_out_before_we_prove_ours() -> None:
    with donor_thread(lambda wire: donor_handshake(wire, lambda: "another", "peer")) as (
        receiver, outcome
    ), pytest.raises(CloneError, match="does not hold our clone token"):
        receiver_handshake(receiver, TOKEN, DONOR, "none")
    # We never sent AUTH: the donor, waiting for it, saw the connection close.
    assert isinstance(outcome[0], Refused)


def test_a_receiver_without_the_token_is_refused_and_told_so() -> None:
    with donor_thread(lambda wire: donor_handshake(wire, lambda: TOKEN, "peer")) as (
        receiver, outcome
    ):
        receiver.send_json(FrameType.HELLO, {"protocol": PROTOCOL_VERSION,
                                             "nonce": secrets.token_bytes(NONCE_BYTES).hex()})
        receiver.read_json(FrameType.CHALLENGE)
        receiver.send_json(FrameType.AUTH, {"proof": bytes(32).hex()})  # a guess
        kind, body = receiver.read_json(FrameType.ERROR)
    assert (kind, body["code"]) == (FrameType.ERROR, ErrorCode.REFUSED)
    assert isinstance(outcome[0], Refused)


def test_a_busy_donor_is_unavailable_not_an_error() -> None:
    def busy(wire: Wire) -> None:
        donor_handshake(wire, lambda: TOKEN, "peer")
        send_error(wire, ErrorCode.BUSY, "another clone stream is running")

    with donor_thread(busy) as (receiver, _), pytest.raises(DonorUnavailable, match="busy"):
        receiver_handshake(receiver, TOKEN, DONOR, "none")


def test_a_donor_choosing_compression_we_did_not_offer_is_refused() -> None:
    def donor(wire: Wire) -> None:
        start_stream(donor_handshake(wire, lambda: TOKEN, "peer"), wire, "zstd")

    with donor_thread(donor) as (receiver, _), pytest.raises(ProtocolError, match="not offered"):
        receiver_handshake(receiver, TOKEN, DONOR, "none")


def test_the_donor_counts_nothing_for_a_connection_that_says_nothing() -> None:
    with donor_thread(lambda wire: donor_handshake(wire, lambda: TOKEN, "peer")) as (
        receiver, outcome
    ):
        receiver.close()
    assert outcome == [None]


def test_the_donor_refuses_garbage_and_says_why() -> None:
    with donor_thread(lambda wire: donor_handshake(wire, lambda: TOKEN, "peer")) as (
        receiver, outcome
    ):
        receiver.sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        kind, body = receiver.read_json(FrameType.ERROR)
    assert (kind, body["code"]) == (FrameType.ERROR, ErrorCode.PROTOCOL)
    assert isinstance(outcome[0], Refused)
