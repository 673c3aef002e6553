"""Optional zstd compression of the clone stream: negotiation, what the settings mean, the
adaptive choice by data, and the codec. Compressed THEN sealed, so integrity and authentication
are those of every frame.

Negotiation: the receiver offers `{"compression": ["zstd"]}` in HELLO unless its setting is
"none"; the donor picks zstd when its own setting allows it and the receiver offered it, and
names its choice in the sealed START frame (so the choice itself is authentic; a stripped offer
only costs speed). Each frame says what it carries (DATA or DATA_ZSTD), so once zstd is chosen
the donor may send any chunk either way and the receiver needs to know nothing more.

The donor's setting then decides how (`Mode`, carried out by core.clone_window): "auto"
compresses while the link, not the compressor, is the bottleneck; "zstd" compresses every chunk
that shrinks, waiting for the compressor if need be; "none" never compresses.

Adaptive to the data: a chunk that does not shrink below `WORTHWHILE` of its size goes raw
(DATA) and the next attempts are skipped, the skip doubling (up to `MAX_SKIP`) while the data
stays incompressible, so a stream of random or encrypted pages pays one compression in
`MAX_SKIP`; a chunk that compresses (DATA_ZSTD) resets the skip.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

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


class Mode(enum.Enum):
    NEVER = "never"  # zstd not negotiated: every chunk raw
    ALWAYS = "always"  # "zstd": every chunk that shrinks goes compressed
    LINK_AWARE = "link-aware"  # "auto": compressed only while the link is the bottleneck


def mode(setting: str, chosen: str) -> Mode:
    """How the donor compresses, from its setting and the negotiated codec (`choose`)."""
    if chosen != ZSTD:
        return Mode.NEVER
    return Mode.ALWAYS if setting == ZSTD else Mode.LINK_AWARE


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


Compress = Callable[[bytes], bytes]


def zstd_compressor() -> Compress:
    """The donor's half of the codec, for one thread (a ZstdCompressor is not thread-safe).
    The frame states its content size, which the receiver checks before decompressing."""
    return zstandard.ZstdCompressor(level=LEVEL, write_content_size=True).compress


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
