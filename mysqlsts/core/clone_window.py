"""Which chunks of a clone stream go compressed, and when: the chunks between the backup tool and
the socket, as pure bookkeeping fed the times the donor measures (clone.outbound owns the
threads and the I/O).

The donor reads up to `CAPACITY` chunks ahead of the socket; one worker compresses them (zstd
releases the GIL) and the sender takes them in order. `Mode.ALWAYS` ("zstd"): the worker takes
the oldest chunk and the sender waits for each compressed form. `Mode.LINK_AWARE` ("auto"): the
sender does not wait for the worker. It is ready for a chunk when the link is about to need one
(the donor lets the kernel hold ~2 MiB the link has not sent, and chooses when half of that is
left); a chunk not compressed by then goes raw, unless the worker is on it and should finish
before the link has sent what it holds (`busy_until`). So whoever is ready first decides, and
no estimate has to be right for the stream to run at least at the raw path's pace:

- while the link is the bottleneck, chunks queue here and the worker, ahead of the sender,
  has them compressed before their turn: DATA_ZSTD;
- while the compressor is (a busy donor, a fast link), the sender overtakes it and sends raw;
  what the worker still compresses ahead comes on top, up to R + C * (1 - r) raw bytes per
  second (link R, compressor C, ratio r) where waiting for it would give min(C, R / r);
- while the backup tool is, the window stays short and the worker idles (below).

So that the worker spends no CPU on a chunk the sender will overtake, it takes the oldest chunk
the sender is expected to reach only after the compression, with a margin: the time the sender
needs for what is before it (its measured seconds per byte on the wire) must cover `MARGIN` ×
the chunk's size × the worker's seconds per byte; both are moving averages. None qualifies: it
waits. After `PROBE_EVERY` chunks sent without an attempt it tries the newest anyway and takes
that probe's time as the new estimate, so an estimate from one slow moment cannot switch
compression off for the rest of the stream.

From the donor's side a slow receiver looks like a slow link: the window fills and chunks go
compressed, which costs the donor CPU (only spare CPU: clone.outbound runs the worker at the
lowest priority) but no time.
"""

from __future__ import annotations

import collections
import enum
import math
from dataclasses import dataclass

from mysqlsts.core.clone_compression import AdaptivePolicy, Mode

# Chunks read ahead of the socket (1 MiB each, plus their compressed forms: ~16 MiB at most).
# The worker's lead over the sender is up to CAPACITY - 1 chunks: ~60 ms at 1 Gbit/s.
CAPACITY = 8
PROBE_EVERY = 32
# Compression times vary (other threads, other processes): a chunk is started only when the
# sender should need this much more time than the worker to get to it.
MARGIN = 1.5
# Weight of the newest sample in the moving averages: a few chunks follow a change of pace.
_WEIGHT = 0.25


class _State(enum.Enum):
    NEW = "new"
    WORKING = "working"  # the worker has it
    READY = "ready"  # compressed, or decided raw (did not shrink, or skipped)
    TAKEN = "taken"  # the sender has it


@dataclass(eq=False)
class _Slot:
    seq: int
    data: bytes
    state: _State = _State.NEW
    packed: bytes | None = None  # the compressed form, once worth sending
    started: float = 0.0  # when the worker took it

    @property
    def wire_size(self) -> int:
        return len(self.packed) if self.packed is not None else len(self.data)


@dataclass(frozen=True)
class Job:
    """A chunk for the worker to compress; `record` its result under the same `seq`."""

    seq: int
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """The sender's next frame."""

    payload: bytes
    compressed: bool
    size: int  # the backup tool's bytes it carries


@dataclass
class ChunkCounts:
    """How a stream's chunks went: compressed (DATA_ZSTD) or raw (DATA), and why raw."""

    compressed: int = 0
    incompressible: int = 0  # did not shrink enough, or skipped after chunks that did not
    behind: int = 0  # the sender was ready before the compressor (auto only)
    uncompressed: int = 0  # compression not negotiated
    attempts: int = 0  # compressions run, including those of chunks that went raw meanwhile

    @property
    def raw(self) -> int:
        return self.incompressible + self.behind + self.uncompressed


class _Average:
    """An exponentially weighted moving average; None until the first sample."""

    def __init__(self) -> None:
        self.value: float | None = None

    def add(self, sample: float, *, fresh: bool = False) -> None:
        """`fresh`: the old samples are stale; start again from this one."""
        if self.value is None or fresh:
            self.value = sample
        else:
            self.value += _WEIGHT * (sample - self.value)


class SendWindow:
    def __init__(self, mode: Mode, capacity: int = CAPACITY,
                 probe_every: int = PROBE_EVERY) -> None:
        self.mode = mode
        self.counts = ChunkCounts()
        self._capacity = capacity
        self._probe_every = probe_every
        self._slots: collections.deque[_Slot] = collections.deque()
        self._working: dict[int, _Slot] = {}
        self._next_seq = 0
        self._data = AdaptivePolicy()
        self._compress_cost = _Average()  # worker seconds per raw byte
        self._send_cost = _Average()  # sender seconds per byte on the wire
        self._in_flight = 0  # wire bytes of the frame the sender is sending
        self._taken_at = 0.0  # when it took that frame
        self._since_attempt = 0  # chunks taken since the worker last started one
        self._probes: set[int] = set()  # chunks started only to measure the worker again

    def __len__(self) -> int:
        return len(self._slots)

    def has_room(self) -> bool:
        return len(self._slots) < self._capacity

    def add(self, chunk: bytes) -> None:
        """A chunk read from the backup tool, behind all others."""
        self._slots.append(_Slot(self._next_seq, chunk))
        self._next_seq += 1

    # -- the worker ----------------------------------------------------------------------

    def claim(self, now: float) -> Job | None:
        """The chunk to compress next, or None: nothing worth starting until this changes."""
        if self.mode is Mode.NEVER:
            return None
        while (slot := self._candidate(now)) is not None:
            if self._data.should_try():
                slot.state = _State.WORKING
                slot.started = now
                self._working[slot.seq] = slot
                if self._since_attempt >= self._probe_every:
                    self._probes.add(slot.seq)
                self._since_attempt = 0
                self.counts.attempts += 1
                return Job(slot.seq, slot.data)
            slot.state = _State.READY  # the data has not been compressing: raw, untried
        return None

    def record(self, seq: int, packed: bytes, seconds: float) -> None:
        """The worker compressed `seq` to `packed` in `seconds`."""
        slot = self._working.pop(seq)
        probe = seq in self._probes
        self._probes.discard(seq)
        self._compress_cost.add(seconds / max(len(slot.data), 1), fresh=probe)
        worth = self._data.record(len(slot.data), len(packed))
        if slot.state is _State.WORKING:  # else the sender went ahead without it
            slot.state = _State.READY
            slot.packed = packed if worth else None

    def _candidate(self, now: float) -> _Slot | None:
        fresh = [slot for slot in self._slots if slot.state is _State.NEW]
        if not fresh:
            return None
        if self.mode is Mode.ALWAYS:
            return fresh[0]
        compress = self._compress_cost.value
        if compress is None or self._since_attempt >= self._probe_every:
            return fresh[-1]  # measure: on the chunk the sender reaches last
        # Before the first frame is sent the link could be slow: then anything the sender is
        # not about to take qualifies.
        send = self._send_cost.value if self._send_cost.value is not None else math.inf
        # Seconds until the sender reaches each chunk: what is left of the frame it is sending,
        # then every frame before the chunk (raw unless compressed: the one worker would be
        # busy with this chunk).
        ahead = max(0.0, self._taken_at + self._in_flight * send - now) if self._in_flight \
            else 0.0
        for slot in self._slots:
            if slot.state is _State.NEW and ahead >= MARGIN * len(slot.data) * compress:
                return slot
            ahead += slot.wire_size * send
        return None

    # -- the sender ----------------------------------------------------------------------

    def busy_until(self, now: float, unsent: int) -> float:
        """When the link, with `unsent` bytes still queued for it, will need the next frame
        (by the measured pace)."""
        return now + unsent * (self._send_cost.value or 0.0)

    def take(self, now: float, wait_until: float = 0.0) -> Outgoing | None:
        """The next frame, in order; None while there is none, in ALWAYS while the oldest
        chunk is still being compressed, and in LINK_AWARE while the link is busy until
        `wait_until` (see `busy_until`) and the worker should finish the oldest chunk by then."""
        if not self._slots:
            return None
        head = self._slots[0]
        if (self.mode is Mode.LINK_AWARE and head.state is _State.WORKING and now < wait_until
                and self._done_at(head) <= wait_until):
            return None
        if head.state is _State.READY:
            if head.packed is not None:
                self.counts.compressed += 1
            else:
                self.counts.incompressible += 1
        elif self.mode is Mode.NEVER:
            self.counts.uncompressed += 1
        elif self.mode is Mode.ALWAYS:
            return None
        else:
            self.counts.behind += 1  # not (yet) compressed: raw rather than wait
        self._slots.popleft()
        head.state = _State.TAKEN
        payload = head.packed if head.packed is not None else head.data
        self._in_flight = len(payload)
        self._taken_at = now
        self._since_attempt += 1
        return Outgoing(payload, head.packed is not None, len(head.data))

    def _done_at(self, slot: _Slot) -> float:
        return slot.started + len(slot.data) * (self._compress_cost.value or 0.0)

    def sent(self, seconds: float) -> None:
        """The frame last taken took `seconds` to send (waiting for the socket to take it,
        and for the rate cap)."""
        if self._in_flight:
            self._send_cost.add(seconds / self._in_flight)
        self._in_flight = 0
