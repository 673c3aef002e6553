import os

import pytest

from mysqlsts.core.clone_protocol import (
    HEADER,
    MAX_FRAME,
    FrameType,
    Opener,
    ProtocolError,
    Sealer,
    Trailer,
    decode_header,
    decode_json,
    donor_proof,
    encode_header,
    encode_json,
    hex_field,
    proof_matches,
    receiver_proof,
    stream_key,
)

RN, DN = os.urandom(32), os.urandom(32)


def test_header_round_trip():
    assert decode_header(encode_header(FrameType.DATA, 1234)) == (FrameType.DATA, 1234)
    assert len(encode_header(FrameType.KEEPALIVE, 0)) == HEADER.size == 5


def test_oversized_and_unknown_frames_are_protocol_errors():
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_header(HEADER.pack(FrameType.DATA, MAX_FRAME + 1))
    with pytest.raises(ProtocolError, match="unknown frame type"):
        decode_header(HEADER.pack(99, 0))
    with pytest.raises(ValueError):
        encode_header(FrameType.DATA, MAX_FRAME + 1)


def test_json_frames():
    frame = encode_json(FrameType.HELLO, {"protocol": 1})
    kind, length = decode_header(frame[:5])
    assert kind is FrameType.HELLO and decode_json(frame[5:5 + length]) == {"protocol": 1}
    for bad in (b"not json", b"[1]", b"\xff"):
        with pytest.raises(ProtocolError):
            decode_json(bad)


def test_proofs_need_the_token_and_differ_by_direction():
    assert proof_matches(donor_proof("t", RN, DN), donor_proof("t", RN, DN))
    assert not proof_matches(donor_proof("t", RN, DN), donor_proof("u", RN, DN))
    # A donor's proof is never a valid receiver proof (no reflection), nor valid for new nonces.
    assert donor_proof("t", RN, DN) != receiver_proof("t", RN, DN)
    assert donor_proof("t", RN, DN) != donor_proof("t", RN, os.urandom(32))


def test_token_never_appears_in_the_proof():
    token = "s3cret-token"
    assert token.encode() not in donor_proof(token, RN, DN).hex().encode()


def test_hex_field_checks_size():
    assert hex_field({"n": "ab" * 32}, "n", 32) == b"\xab" * 32
    for body in ({}, {"n": "zz"}, {"n": "ab"}, {"n": 5}):
        with pytest.raises(ProtocolError):
            hex_field(body, "n", 32)


def test_handshake_frames_are_refused_past_their_limit_from_the_header_alone():
    header = HEADER.pack(FrameType.HELLO, 16 * 1024 * 1024)
    with pytest.raises(ProtocolError, match="exceeds 4096"):
        decode_header(header, 4096)
    assert decode_header(HEADER.pack(FrameType.HELLO, 4096), 4096) == (FrameType.HELLO, 4096)


def _pair(token="t", rn=RN, dn=DN):
    return Sealer(stream_key("t", RN, DN)), Opener(stream_key(token, rn, dn))


def test_sealed_frames_open_in_order_and_hide_their_content():
    sealer, opener = _pair()
    frames = [sealer.seal(FrameType.START, b"{}"), sealer.seal(FrameType.DATA, b"secret rows"),
              sealer.seal(FrameType.KEEPALIVE, b"")]
    assert b"secret rows" not in frames[1][1]
    assert [opener.open(decode_header(h)[0], p) for h, p in frames] == [
        b"{}", b"secret rows", b""]


@pytest.mark.parametrize("attack", ["flip", "reorder", "retype", "other token", "other session"])
def test_a_frame_not_sealed_by_this_sessions_donor_fails(attack):
    token, dn = ("u", DN) if attack == "other token" else ("t", DN)
    if attack == "other session":
        dn = os.urandom(32)
    sealer, opener = _pair(token, RN, dn)
    first = sealer.seal(FrameType.DATA, b"a" * 100)
    second = sealer.seal(FrameType.DATA, b"b" * 100)
    kind, payload = FrameType.DATA, first[1]
    if attack == "flip":
        payload = bytes([payload[0] ^ 1]) + payload[1:]
    elif attack == "reorder":
        payload = second[1]
    elif attack == "retype":
        kind = FrameType.KEEPALIVE
    with pytest.raises(ProtocolError, match="fails authentication"):
        opener.open(kind, payload)


def test_trailer_round_trip_and_problems():
    trailer = Trailer(0, 1000)
    assert Trailer.decode(trailer.payload()) == trailer
    assert trailer.problems(1000) == []
    assert "1000 bytes, 999 arrived" in trailer.problems(999)[0]
    failed = Trailer(1, 10, "Access denied").problems(10)
    assert failed == ["the donor's backup tool failed with exit code 1: Access denied"]
    with pytest.raises(ProtocolError, match="malformed"):
        Trailer.decode(b'{"exit_code": 0}')
