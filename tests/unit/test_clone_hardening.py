# ruff: noqa: F401, F811 (pytest fixtures imported from test_clone_wire are parameters here)
"""What the donor on port 3307 withstands: clients that never authenticate (slow, many, or
claiming huge frames) and a man in the middle who reads or alters the stream. A real
DonorServer and receiver over loopback, as in test_clone_wire."""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib

import pytest
from test_clone_wire import FAST, TOKEN, Candidate, donors, extractor, free_port

from mysqlsts.clone.receiver import open_session
from mysqlsts.errors import CloneError
from tests.dripfeed import DripFeeders
from tests.faultproxy import FaultProxy

HELLO, ERROR, DATA, DATA_ZSTD = 1, 4, 6, 9


def test_a_slow_handshake_is_cut_at_a_total_deadline(donors):
    donor = donors("echo x", handshake_timeout=1.0)
    with DripFeeders(donor.candidate.port, 1, interval=0.2) as drip:
        deadline = time.monotonic() + 6
        while not drip.lifetimes and time.monotonic() < deadline:
            time.sleep(0.1)
    # Each byte came well within any per-read timeout; the total deadline still ended it.
    assert drip.lifetimes and drip.lifetimes[0] < 2.0, drip.lifetimes


def test_unauthenticated_connections_never_keep_a_receiver_out(donors, extractor, tmp_path):
    donor = donors("head -c 3000000 /dev/zero")
    with DripFeeders(donor.candidate.port, 20, interval=0.5):
        time.sleep(1.0)  # every dripping connection is open and mid-HELLO
        session = open_session(donor.candidate, TOKEN, FAST)
        assert session.receive_into(tmp_path, extractor, 1, FAST) == 3_000_000
        session.close()
    assert "ok" in donor.wait_results(1)


def test_a_huge_frame_claim_before_authentication_is_refused_unread(donors):
    donor = donors("echo x")
    with socket.create_connection(("127.0.0.1", donor.candidate.port), timeout=2) as sock:
        sock.sendall(struct.pack(">BI", HELLO, 16 * 1024 * 1024))  # and no payload at all
        header = sock.recv(5)
        assert header and header[0] == ERROR, header
    assert donor.wait_results(1) == ["refused"]


def _crc_neutral_patch(first: int) -> bytes:
    """8 bytes to XOR into any message that change its first byte by `first` and leave its
    CRC-32 as it was: CRC-32 is linear, so what the first byte changes, four more undo."""
    zeros = zlib.crc32(bytes(8))

    def effect(delta: bytes) -> int:
        return zlib.crc32(delta) ^ zeros

    target = effect(bytes([first]) + bytes(7))
    basis: dict[int, tuple[int, int]] = {}  # pivot bit → (effect, which of the 32 bits)
    for bit in range(32):
        vector, combo = effect(bytes(4) + (1 << bit).to_bytes(4, "little")), 1 << bit
        for pivot in sorted(basis, reverse=True):
            if vector >> pivot & 1:
                vector, combo = vector ^ basis[pivot][0], combo ^ basis[pivot][1]
        if vector:
            basis[vector.bit_length() - 1] = (vector, combo)
    chosen = 0
    for pivot in sorted(basis, reverse=True):
        if target >> pivot & 1:
            target, chosen = target ^ basis[pivot][0], chosen ^ basis[pivot][1]
    assert target == 0
    return bytes([first]) + bytes(3) + chosen.to_bytes(4, "little")


class Tamperer:
    """Watches the donor → receiver bytes frame by frame; optionally XORs a CRC-neutral patch
    into the first DATA frame's payload."""

    def __init__(self, patch: bytes | None) -> None:
        self.patch = patch
        self.seen = bytearray()
        self.target: int | None = None  # stream offset of the patch
        self.patched = False

    def __call__(self, direction: str, data: bytes) -> bytes:
        if direction != "down":
            return data
        start = len(self.seen)
        self.seen += data
        if self.target is None:
            self.target = self._first_data_payload()
        if self.patch is None or self.target is None or self.patched:
            return data
        at = self.target - start
        if at < 0 or at + len(self.patch) > len(data):
            return data
        self.patched = True
        altered = bytearray(data)
        for i, byte in enumerate(self.patch):
            altered[at + i] ^= byte
        return bytes(altered)

    def _first_data_payload(self) -> int | None:
        offset = 0
        while offset + 5 <= len(self.seen):
            kind, length = struct.unpack(">BI", self.seen[offset:offset + 5])
            if kind in (DATA, DATA_ZSTD) and length > 64:
                return offset + 5 + 32
            offset += 5 + length
        return None


def _through(tamperer: Tamperer, donor_port: int) -> FaultProxy:
    return FaultProxy(free_port(), donor_port, rewrite=tamperer).start()


def test_the_crc_neutral_patch_fools_a_crc():
    data = bytes(range(256)) * 4
    patch = _crc_neutral_patch(0x5A)
    altered = bytes(a ^ b for a, b in zip(data, patch + bytes(len(data) - 8), strict=True))
    assert altered != data and zlib.crc32(altered) == zlib.crc32(data)


def _tampered_clone_fails(donor_port, extractor, tmp_path):
    """A relay flips a bit in a sealed frame and fixes the CRC-32: the receiver must refuse."""
    tamperer = Tamperer(_crc_neutral_patch(0x01))
    proxy = _through(tamperer, donor_port)
    try:
        session = open_session(Candidate(0, "127.0.0.1", proxy.listen[1]), TOKEN, FAST)
        (tmp_path / "staging").mkdir()
        with pytest.raises(CloneError, match="fails authentication"):
            session.receive_into(tmp_path / "staging", extractor, 1, FAST)
        session.close()
    finally:
        proxy.close()
    assert tamperer.patched


def test_a_data_frame_altered_on_the_way_fails_the_clone(donors, extractor, tmp_path):
    source = tmp_path / "source.bin"
    donor = donors(f"head -c 3000000 /dev/urandom > {source}; cat {source}")
    _tampered_clone_fails(donor.candidate.port, extractor, tmp_path)


def test_the_stream_crosses_the_network_encrypted(donors, extractor, tmp_path):
    marker = b"mysqlsts-confidential-row-0123456789"
    source = tmp_path / "source.bin"
    source.write_bytes(marker * 30000)
    donor = donors(f"cat {source}")
    tamperer = Tamperer(None)
    proxy = _through(tamperer, donor.candidate.port)
    try:
        # Uncompressed, so the size check below sees every byte framed and sealed.
        session = open_session(Candidate(0, "127.0.0.1", proxy.listen[1]), TOKEN, FAST,
                               compression="none")
        received = session.receive_into(tmp_path, extractor, 1, FAST)
        session.close()
    finally:
        proxy.close()
    assert received == len(marker) * 30000
    assert (tmp_path / "stream.bin").read_bytes() == source.read_bytes()
    in_clear = marker in tamperer.seen
    assert len(tamperer.seen) > received and not in_clear


def _mixed_source(path):
    """Text rows (compress well), then random bytes (do not), then text again: 6 MB. After
    the random stretch the donor may skip up to 32 chunks before trying again, so the last
    text may go raw; the first 4 MB always go compressed, whatever the tool's read sizes."""
    rows = b"".join(b"%08d,order-%d,2024-03-%02d,%d.%02d,shipped\n" % (i, i * 13, i % 28 + 1, i,
                                                                       i % 100)
                    for i in range(100000))[:4_000_000]
    path.write_bytes(rows + os.urandom(1_000_000) + rows[:1_000_000])
    return path


@pytest.mark.parametrize(("receiver", "donor", "chosen"), [
    ("auto", "zstd", "zstd"), ("auto", "auto", "zstd"), ("none", "auto", "none"),
    ("auto", "none", "none")])
def test_compression_is_negotiated_and_the_data_arrives_identical(
        donors, extractor, tmp_path, receiver, donor, chosen):
    source = _mixed_source(tmp_path / "source.bin")
    served = donors(f"cat {source}", compression=donor)
    tamperer = Tamperer(None)
    proxy = _through(tamperer, served.candidate.port)
    try:
        session = open_session(Candidate(0, "127.0.0.1", proxy.listen[1]), TOKEN, FAST,
                               compression=receiver)
        received = session.receive_into(tmp_path, extractor, 1, FAST)
        session.close()
    finally:
        proxy.close()
    assert session.compression == chosen
    assert received == source.stat().st_size  # the trailer counts the tool's bytes
    assert (tmp_path / "stream.bin").read_bytes() == source.read_bytes()
    if donor == "zstd":  # the text shrank; the random middle crossed at its own size
        assert 1_000_000 < len(tamperer.seen) < received * 0.6
    elif chosen == "none":
        assert len(tamperer.seen) > received
    # With auto, how much shrank depends on who kept up, the link or the compressor
    # (test_clone_wire); either way the bytes arrive identical.


def test_a_compressed_frame_altered_on_the_way_fails_the_clone(donors, extractor, tmp_path):
    source = _mixed_source(tmp_path / "source.bin")
    served = donors(f"cat {source}", compression="zstd")
    _tampered_clone_fails(served.candidate.port, extractor, tmp_path)
