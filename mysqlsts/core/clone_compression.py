"""Optional zstd compression of the clone stream: negotiation, the adaptive choice per chunk,
and the codec. Compressed THEN sealed, so integrity and authentication are those of every frame.

Negotiation: the receiver offers `{"compression": ["zstd"]}` in HELLO unless its setting is
"none"; the donor picks zstd when its own setting allows it and the receiver offered it, and
names its choice in the sealed START frame (so the choice itself is authentic; a stripped offer
only costs speed). "auto" and "zstd" both mean "compress if the peer can"; "none" never does.

Adaptive: a chunk that does not shrink below `WORTHWHILE` of its size goes raw (DATA) and the
next chunks skip the attempt, the skip doubling (up to `MAX_SKIP`) while the data stays
incompressible, so a stream of random or encrypted pages pays one compression in `MAX_SKIP`;
a chunk that compresses (DATA_ZSTD) resets the skip.
"""

from __future__ import annotations

from collections.abc import Sequence

import zstandard

ZSTD = "zstd"
NONE = "none"
AUTO = "auto"
CHOICES = (AUTO, ZSTD, NONE)
# A chunk is sent compressed only when it shrinks to this fraction or less.
WORTHWHILE = 0.95
MAX_SKIP = 32
# Level 1: ~300-500 MB/s per core, several times a 1 Gbit/s link; higher levels cost the donor
# CPU (it is serving traffic) for a few more percent.
LEVEL = 1
ZstdError = zstandard.ZstdError


def offer(setting: str) -> list[str]:
    """What the receiver offers in HELLO."""
    return [] if setting == NONE else [ZSTD]


def choose(setting: str, offered: object) -> str:
    """The donor's choice from its setting and the receiver's offer (any JSON value)."""
    if setting == NONE or not isinstance(offered, list) or ZSTD not in offered:
        return NONE
    return ZSTD


class AdaptivePolicy:
    """Which chunks are worth trying to compress, from how the last attempts went."""

    def __init__(self) -> None:
        self._skip = 0  # chunks still to send without trying
        self._next_skip = 1

    def should_try(self) -> bool:
        if self._skip > 0:
            self._skip -= 1
            return False
        return True

    def record(self, raw_size: int, compressed_size: int) -> bool:
        """Note an attempt; True when the compressed form is worth sending."""
        if compressed_size <= raw_size * WORTHWHILE:
            self._next_skip = 1
            return True
        self._skip = self._next_skip
        self._next_skip = min(self._next_skip * 2, MAX_SKIP)
        return False


class ChunkCompressor:
    """The donor's half: each chunk as (compressed?, bytes to seal)."""

    def __init__(self) -> None:
        self._zstd = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True)
        self._policy = AdaptivePolicy()

    def pack(self, chunk: bytes) -> tuple[bool, bytes]:
        if not self._policy.should_try():
            return False, chunk
        packed = self._zstd.compress(chunk)
        if self._policy.record(len(chunk), len(packed)):
            return True, packed
        return False, chunk


class ChunkDecompressor:
    """The receiver's half; ValueError for a frame that would expand past `limit` bytes
    (checked from the frame's header before anything is allocated)."""

    def __init__(self, limit: int) -> None:
        self._zstd = zstandard.ZstdDecompressor()
        self._limit = limit

    def unpack(self, packed: bytes | Sequence[int]) -> bytes:
        data = bytes(packed)
        size = zstandard.frame_content_size(data)
        if size < 0 or size > self._limit:
            raise ValueError(f"compressed chunk claims {size} bytes (limit {self._limit})")
        out = self._zstd.decompress(data, max_output_size=self._limit)
        if len(out) != size:
            raise ValueError("compressed chunk does not match its stated size")
        return out
