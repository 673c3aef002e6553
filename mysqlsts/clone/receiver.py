"""The receiving side: find a donor, authenticate, extract the verified stream, prepare it.

Nothing touches the data dir until a donor has proved it holds the token, accepted ours and
started its stream (`open_session` returns); `Session.receive_into` then writes only into the
staging directory that `fill_data_dir` hands it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mysqlsts.clone.pipes import Progress, widen_pipe
from mysqlsts.clone.plan import Candidate, backoff
from mysqlsts.clone.tools import BackupTool, extract_argv, prepare_argv
from mysqlsts.clone.wire import PeerClosed, Wire
from mysqlsts.core.backupinfo import (
    BINLOG_INFO_NAMES,
    SLAVE_INFO_NAMES,
    BackupCoordinates,
    coordinates_from_files,
)
from mysqlsts.core.clone_protocol import (
    IDLE_TIMEOUT,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    ErrorCode,
    FrameType,
    ProtocolError,
    StreamCheck,
    Trailer,
    donor_proof,
    hex_field,
    proof_matches,
    receiver_proof,
)
from mysqlsts.errors import CloneError

log = logging.getLogger(__name__)


class DonorUnavailable(Exception):
    """This donor cannot serve now (unreachable, not ready, busy); another may, or later."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    handshake: float = 30.0
    # Silence, not total time: the donor sends keepalives while its tool is quiet.
    idle: float = IDLE_TIMEOUT
    progress_interval: float = 5.0


class Session:
    """An authenticated connection whose donor has started streaming."""

    def __init__(self, wire: Wire, candidate: Candidate, token: str,
                 receiver_nonce: bytes, donor_nonce: bytes) -> None:
        self.wire = wire
        self.candidate = candidate
        self._token = token
        self._nonces = (receiver_nonce, donor_nonce)

    def close(self) -> None:
        self.wire.close()

    def receive_into(self, staging: Path, tool: BackupTool, parallel: int,
                     timeouts: Timeouts) -> int:
        """Extract the stream into `staging`; the byte count, once verified against the trailer."""
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(extract_argv(tool, staging, parallel),
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=stderr)
            try:
                received, crc, trailer = self._pump(proc, timeouts)
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
            problems = StreamCheck(received, crc).problems(trailer)
            if problems:
                raise CloneError(f"clone from {self.candidate} failed: {'; '.join(problems)}")
            if code != 0:
                raise CloneError(f"{tool.stream} failed with exit code {code}: "
                                 f"{_last_line(stderr)}")
        return received

    def _pump(self, proc: subprocess.Popen[bytes], timeouts: Timeouts) -> tuple[int, int, Trailer]:
        assert proc.stdin is not None
        sink = proc.stdin.fileno()
        widen_pipe(sink)
        wire = self.wire
        wire.set_timeout(timeouts.idle)
        progress = Progress("clone receiving", str(self.candidate), timeouts.progress_interval)
        buffer = bytearray(1024 * 1024)
        total, crc = 0, 0
        try:
            while True:
                kind, length = wire.read_header()
                if kind is FrameType.DATA:
                    view = wire.read_payload_into(buffer, length)
                    crc = zlib.crc32(view, crc)
                    total += length
                    _write_all(sink, view)
                elif kind is FrameType.KEEPALIVE:
                    pass
                elif kind is FrameType.TRAILER:
                    trailer = Trailer.decode(wire.read_payload(length), self._token,
                                             *self._nonces)
                    elapsed = time.monotonic() - progress.started
                    log.info("clone stream complete bytes=%d mb_per_s=%.1f elapsed=%.0fs "
                             "donor=%s", total, total / 1e6 / max(elapsed, 1e-9), elapsed,
                             self.candidate)
                    return total, crc, trailer
                elif kind is FrameType.ERROR:
                    raise CloneError(f"donor {self.candidate} aborted the stream: "
                                     f"{wire.read_payload(length).decode(errors='replace')}")
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


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _last_line(stream: IO[bytes]) -> str:
    stream.seek(0)
    lines = [line for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def open_session(candidate: Candidate, token: str, timeouts: Timeouts) -> Session:
    """Connect and authenticate both ways; DonorUnavailable or CloneError (wrong token)."""
    try:
        sock = socket.create_connection((candidate.host, candidate.port), timeout=timeouts.connect)
    except OSError as exc:
        raise DonorUnavailable(f"unreachable ({exc.strerror or exc})") from None
    wire = Wire(sock)
    try:
        wire.set_timeout(timeouts.handshake)
        receiver_nonce = secrets.token_bytes(NONCE_BYTES)
        wire.send_json(FrameType.HELLO, {"protocol": PROTOCOL_VERSION,
                                         "nonce": receiver_nonce.hex()})
        kind, body = wire.read_json(FrameType.CHALLENGE, FrameType.ERROR)
        if kind is FrameType.ERROR:
            raise DonorUnavailable(f"answered {body.get('code')}: {body.get('message')}")
        donor_nonce = hex_field(body, "nonce", NONCE_BYTES)
        if not proof_matches(donor_proof(token, receiver_nonce, donor_nonce),
                             hex_field(body, "proof", 32)):
            raise CloneError(f"donor {candidate} does not hold our clone token "
                             "(the clone-token Secret differs between pods?)")
        wire.send_json(FrameType.AUTH, {
            "proof": receiver_proof(token, receiver_nonce, donor_nonce).hex()})
        kind, body = wire.read_json(FrameType.START, FrameType.ERROR)
        if kind is FrameType.ERROR:
            if body.get("code") == ErrorCode.REFUSED:
                raise CloneError(f"donor {candidate} refused our clone token "
                                 "(the clone-token Secret differs between pods?)")
            raise DonorUnavailable(f"answered {body.get('code')}: {body.get('message')}")
    except (DonorUnavailable, CloneError):
        wire.close()
        raise
    except TimeoutError:
        wire.close()
        raise DonorUnavailable("no answer to the handshake") from None
    except (ProtocolError, PeerClosed, OSError) as exc:
        wire.close()
        raise DonorUnavailable(f"not a clone donor or not ready ({exc})") from None
    return Session(wire, candidate, token, receiver_nonce, donor_nonce)


def find_donor(
    previous: Candidate,
    discover: Callable[[], list[Candidate]],
    connect: Callable[[Candidate], Session],
    deadline_seconds: float,
    *,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Session:
    """Try the previous ordinal, then peers from DNS, in rounds with capped backoff."""
    give_up_at = now() + deadline_seconds
    waits = backoff()
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
        delay = min(next(waits), remaining)
        log.info("no clone donor is ready; retrying in %.0fs tried=%s", delay, "; ".join(reasons))
        sleep(delay)


def prepare(staging: Path, tool: BackupTool, use_memory: str) -> None:
    with tempfile.TemporaryFile() as output:
        started = time.monotonic()
        code = subprocess.run(prepare_argv(tool, staging, use_memory), stdin=subprocess.DEVNULL,
                              stdout=output, stderr=subprocess.STDOUT, check=False).returncode
        if code != 0:
            raise CloneError(f"{tool.backup} --prepare failed with exit code {code}: "
                             f"{_last_line(output)}")
    log.info("clone prepared the backup elapsed=%.0fs", time.monotonic() - started)


def read_coordinates(staging: Path) -> BackupCoordinates:
    files = {}
    for name in (*BINLOG_INFO_NAMES, *SLAVE_INFO_NAMES):
        path = staging / name
        if path.is_file():
            files[name] = path.read_text(errors="replace")
    return coordinates_from_files(files)
