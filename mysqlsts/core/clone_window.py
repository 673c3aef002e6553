"""Which chunks of a clone stream go compressed, and when (`auto`, link-aware): pure bookkeeping
fed the times the donor measures; clone.outbound owns the threads and the I/O. The derivation
is in docs/clone.md, "How `auto` chooses chunk by chunk"."""

from __future__ import annotations

import collections
import enum
import math
import statistics
from dataclasses import dataclass

from mysqlsts.core.clone_compression import AdaptivePolicy, Mode

# Chunks read ahead of the socket (1 MiB each, plus their compressed forms: ~16 MiB at most).
# The worker's lead over the sender is up to CAPACITY - 1 chunks: ~60 ms at 1 Gbit/s.
CAPACITY = 8
PROBE_EVERY = 32
# Compression times vary (other threads, other processes): a chunk is started only when the
# sender should need this much more time than the worker to get to it.
MARGIN = 1.5
# What the moving averages keep of the past at each sample: a few chunks follow a change of
# pace.
_KEEP = 0.75


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


class _Median:
    """The median of the last few samples: the kernel's delivery rate jumps now and then (a
    delayed ACK, a burst), and one odd sample must not steer the choice."""

    def __init__(self, size: int = 15) -> None:
        self._samples: collections.deque[float] = collections.deque(maxlen=size)

    def add(self, sample: float) -> None:
        self._samples.append(sample)

    @property
    def value(self) -> float | None:
        return statistics.median(self._samples) if self._samples else None


class _Ratio:
    """A quotient over the recent past (seconds per byte, bytes per byte) from decayed sums,
    so each sample counts by its size: a frame of a few hundred bytes, whose time is all fixed
    cost, does not pass for a slow link."""

    def __init__(self) -> None:
        self._over = 0.0
        self._under = 0.0

    def add(self, over: float, under: float, *, fresh: bool = False) -> None:
        """`fresh`: the old samples are stale; start again from this one."""
        keep = 0.0 if fresh else _KEEP
        self._over = self._over * keep + over
        self._under = self._under * keep + under

    @property
    def value(self) -> float | None:
        return self._over / self._under if self._under > 0 else None


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
        self._compress_cost = _Ratio()  # worker seconds per raw byte
        # Seconds per byte on the wire, two ways: the sender's time per frame (pacing, and
        # the socket's wait once its buffer is full) and the link's delivery rate.
        self._send_cost = _Ratio()
        self._link_cost = _Median()
        self._ratio = _Ratio()  # compressed / raw size of the chunks tried
        self._link_free = 0.0  # when the link will have sent what the kernel holds
        self._in_flight = 0  # wire bytes of the frame the sender is sending
        # When the link will have sent every frame taken so far (infinite until the link's
        # pace is known: it could be slow).
        self._link_free_at = 0.0
        self._since_attempt = 0  # chunks taken since the worker last started one
        self._probes: set[int] = set()  # chunks started only to measure the worker again
        self._patience: tuple[int, float] | None = None  # (head's seq, wait for it until)

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
        self._compress_cost.add(seconds, len(slot.data), fresh=probe)
        self._ratio.add(min(len(packed), len(slot.data)), len(slot.data))
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
        cost = self._wire_cost()
        send = cost if cost is not None else math.inf
        # Seconds until the link needs each chunk: what it still has to send, then every
        # frame before the chunk (raw unless compressed: the one worker would be busy with
        # this chunk), then what the sender would wait for the chunk (`_saving`).
        ahead = max(0.0, self._link_free_at - now)
        for slot in self._slots:
            if (slot.state is _State.NEW
                    and ahead + self._saving(slot) >= MARGIN * len(slot.data) * compress):
                return slot
            ahead += slot.wire_size * send
        return None

    # -- the sender ----------------------------------------------------------------------

    def observe_link(self, now: float, unsent: int, rate: float | None) -> None:
        """Before taking a frame: the kernel holds `unsent` bytes the link has not sent yet,
        and measured its delivery rate (bytes/s) with the link as the limit (None: not)."""
        if rate:
            self._link_cost.add(1.0 / rate)
        self._link_free = now + unsent * (self._wire_cost() or 0.0)

    @property
    def wire_seconds_per_byte(self) -> float | None:
        """The slower of the sender's pace (a rate cap shows there) and the link's delivery
        rate (a socket buffer with room hides it from the sender); None until measured."""
        costs = [c for c in (self._send_cost.value, self._link_cost.value) if c is not None]
        return max(costs) if costs else None

    def _wire_cost(self) -> float | None:
        return self.wire_seconds_per_byte

    def take(self, now: float) -> Outgoing | None:
        """The next frame, in order, or None: there is none; in ALWAYS the oldest chunk is
        still being compressed; in LINK_AWARE it is worth waiting for (until `wait_until`)."""
        if not self._slots:
            return None
        head = self._slots[0]
        if self.mode is Mode.LINK_AWARE and head.state is not _State.READY \
                and self._worth_waiting(head, now):
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
            self.counts.behind += 1  # not compressed in time: raw rather than wait
        self._slots.popleft()
        head.state = _State.TAKEN
        payload = head.packed if head.packed is not None else head.data
        self._in_flight = len(payload)
        cost = self._wire_cost()
        self._link_free_at = math.inf if cost is None else \
            max(now, self._link_free) + len(payload) * cost
        self._since_attempt += 1
        return Outgoing(payload, head.packed is not None, len(head.data))

    @property
    def wait_until(self) -> float | None:
        """Until when `take` waits for the oldest chunk's compression (then sends it raw)."""
        return self._patience[1] if self._patience is not None else None

    def _worth_waiting(self, head: _Slot, now: float) -> bool:
        """Whether the head, compressed, should still leave the link sooner than raw: decided
        at the first look, as a deadline for the worker, so a late worker costs at most
        that much (the raw frame then leaves at the deadline)."""
        if self._patience is None or self._patience[0] != head.seq:
            self._patience = (head.seq, max(now, self._link_free) + self._saving(head))
        until = self._patience[1]
        if now >= until:
            return False
        if head.state is _State.WORKING:
            return self._done_at(head) <= until
        # Not started: wait only when the idle worker is about to start it.
        return not self._working and self._candidate(now) is head

    def _saving(self, slot: _Slot) -> float:
        """Seconds of link time the chunk's compression saves, by the measured ratio."""
        cost, ratio = self._wire_cost(), self._ratio.value
        if cost is None or ratio is None:
            return 0.0
        return len(slot.data) * cost * (1.0 - ratio)

    def _done_at(self, slot: _Slot) -> float:
        return slot.started + len(slot.data) * (self._compress_cost.value or 0.0)

    def sent(self, seconds: float) -> None:
        """The frame last taken took `seconds` to send (waiting for the socket to take it,
        and for the rate cap)."""
        if self._in_flight:
            self._send_cost.add(seconds, self._in_flight)
        self._in_flight = 0
