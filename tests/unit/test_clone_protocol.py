import os

import pytest

from mysqlsts.core.clone_protocol import (
    HEADER,
    MAX_FRAME,
    FrameType,
    ProtocolError,
    StreamCheck,
    Trailer,
    decode_header,
    decode_json,
    donor_proof,
    encode_header,
    encode_json,
    hex_field,
    proof_matches,
    receiver_proof,
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


def test_trailer_round_trip_and_authentication():
    trailer = Trailer(0, 1000, 0xDEADBEEF)
    frame = trailer.encode("t", RN, DN)
    assert Trailer.decode(frame[5:], "t", RN, DN) == trailer
    with pytest.raises(ProtocolError, match="not authenticated"):
        Trailer.decode(frame[5:], "other", RN, DN)
    with pytest.raises(ProtocolError, match="not authenticated"):  # replayed into another session
        Trailer.decode(frame[5:], "t", RN, os.urandom(32))
    forged = frame[5:].replace(b'"bytes":1000', b'"bytes":999')
    with pytest.raises(ProtocolError, match="not authenticated"):
        Trailer.decode(forged, "t", RN, DN)


def test_stream_check():
    assert StreamCheck(10, 7).problems(Trailer(0, 10, 7)) == []
    assert "9 arrived" in StreamCheck(9, 7).problems(Trailer(0, 10, 7))[0]
    assert "checksum mismatch" in StreamCheck(10, 8).problems(Trailer(0, 10, 7))[0]
    failed = StreamCheck(10, 7).problems(Trailer(1, 10, 7, "Access denied"))
    assert failed == ["the donor's backup tool failed with exit code 1: Access denied"]
