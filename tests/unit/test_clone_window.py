"""Which chunks of the clone stream go compressed, from synthetic timings: the window driven by a
small discrete-event simulation of the backup tool, the compressor and the link (no threads,
no sockets; test_clone_wire runs the real donor)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mysqlsts.core.clone_compression import MAX_SKIP, Mode
from mysqlsts.core.clone_window import CAPACITY, PROBE_EVERY, ChunkCounts, Job, SendWindow

SIZE = 1000  # bytes per chunk; only the lengths matter here


@dataclass
class Run:
    counts: ChunkCounts
    seconds: float  # until the last frame left
    order: list[int]


def simulate(mode: Mode, *, link: float, compress: float | Callable[[int], float],
             ratio: float = 0.4, source: float = 0.0, chunks: int = 400) -> Run:
    """`link`: seconds the socket takes for a raw chunk (a compressed one: `ratio` of that);
    `compress`: the worker's seconds per chunk (or per attempt number); `source`: seconds
    between the tool's chunks (0: as fast as the window has room)."""
    window = SendWindow(mode)
    cost = compress if callable(compress) else (lambda attempt: compress)
    now, produced, next_chunk_at = 0.0, 0, 0.0
    worker: tuple[float, Job] | None = None
    sender: tuple[float, float] | None = None  # (done at, seconds it took)
    order: list[int] = []
    while len(order) < chunks:
        # Everything due now, until nothing more can happen at this instant.
        progressed = True
        while progressed:
            progressed = False
            if worker is not None and worker[0] <= now:
                job = worker[1]
                window.record(job.seq, job.data[:int(len(job.data) * ratio)],
                              cost(window.counts.attempts))
                worker, progressed = None, True
            if sender is not None and sender[0] <= now:
                window.sent(sender[1])
                sender, progressed = None, True
            if produced < chunks and next_chunk_at <= now and window.has_room():
                window.add(b"%08d" % produced * (SIZE // 8))
                produced, next_chunk_at, progressed = produced + 1, now + source, True
            if worker is None and (job := window.claim(now)) is not None:
                worker, progressed = (now + cost(window.counts.attempts), job), True
            if sender is None and (out := window.take(now)) is not None:
                order.append(int(out.payload[:8]))
                seconds = link * len(out.payload) / SIZE
                sender, progressed = (now + seconds, seconds), True
        due = [t for t in (worker and worker[0], sender and sender[0]) if t]
        if sender is None and window.wait_until is not None and window.wait_until > now:
            due.append(window.wait_until)  # the sender gives up waiting for the worker
        if produced < chunks and window.has_room():
            due.append(next_chunk_at)
        assert due, "the simulation stalled"
        now = max(now, min(due))
    assert sender is not None
    return Run(window.counts, sender[0], order)


def test_a_compressor_faster_than_the_link_compresses_nearly_every_chunk():
    run = simulate(Mode.LINK_AWARE, link=1.0, compress=0.3)
    assert run.counts.compressed >= 0.97 * 400
    assert run.seconds < 0.45 * 400  # nearly all at the compressed size: 0.4 s each


def test_a_compressor_slower_than_the_link_leaves_most_chunks_raw_and_is_never_waited_for():
    run = simulate(Mode.LINK_AWARE, link=1.0, compress=4.0)
    assert run.counts.raw > 0.7 * 400 and run.counts.behind > 0.7 * 400
    # Faster than the raw path (400 s) by what the worker compressed on the side, and far
    # faster than waiting for it (zstd forced: 4 s a chunk).
    assert run.counts.compressed > 0.1 * 400
    assert run.seconds < 400
    forced = simulate(Mode.ALWAYS, link=1.0, compress=4.0)
    assert forced.counts.compressed == 400 and forced.seconds > 4 * 400


def test_no_compression_is_wasted_on_chunks_the_sender_overtakes():
    run = simulate(Mode.LINK_AWARE, link=1.0, compress=4.0)
    # Each attempt but a few at the start ends in a compressed frame: the worker only starts
    # chunks the sender will reach after it is done.
    assert run.counts.attempts - run.counts.compressed <= 3


def test_the_mix_approaches_link_plus_compressor_throughput():
    # R = 1 chunk/s raw, C = 0.5 chunk/s, r = 0.4: R + C (1 - r) = 1.3 chunks/s at best.
    run = simulate(Mode.LINK_AWARE, link=1.0, compress=2.0)
    assert 400 / 1.3 <= run.seconds < 0.85 * 400
    assert 0.25 * 400 < run.counts.compressed < 0.45 * 400


def test_when_the_tool_is_the_bottleneck_the_compressor_idles():
    # The link takes a chunk in a third of the time the tool needs to make one: compressing
    # would gain nothing, so apart from the periodic probe nothing is tried.
    run = simulate(Mode.LINK_AWARE, link=0.3, compress=0.5, source=1.0)
    assert run.counts.attempts <= 400 / PROBE_EVERY + 2
    assert run.seconds == pytest.approx(400 * 1.0, rel=0.01)


def test_incompressible_data_goes_raw_with_few_attempts():
    run = simulate(Mode.LINK_AWARE, link=1.0, compress=0.3, ratio=0.99)
    assert run.counts.compressed == 0
    assert run.counts.attempts <= 400 / MAX_SKIP + 8
    assert run.seconds <= 400 * 1.0 + 1  # the raw path's time


def test_one_slow_compression_does_not_switch_compression_off():
    # The first attempt crawls (a stall), then the compressor is fast again: its estimate
    # says "never in time", and the probe after PROBE_EVERY chunks finds out it is wrong.
    run = simulate(Mode.LINK_AWARE, link=1.0, compress=lambda n: 60.0 if n == 1 else 0.3)
    assert run.counts.behind < 60 + PROBE_EVERY + 5  # raw while it crawled, then one probe
    assert run.counts.compressed > 0.75 * 400


@pytest.mark.parametrize(("mode", "compress"), [
    (Mode.LINK_AWARE, 0.3), (Mode.LINK_AWARE, 4.0), (Mode.ALWAYS, 4.0), (Mode.NEVER, 1.0)])
def test_chunks_leave_in_order(mode, compress):
    run = simulate(mode, link=1.0, compress=compress, chunks=200)
    assert run.order == list(range(200))


def test_forced_zstd_waits_for_every_chunk():
    run = simulate(Mode.ALWAYS, link=1.0, compress=0.3)
    assert run.counts.compressed == 400 and run.counts.behind == 0


def test_none_never_asks_the_worker():
    window = SendWindow(Mode.NEVER)
    window.add(b"x" * SIZE)
    assert window.claim(0.0) is None
    out = window.take(0.0)
    assert out is not None and not out.compressed and window.counts.uncompressed == 1


def test_the_sender_takes_raw_what_the_worker_has_not_finished():
    window = SendWindow(Mode.LINK_AWARE)
    for _ in range(3):
        window.add(b"x" * SIZE)
    job = window.claim(0.0)
    assert job is not None and job.seq == 2  # the newest: the furthest from the sender
    first = window.take(0.0)
    assert first is not None and not first.compressed
    window.take(0.0)
    third = window.take(0.0)  # the worker's own chunk, still being compressed
    assert third is not None and not third.compressed and third.payload == job.data
    window.record(job.seq, b"z" * 100, 0.01)  # too late: counted, not sent
    assert window.counts == ChunkCounts(behind=3, attempts=1)
    assert window.take(0.0) is None


def test_forced_zstd_takes_the_oldest_and_holds_the_sender():
    window = SendWindow(Mode.ALWAYS)
    for _ in range(2):
        window.add(b"x" * SIZE)
    job = window.claim(0.0)
    assert job is not None and job.seq == 0
    assert window.take(0.0) is None
    window.record(job.seq, b"z" * 100, 0.01)
    out = window.take(0.0)
    assert out is not None and out.compressed and out.payload == b"z" * 100 and out.size == SIZE


def test_the_window_holds_at_most_its_capacity():
    window = SendWindow(Mode.LINK_AWARE)
    for _ in range(CAPACITY):
        assert window.has_room()
        window.add(b"x")
    assert not window.has_room() and len(window) == CAPACITY


def _measured_window(packed: int = 400) -> SendWindow:
    """The worker needs 1e-5 s a byte (0.01 s a chunk), the link 1e-5 s a byte on the wire,
    chunks shrink to `packed` of SIZE bytes; with a probe every chunk, so the next claim takes
    the newest chunk whatever its lead."""
    window = SendWindow(Mode.LINK_AWARE, probe_every=1)
    window.add(b"x" * SIZE)
    job = window.claim(0.0)
    assert job is not None
    window.record(job.seq, b"z" * packed, 0.010)
    out = window.take(0.0)
    assert out is not None
    window.sent(0.00001 * len(out.payload))
    return window


@pytest.mark.parametrize(("unsent", "waits"), [(2000, True), (500, True), (0, False)])
def test_the_sender_waits_for_a_compression_that_still_beats_the_raw_frame(unsent, waits):
    window = _measured_window()
    window.add(b"y" * SIZE)
    job = window.claim(1.0)  # the head, due at 1.01
    assert job is not None and job.seq == 1
    window.observe_link(1.0, unsent, None)  # the link sends what the kernel holds by 1 + unsent/1e5
    # Compressed it leaves at max(1.01, that) + 0.004 s, raw at that + 0.01 s.
    if not waits:
        out = window.take(1.0)
        assert out is not None and not out.compressed and window.counts.behind == 1
        return
    assert window.take(1.0) is None
    assert window.wait_until == pytest.approx(1.0 + unsent * 1e-5 + 0.006)
    assert window.take(1.009) is None
    window.record(job.seq, b"z" * 400, 0.010)
    out = window.take(1.011)
    assert out is not None and out.compressed and window.counts.behind == 0


def test_a_late_compression_is_waited_for_until_the_raw_frame_would_have_won():
    window = _measured_window()
    window.add(b"y" * SIZE)
    assert window.claim(1.0) is not None
    window.observe_link(1.0, 2000, None)
    assert window.take(1.0) is None
    out = window.take(1.026)  # the worker is late: no more waiting
    assert out is not None and not out.compressed and window.counts.behind == 1


def test_the_sender_waits_for_the_idle_worker_to_start_the_oldest_chunk():
    window = _measured_window()
    window.add(b"y" * SIZE)
    window.observe_link(1.0, 2000, None)  # 0.02 s: the worker's 0.015 s (with margin) fit
    assert window.take(1.0) is None
    job = window.claim(1.0)
    assert job is not None and job.seq == 1


def test_a_compression_that_saves_little_is_not_waited_for():
    window = _measured_window(packed=940)  # 6 % less: 0.0006 s of link time for 0.01 s
    window.add(b"y" * SIZE)
    assert window.claim(1.0) is not None
    out = window.take(1.0)
    assert out is not None and not out.compressed and window.counts.behind == 1


def test_the_links_delivery_rate_shows_what_a_socket_buffer_hides_from_the_sender():
    window = SendWindow(Mode.NEVER)
    window.add(b"x" * SIZE)
    assert window.take(0.0) is not None
    window.sent(0.0001)  # into a socket buffer with room: 1e-7 s a byte
    window.observe_link(0.001, 900, None)  # rate measured while we were the limit: not used
    assert window.wire_seconds_per_byte == pytest.approx(1e-7)
    window.observe_link(0.002, 900, 1e5)  # the link delivers 100 kB/s
    assert window.wire_seconds_per_byte == pytest.approx(1e-5)


def test_a_rate_cap_shows_in_the_senders_pace():
    window = SendWindow(Mode.NEVER)
    window.add(b"x" * SIZE)
    assert window.take(0.0) is not None
    window.sent(0.1)  # the frame, then the cap's pause: 1e-4 s a byte
    window.observe_link(0.1, 0, 1e7)  # the link could do 10 MB/s: the cap limits
    assert window.wire_seconds_per_byte == pytest.approx(1e-4)
