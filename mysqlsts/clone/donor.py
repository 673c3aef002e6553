"""The backup donor the sidecar serves on port 3307: one authenticated stream at a time. The
handshake is in clone.handshake, the backup tool's process in clone.backup_process.

Embed it from a thread:

    source = BackupSource(flavor, host, port, data_dir, user, password_file)
    donor = DonorServer("0.0.0.0", 3307, token=read_token,
                        backup_command_factory=source.command_factory(),
                        on_stream_done=record_stream)
    threading.Thread(target=donor.serve_forever, daemon=True).start()
    ...
    donor.shutdown()  # on SIGTERM: stops accepting, ends a running stream, joins

`on_stream_done(result, bytes, seconds, chunks)` is called once per authenticated-or-refused
connection, from that connection's thread, with result "ok" (stream and trailer sent, backup tool
exit 0), "failed" (the backup tool failed, or the stream broke off) or "refused" (bad token,
protocol error, too slow a handshake, or busy), and how many chunks went compressed or raw
(`ChunkCounts`, all 0 for a refusal). A TCP connection that closes before saying anything (a
port probe) is not counted.

What a client that has not authenticated may cost: at most `max_handshakes` such connections
at once (a new one closes the oldest, so a real receiver, whose handshake takes milliseconds,
always gets in), each for at most `handshake_timeout` seconds from accept in total however it
dribbles its bytes, with frames of at most HANDSHAKE_FRAME_MAX bytes. Only an authenticated
receiver ever takes the one streaming slot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mysqlsts.adapters.fs import read_secret
from mysqlsts.clone.backup_process import BackupProcess
from mysqlsts.clone.handshake import Refused, donor_handshake, send_error
from mysqlsts.clone.outbound import Outbound
from mysqlsts.clone.pipes import Progress
from mysqlsts.clone.tools import backup_argv, credentials_cnf, tool_for
from mysqlsts.clone.wire import PeerClosed, Wire
from mysqlsts.core import clone_compression
from mysqlsts.core.clone_compression import Compress
from mysqlsts.core.clone_protocol import (
    IDLE_TIMEOUT,
    ErrorCode,
    FrameType,
    Sealer,
    Trailer,
    json_payload,
)
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.errors import MysqlstsError

log = logging.getLogger(__name__)

StreamDone = Callable[[str, int, float, ChunkCounts], None]
# Called with the donor's private (0700) work dir, emptied before each stream; returns the backup
# command's argv and may write files there (the credentials file). Emptied again after it.
CommandFactory = Callable[[Path], Sequence[str]]


@dataclass(frozen=True)
class BackupSource:
    """The local server the donor backs up, and the account the backup tool logs in with."""

    flavor: str
    host: str
    port: int
    data_dir: Path
    user: str
    password_file: Path
    parallel: int = 2

    def command_factory(self) -> CommandFactory:
        tool = tool_for(self.flavor)

        def build(workdir: Path) -> Sequence[str]:
            # Read per stream, so a rotated Secret takes effect without a restart.
            password = read_secret(self.password_file, "backup password")
            credentials = workdir / "backup.cnf"
            fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(credentials_cnf(self.user, password))
            return backup_argv(tool, credentials, workdir / "target", self.data_dir,
                               self.host, self.port, self.parallel)

        return build


class DonorServer:
    def __init__(
        self,
        listen_host: str,
        port: int,
        token: str | Callable[[], str],
        backup_command_factory: CommandFactory,
        on_stream_done: StreamDone | None = None,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        handshake_timeout: float = 10.0,
        keepalive_interval: float = 5.0,
        progress_interval: float = 5.0,
        max_handshakes: int = 8,
        max_rate: float | None = None,
        compression: str = clone_compression.AUTO,
        compressor: Callable[[], Compress] = clone_compression.zstd_compressor,
    ) -> None:
        """`max_rate`: bytes per second on the wire for a stream (None: as fast as the link
        and the receiver take them). `compression`: auto|zstd|none, see clone_compression;
        `compressor` makes each stream's codec (tests slow it down)."""
        self._token = token if callable(token) else (lambda: token)
        self._factory = backup_command_factory
        self._done = on_stream_done or (lambda result, count, seconds, chunks: None)
        self._idle_timeout = idle_timeout
        self._handshake_timeout = handshake_timeout
        self._keepalive = keepalive_interval
        self._progress = progress_interval
        self._max_handshakes = max_handshakes
        self._max_rate = max_rate
        self._compression = compression
        self._compressor = compressor
        # Connection threads at most: the handshakes, the stream, refusals and closing evictees.
        self._max_threads = 2 * max_handshakes + 2
        # Unauthenticated connections, oldest first.
        self._handshakes: dict[socket.socket, None] = {}
        self._stream_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._conns: set[socket.socket] = set()
        self._backups: set[BackupProcess] = set()
        self._guard = threading.Lock()
        self._listener = socket.create_server((listen_host, port), reuse_port=False, backlog=16)
        self._listener.settimeout(0.5)
        # One fixed place per donor (its port is ours while we listen), emptied now: what a
        # killed donor left there (a credentials file) does not outlive its restart.
        self.work_dir = Path(tempfile.gettempdir()) / f"mysqlsts-donor-{self.address[1]}"
        try:
            _empty_private_dir(self.work_dir)
        except Exception:
            self._listener.close()
            raise

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def serve_forever(self) -> None:
        log.info("clone donor listening address=%s:%d", *self.address)
        while not self._stopping.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    break
                raise
            self._admit(conn, f"{peer[0]}:{peer[1]}")

    def _admit(self, conn: socket.socket, peer: str) -> None:
        accepted_at = time.monotonic()
        evicted: socket.socket | None = None
        with self._guard:
            if len(self._threads) >= self._max_threads:
                log.warning("clone donor at its connection limit; dropped peer=%s", peer)
                conn.close()
                return
            if len(self._handshakes) >= self._max_handshakes:
                evicted = next(iter(self._handshakes))
                del self._handshakes[evicted]
            thread = threading.Thread(target=self._serve, args=(conn, peer, accepted_at),
                                      name=f"clone-donor-{peer}", daemon=True)
            self._handshakes[conn] = None
            self._threads.add(thread)
            self._conns.add(conn)
        if evicted is not None:
            # Debug only: its own thread logs the refusal, one line per connection.
            log.debug("clone donor has %d unauthenticated connections; closed the oldest "
                      "peer=%s", self._max_handshakes, _peer_of(evicted))
            with contextlib.suppress(OSError):
                evicted.shutdown(socket.SHUT_RDWR)
        thread.start()

    def shutdown(self, timeout: float = 15.0) -> None:
        """Stop accepting, end running streams (their receivers see an error), join threads."""
        self._stopping.set()
        self._listener.close()
        with self._guard:
            backups, conns, threads = list(self._backups), list(self._conns), list(self._threads)
        for backup in backups:
            backup.stop()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            # Admitted but not yet started (the accept loop starts it outside the lock): its
            # connection is shut down above, so it ends at once if it starts at all.
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    # -- one connection ------------------------------------------------------------------

    def _serve(self, conn: socket.socket, peer: str, started: float) -> None:
        wire = Wire(conn)
        try:
            outcome = self._handshake_and_stream(wire, peer, started)
            if outcome is not None:
                self._done(*outcome[:2], time.monotonic() - started, outcome[2])
        except Exception:  # the edge of a connection thread: never take the donor down
            log.exception("clone donor connection failed unexpectedly peer=%s", peer)
            self._done("failed", 0, time.monotonic() - started, ChunkCounts())
        finally:
            wire.close()
            with self._guard:
                self._conns.discard(conn)
                self._handshakes.pop(conn, None)
                self._threads.discard(threading.current_thread())

    def _handshake_and_stream(self, wire: Wire, peer: str,
                              started: float) -> tuple[str, int, ChunkCounts] | None:
        wire.set_deadline(self._handshake_timeout - (time.monotonic() - started))
        try:
            proven = donor_handshake(wire, self._token, peer)
        except Refused:
            return "refused", 0, ChunkCounts()
        if proven is None:
            return None
        with self._guard:
            self._handshakes.pop(wire.sock, None)
        if not self._stream_lock.acquire(blocking=False):
            log.info("clone donor is busy with another stream; refused peer=%s", peer)
            send_error(wire, ErrorCode.BUSY, "another clone stream is running")
            return "refused", 0, ChunkCounts()
        try:
            sealer = Sealer(proven.key)
            codec = clone_compression.choose(self._compression, proven.offer)
            mode = clone_compression.mode(self._compression, codec)
            out = Outbound(wire, sealer, mode, self._max_rate, self._stopping, self._compressor)
            result, total = self._stream(wire, peer, out)
            return result, total, out.counts
        finally:
            self._stream_lock.release()

    def _stream(self, wire: Wire, peer: str, out: Outbound) -> tuple[str, int]:
        workdir = self.work_dir
        _empty_private_dir(workdir)
        total = 0
        backup: BackupProcess | None = None
        try:
            try:
                backup = BackupProcess(self._factory(workdir))
            except Exception as exc:
                log.error("clone donor could not start its backup peer=%s reason=%s", peer, exc)
                send_error(wire, ErrorCode.FAILED,
                           f"the donor could not start its backup: {exc}")
                return "failed", 0
            with self._guard:
                self._backups.add(backup)
            log.info("clone donor streaming a backup peer=%s tool=%s compression=%s mode=%s "
                     "max_rate=%s", peer, backup.argv[0], out.codec, out.mode.value,
                     self._max_rate or "none")
            wire.set_timeout(self._idle_timeout)
            out.send(FrameType.START, json_payload({"tool": Path(backup.argv[0]).name,
                                                    "compression": out.codec}))
            total = out.pump(backup.stdout_fd, self._keepalive,
                             Progress("clone donor streaming", peer, self._progress))
            exit_code = backup.wait()
            if self._stopping.is_set():
                raise OSError("the donor is shutting down")
            tail = backup.failure_tail() if exit_code != 0 else ""
            out.send(FrameType.TRAILER, Trailer(exit_code, total, tail).payload())
            if exit_code != 0:
                log.error("clone donor's backup failed peer=%s exit_code=%d bytes=%d reason=%s",
                          peer, exit_code, total, tail)
                return "failed", total
            chunks = out.counts
            log.info("clone donor finished a stream peer=%s bytes=%d wire_bytes=%d "
                     "chunks_zstd=%d chunks_raw=%d raw_behind_compressor=%d "
                     "raw_incompressible=%d compress_attempts=%d", peer, total, out.wire_bytes,
                     chunks.compressed, chunks.raw, chunks.behind, chunks.incompressible,
                     chunks.attempts)
            return "ok", total
        except (OSError, PeerClosed) as exc:
            log.warning("clone donor's stream broke off peer=%s bytes=%d reason=%s",
                        peer, total, exc)
            return "failed", total
        finally:
            if backup is not None:
                backup.close()
                with self._guard:
                    self._backups.discard(backup)
            _empty_private_dir(workdir)


def _peer_of(conn: socket.socket) -> str:
    try:
        host, port = conn.getpeername()[:2]
    except OSError:
        return "gone"
    return f"{host}:{port}"


def _empty_private_dir(path: Path) -> None:
    """Make `path` an empty directory that only we can enter, or refuse: a link or someone
    else's directory there is never followed or emptied."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
            raise MysqlstsError(f"the donor's work dir {path} exists and is not a directory "
                                "of ours; refusing to use it")
        shutil.rmtree(path)
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
