"""Compression of the clone stream: what is negotiated, which chunks go compressed, and that
what the donor packs the receiver unpacks byte for byte."""

import os

import pytest

from mysqlsts.core import clone_compression
from mysqlsts.core.clone_compression import (
    MAX_SKIP,
    AdaptivePolicy,
    ChunkDecompressor,
    Mode,
    choose,
    mode,
    offer,
    zstd_compressor,
)
from mysqlsts.core.clone_window import SendWindow

CHUNK = 1024 * 1024


@pytest.mark.parametrize(("receiver", "donor", "chosen"), [
    ("auto", "auto", "zstd"),
    ("zstd", "auto", "zstd"),
    ("auto", "zstd", "zstd"),
    ("none", "auto", "none"),
    ("none", "zstd", "none"),
    ("auto", "none", "none"),
    ("zstd", "none", "none"),
])
def test_zstd_is_used_only_when_both_ends_allow_it(receiver, donor, chosen):
    assert choose(donor, offer(receiver)) == chosen


@pytest.mark.parametrize("offered", [None, "zstd", {"zstd": 1}, ["lz4"], []])
def test_an_old_or_odd_offer_gets_no_compression(offered):
    # A receiver from before compression sends no offer at all; it must get raw DATA.
    assert choose("auto", offered) == "none"


@pytest.mark.parametrize(("setting", "chosen", "expected"), [
    ("auto", "zstd", Mode.LINK_AWARE),
    ("zstd", "zstd", Mode.ALWAYS),
    ("auto", "none", Mode.NEVER),
    ("zstd", "none", Mode.NEVER),
    ("none", "none", Mode.NEVER),
])
def test_the_donors_setting_decides_how_a_negotiated_zstd_is_used(setting, chosen, expected):
    assert mode(setting, chosen) is expected


def test_a_chunk_that_does_not_shrink_enough_goes_raw_and_the_skip_doubles():
    policy = AdaptivePolicy()
    tried = []
    for _ in range(200):
        attempt = policy.should_try()
        tried.append(attempt)
        if attempt:
            assert policy.record(1000, 990) is False  # 0.99: not worth it
    attempts = [i for i, t in enumerate(tried) if t]
    gaps = [b - a - 1 for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[:6] == [1, 2, 4, 8, 16, 32]
    assert set(gaps[6:]) == {MAX_SKIP}


def test_a_chunk_that_compresses_resets_the_skip():
    policy = AdaptivePolicy()
    for _ in range(4):  # skip grows to 1, 2, 4, 8
        while not policy.should_try():
            pass
        policy.record(1000, 1000)
    while not policy.should_try():
        pass
    assert policy.record(1000, 950) is True  # exactly the threshold is worth it
    assert policy.should_try()
    assert policy.record(1000, 999) is False
    assert not policy.should_try()  # back to a skip of one
    assert policy.should_try()


def _through_window(chunks: list[bytes]) -> tuple[SendWindow, list[tuple[bool, bytes]]]:
    """Each chunk through a forced-zstd window and the real codec, one at a time."""
    window, compress, sent = SendWindow(Mode.ALWAYS), zstd_compressor(), []
    for chunk in chunks:
        window.add(chunk)
        if (job := window.claim(0.0)) is not None:
            window.record(job.seq, compress(job.data), 0.001)
        out = window.take(0.0)
        assert out is not None
        sent.append((out.compressed, out.payload))
    return window, sent


def test_text_goes_compressed_and_comes_back_identical():
    rows = b"".join(b"%08d,customer-%d,2024-01-%02d,%d.%02d\n" % (i, i * 7, i % 28 + 1, i, i % 100)
                    for i in range(30000))[:CHUNK]
    _, [(packed, payload)] = _through_window([rows])
    assert packed and len(payload) < len(rows) / 3
    assert ChunkDecompressor(CHUNK).unpack(payload) == rows


def test_random_data_goes_raw_and_mostly_untried():
    chunks = [os.urandom(64 * 1024) for _ in range(64)]
    window, sent = _through_window(chunks)
    assert all(not packed and payload is chunk
               for (packed, payload), chunk in zip(sent, chunks, strict=True))
    assert window.counts.attempts <= 7  # 1 + 2 + 4 + 8 + 16 + 32 chunks skipped between them
    assert window.counts.incompressible == 64


def test_a_chunk_claiming_more_than_the_limit_is_refused_before_decompressing():
    bomb = clone_compression.zstandard.ZstdCompressor().compress(bytes(CHUNK + 1))
    with pytest.raises(ValueError, match="claims"):
        ChunkDecompressor(CHUNK).unpack(bomb)


def test_a_frame_without_a_stated_size_is_refused():
    unsized = clone_compression.zstandard.ZstdCompressor(write_content_size=False).compressobj()
    frame = unsized.compress(b"x" * 100) + unsized.flush()
    with pytest.raises(ValueError, match="claims"):
        ChunkDecompressor(CHUNK).unpack(frame)
