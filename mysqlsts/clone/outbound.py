"""The donor's side of one stream: the backup tool's output read ahead on one thread,
compressed ahead on another, and sealed, paced and sent in order on the caller's thread.
Which chunks go compressed, and whether the sender waits for them, is core.clone_window's
decision; this module only measures the times it asks for and moves the bytes."""

from __future__ import annotations

import dataclasses
import os
import select
import threading
import time
from collections.abc import Callable

from mysqlsts.clone.pipes import Progress, widen_pipe
from mysqlsts.clone.wire import Wire
from mysqlsts.core import clone_compression
from mysqlsts.core.clone_compression import Compress, Mode
from mysqlsts.core.clone_protocol import CHUNK, HEADER, TAG_BYTES, FrameType, Sealer
from mysqlsts.core.clone_window import ChunkCounts, Job, Outgoing, SendWindow
from mysqlsts.core.pacing import TokenBucket, burst_for

# How often the reader looks up from a silent tool to see whether the stream was closed.
_POLL = 0.5


class _End:
    """The tool's output is over and every chunk has been sent."""


_END = _End()


class Outbound:
    """Sealed frames of one stream. `send` for single frames (START, TRAILER); `pump` for the
    backup tool's output. Not for use from more than one thread (the sealer counts frames)."""

    def __init__(self, wire: Wire, sealer: Sealer, mode: Mode, max_rate: float | None,
                 stopping: threading.Event,
                 compressor: Callable[[], Compress] = clone_compression.zstd_compressor) -> None:
        self.mode = mode
        self.wire_bytes = 0
        self._wire = wire
        self._sealer = sealer
        self._compressor = compressor
        self._bucket = TokenBucket(max_rate, burst_for(max_rate), time.monotonic()) \
            if max_rate else None
        self._stopping = stopping
        # Shared with the reader and the compressor; guarded by _cond.
        self._cond = threading.Condition()
        self._window = SendWindow(mode)
        self._eof = False
        self._closed = False
        self._failure: BaseException | None = None

    @property
    def codec(self) -> str:
        """What START names: zstd when negotiated, whatever the mode."""
        return clone_compression.NONE if self.mode is Mode.NEVER else clone_compression.ZSTD

    @property
    def counts(self) -> ChunkCounts:
        with self._cond:
            return dataclasses.replace(self._window.counts)

    def send(self, kind: FrameType, payload: bytes) -> None:
        size = len(payload) + TAG_BYTES + HEADER.size
        self._wire.send_sealed(self._sealer, kind, payload)
        self.wire_bytes += size
        if self._bucket is not None:
            # Paid after the frame, so the pause comes before the next chunk is chosen (by
            # then more of them are compressed). An Event wait, not a sleep: a donor shutting
            # down does not sit out the pause.
            self._stopping.wait(self._bucket.delay(time.monotonic(), size))

    def pump(self, fd: int, keepalive: float, progress: Progress) -> int:
        """Send what the tool writes to `fd` until its EOF, as DATA or DATA_ZSTD frames, and a
        KEEPALIVE after each `keepalive` seconds with nothing to send; the tool's byte count."""
        widen_pipe(fd)
        threads = [threading.Thread(target=self._read, args=(fd,), name="clone-read",
                                    daemon=True)]
        if self.mode is not Mode.NEVER:
            threads.append(threading.Thread(target=self._compress, name="clone-compress",
                                            daemon=True))
        for thread in threads:
            thread.start()
        total = 0
        try:
            while True:
                # The sender is ready for a chunk when the socket can take one; what the link
                # still has to send then is time the compressor may use.
                started = time.monotonic()
                self._wire.wait_writable()
                waited = time.monotonic() - started
                with self._cond:
                    self._window.observe_link(time.monotonic(), *self._wire.link_state())
                frame = self._next(keepalive)
                if self._stopping.is_set():
                    raise OSError("the donor is shutting down")
                if frame is _END:
                    return total
                if frame is None:  # the tool is silent (e.g. waiting for backup locks)
                    self.send(FrameType.KEEPALIVE, b"")
                else:
                    assert isinstance(frame, Outgoing)
                    started = time.monotonic()
                    self.send(FrameType.DATA_ZSTD if frame.compressed else FrameType.DATA,
                              frame.payload)
                    with self._cond:
                        self._window.sent(waited + time.monotonic() - started)
                        self._cond.notify_all()
                    total += frame.size
                progress.maybe_log(total)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            for thread in threads:
                thread.join()

    def _next(self, keepalive: float) -> Outgoing | _End | None:
        """The next frame to send; None when `keepalive` seconds pass without one."""
        deadline = time.monotonic() + keepalive
        with self._cond:
            while True:
                if self._failure is not None:
                    raise self._failure
                now = time.monotonic()
                frame = self._window.take(now)
                # A frame taken: room for the reader, a new lead for the worker. None while
                # chunks wait: the worker may be about to start the oldest.
                self._cond.notify_all()
                if frame is not None:
                    return frame
                if self._eof and not self._window:
                    return _END
                if now >= deadline or self._stopping.is_set():
                    return None
                # Woken by a new chunk or a finished compression, else at the first deadline.
                patience = self._window.wait_until
                wake = patience if patience is not None and now < patience else deadline
                self._cond.wait(min(wake, deadline) - now)

    def _read(self, fd: int) -> None:
        try:
            while True:
                with self._cond:
                    while not self._closed and not self._window.has_room():
                        self._cond.wait()
                    if self._closed:
                        return
                # Never blocked in read(): a closed stream's reader ends within _POLL.
                ready, _, _ = select.select([fd], [], [], _POLL)
                if not ready:
                    continue
                chunk = os.read(fd, CHUNK)
                with self._cond:
                    if chunk:
                        self._window.add(chunk)
                    else:
                        self._eof = True
                    self._cond.notify_all()
                if not chunk:
                    return
        except Exception as exc:  # the edge of this thread: the sender raises it
            self._fail(exc)

    def _compress(self) -> None:
        try:
            compress = self._compressor()
            while (job := self._claim()) is not None:
                started = time.monotonic()
                packed = compress(job.data)
                seconds = time.monotonic() - started
                with self._cond:
                    self._window.record(job.seq, packed, seconds)
                    self._cond.notify_all()
        except Exception as exc:  # the edge of this thread: the sender raises it
            self._fail(exc)

    def _claim(self) -> Job | None:
        """The worker's next chunk, waiting until there is one; None once closed."""
        with self._cond:
            while not self._closed:
                job = self._window.claim(time.monotonic())
                if job is not None:
                    return job
                self._cond.wait()
        return None

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._failure = exc
            self._cond.notify_all()

