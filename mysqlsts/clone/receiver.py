"""The receiving side: find a donor, authenticate (clone.handshake), extract the verified
stream, prepare it.

Nothing touches the data dir until a donor has proved it holds the token, accepted ours and
started its stream (`open_session` returns); `Session.receive_into` then writes only into the
staging directory that `fill_data_dir` hands it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mysqlsts.adapters.tools import failure, run_tool
from mysqlsts.clone.handshake import DonorUnavailable, receiver_handshake
from mysqlsts.clone.pipes import Progress, widen_pipe
from mysqlsts.clone.plan import RETRY_CAP, RETRY_FIRST
from mysqlsts.clone.tools import BackupTool, extract_argv, prepare_argv
from mysqlsts.clone.wire import PeerClosed, Wire
from mysqlsts.core import clone_compression
from mysqlsts.core.backoff import backoff
from mysqlsts.core.backupinfo import (
    BINLOG_INFO_NAMES,
    SLAVE_INFO_NAMES,
    BackupCoordinates,
    coordinates_from_files,
)
from mysqlsts.core.clone_protocol import (
    CHUNK,
    IDLE_TIMEOUT,
    FrameType,
    Opener,
    ProtocolError,
    Trailer,
)
from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.errors import CloneError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    handshake: float = 30.0  # in total, until the donor has started its stream
    # Silence, not total time: the donor sends keepalives while its tool is quiet.
    idle: float = IDLE_TIMEOUT
    progress_interval: float = 5.0


class Session:
    """An authenticated connection whose donor has started streaming."""

    def __init__(self, wire: Wire, candidate: DonorAddress, opener: Opener,
                 compression: str = clone_compression.NONE) -> None:
        self.wire = wire
        self.candidate = candidate
        self.compression = compression  # what the donor chose
        self._opener = opener

    def close(self) -> None:
        self.wire.close()

    def receive_into(self, staging: Path, tool: BackupTool, parallel: int,
                     timeouts: Timeouts, on_bytes: Callable[[int], None] = lambda total: None,
                     ) -> int:
        """Extract the stream into `staging`; the byte count, once verified against the trailer.
        `on_bytes(total so far)` follows every data frame (the clone step's metrics)."""
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(extract_argv(tool, staging, parallel),
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=stderr)
            assert proc.stdin is not None
            sink = proc.stdin.fileno()
            widen_pipe(sink)
            try:
                received, trailer = self._pump(
                    lambda view: _write_all(sink, view), timeouts, on_bytes)
            except BaseException:
                _kill(proc)
                raise
            finally:
                if proc.stdin is not None:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
            code = proc.wait()
            # The donor's own verdict first: a backup that failed there also makes the extractor
            # fail here, and only the trailer says why.
            problems = trailer.problems(received)
            if problems:
                raise CloneError(f"clone from {self.candidate} failed: {'; '.join(problems)}")
            if code != 0:
                raise CloneError(failure(tool.stream, code, stderr))
        return received

    def receive_to(self, write: Callable[[memoryview], None], timeouts: Timeouts) -> int:
        """Hand the verified stream to `write` instead of an extractor (a backup to an object
        store); the byte count, once the donor's trailer confirms it."""
        received, trailer = self._pump(write, timeouts, lambda total: None)
        problems = trailer.problems(received)
        if problems:
            raise CloneError(f"backup from {self.candidate} failed: {'; '.join(problems)}")
        return received

    def _pump(self, write: Callable[[memoryview], None], timeouts: Timeouts,
              on_bytes: Callable[[int], None]) -> tuple[int, Trailer]:
        wire = self.wire
        wire.set_timeout(timeouts.idle)
        progress = Progress("clone receiving", str(self.candidate), timeouts.progress_interval)
        buffer = bytearray(CHUNK)
        unpacker = clone_compression.ChunkDecompressor(CHUNK)
        compressed = self.compression == clone_compression.ZSTD
        total = 0
        try:
            while True:
                kind, data = wire.read_sealed(self._opener, buffer)
                if kind is FrameType.DATA or (kind is FrameType.DATA_ZSTD and compressed):
                    if kind is FrameType.DATA_ZSTD:
                        data = _unpack(unpacker, data)
                    total += len(data)
                    write(memoryview(data))
                    on_bytes(total)
                elif kind is FrameType.KEEPALIVE:
                    pass
                elif kind is FrameType.TRAILER:
                    trailer = Trailer.decode(data)
                    elapsed = time.monotonic() - progress.started
                    log.info("clone stream complete bytes=%d mb_per_s=%.1f elapsed=%.0fs "
                             "compression=%s donor=%s", total, total / 1e6 / max(elapsed, 1e-9),
                             elapsed, self.compression, self.candidate)
                    return total, trailer
                else:
                    raise ProtocolError(f"unexpected {kind.name} frame in the stream")
                progress.maybe_log(total)
        except TimeoutError:
            raise CloneError(f"donor {self.candidate} sent nothing for {timeouts.idle:.0f}s "
                             f"after {total} bytes") from None
        except PeerClosed:
            raise CloneError(f"stream from {self.candidate} ended early after {total} bytes, "
                             "without the donor's trailer") from None
        except ProtocolError as exc:
            raise CloneError(f"stream from {self.candidate} is corrupt: {exc}") from None
        except BrokenPipeError:
            raise CloneError(f"the stream extractor exited early after {total} bytes") from None
        except OSError as exc:
            raise CloneError(f"stream from {self.candidate} broke off after {total} bytes: "
                             f"{exc}") from None


def _unpack(unpacker: clone_compression.ChunkDecompressor, data: bytes) -> bytes:
    try:
        return unpacker.unpack(data)
    except (ValueError, clone_compression.ZstdError) as exc:
        raise ProtocolError(f"a compressed chunk does not decompress: {exc}") from None


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def open_session(candidate: DonorAddress, token: str, timeouts: Timeouts,
                 compression: str = clone_compression.AUTO) -> Session:
    """Connect and authenticate both ways (clone.handshake); DonorUnavailable or CloneError
    (wrong token). `compression` (auto|zstd|none) decides what we offer; the donor chooses."""
    try:
        sock = socket.create_connection((candidate.host, candidate.port), timeout=timeouts.connect)
    except OSError as exc:
        raise DonorUnavailable(f"unreachable ({exc.strerror or exc})") from None
    wire = Wire(sock)
    try:
        wire.set_deadline(timeouts.handshake)
        started = receiver_handshake(wire, token, candidate, compression)
    except (DonorUnavailable, CloneError):
        wire.close()
        raise
    except TimeoutError:
        wire.close()
        raise DonorUnavailable("no answer to the handshake") from None
    except (ProtocolError, PeerClosed, OSError) as exc:
        wire.close()
        raise DonorUnavailable(f"not a clone donor or not ready ({exc})") from None
    return Session(wire, candidate, started.opener, started.compression)


def find_donor(
    previous: DonorAddress,
    discover: Callable[[], list[DonorAddress]],
    connect: Callable[[DonorAddress], Session],
    deadline_seconds: float,
    *,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Session:
    """Try the previous ordinal, then peers from DNS, in rounds with capped backoff."""
    give_up_at = now() + deadline_seconds
    rounds = 0
    while True:
        reasons: list[str] = []
        try:
            return connect(previous)
        except DonorUnavailable as exc:
            reasons.append(f"{previous}: {exc}")
        for candidate in discover():
            if candidate.ordinal == previous.ordinal:
                continue
            try:
                session = connect(candidate)
            except DonorUnavailable as exc:
                reasons.append(f"{candidate}: {exc}")
                continue
            log.info("clone falls back to a peer found by DNS donor=%s", candidate)
            return session
        remaining = give_up_at - now()
        if remaining <= 0:
            raise CloneError(f"no clone donor was ready within {deadline_seconds:.0f}s; "
                             f"last tried {'; '.join(reasons)}")
        rounds += 1
        delay = min(backoff(rounds, RETRY_FIRST, RETRY_CAP), remaining)
        log.info("no clone donor is ready; retrying in %.0fs tried=%s", delay, "; ".join(reasons))
        sleep(delay)


def prepare(staging: Path, tool: BackupTool, use_memory: str) -> None:
    run_tool(prepare_argv(tool, staging, use_memory), f"{tool.backup} --prepare",
             error=CloneError)


def read_coordinates(staging: Path) -> BackupCoordinates:
    files = {}
    for name in (*BINLOG_INFO_NAMES, *SLAVE_INFO_NAMES):
        path = staging / name
        if path.is_file():
            files[name] = path.read_text(errors="replace")
    return coordinates_from_files(files)
