"""A small fault-injecting TCP proxy for tests: forward, or go silent without closing.

`blackhole()` makes the link behave like a network partition that TCP has not noticed yet:
every accepted connection stays open, but no byte moves in either direction. The proxy stops
*reading*, so bytes sent meanwhile wait in kernel buffers (and, once those fill, the sender
blocks), exactly as unacknowledged segments would. `heal()` lets them flow again, intact and in
order, as TCP retransmission would after a partition ends. Neither end ever sees a FIN or RST
from the proxy because of a blackhole; a replica's I/O thread sees only silence.

`cut(Mode.RESET | Mode.TRUNCATE, after=N)` arms a fault for the next `times` connections to
reach N bytes in `direction` ("down", target → client, by default: responses): each passes its
first N bytes that way, then RESET closes both sides with a TCP RST (SO_LINGER 0) and TRUNCATE
closes both cleanly (a FIN: to an HTTP client, a body shorter than its Content-Length).
Connections that never move N bytes that way are not cut.

`rewrite(direction, data)`, if given, may alter the bytes of each direction ("up": client →
target, "down") before they are passed on: a man in the middle, for tampering tests.

Thread-based and bounded: one acceptor thread plus two pump threads per connection, at most
`max_connections` connections (extra ones are closed at once), and `close()` stops them all.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

_CHUNK = 65536
_POLL_SECONDS = 0.05


class Mode(enum.Enum):
    PASS = "pass"
    BLACKHOLE = "blackhole"
    RESET = "reset"  # a cut: RST on both sides after N bytes
    TRUNCATE = "truncate"  # a cut: FIN on both sides after N bytes


class _Cut:
    """Armed: the next `times` links to reach `after` bytes in `direction` are cut there."""

    def __init__(self, mode: Mode, after: int, direction: str, times: int) -> None:
        self.mode, self.after, self.direction, self.times = mode, after, direction, times


class _Link:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.threads = [
            threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True,
                             name="faultproxy-up"),
            threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True,
                             name="faultproxy-down"),
        ]
        self._finished = 0
        self._lock = threading.Lock()
        self.moved = {"up": 0, "down": 0}  # bytes passed each way

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _pump(self, source: socket.socket, dest: socket.socket, direction: str) -> None:
        try:
            while not self.proxy.closing:
                # While blackholed, do not read: bytes stay in the kernel, as on a dead link.
                if not self.proxy.flowing.wait(_POLL_SECONDS):
                    continue
                readable, _, _ = select.select([source], [], [], _POLL_SECONDS)
                if not readable or not self.proxy.flowing.is_set():
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    # The peer closed its side: pass the half-close on, as TCP would.
                    with contextlib.suppress(OSError):
                        dest.shutdown(socket.SHUT_WR)
                    return
                if self.proxy.rewrite is not None:
                    data = self.proxy.rewrite(direction, data)
                moved = self.moved[direction]
                cut = self.proxy.take_cut(direction, moved + len(data))
                if cut is not None:
                    keep = max(0, cut.after - moved)  # 0 if it had passed them before arming
                    dest.sendall(data[:keep])
                    self.proxy.count(direction, keep)
                    self._cut(cut.mode)
                    return
                dest.sendall(data)
                self.moved[direction] += len(data)
                self.proxy.count(direction, len(data))
        except (OSError, ValueError):
            return  # a socket closed under us: the link is over
        finally:
            self._finish()

    def _cut(self, mode: Mode) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                if mode is Mode.RESET:
                    # Linger on, timeout 0: close() drops unsent bytes and sends a RST.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)  # a clean FIN after the bytes sent
            sock.close()

    def _finish(self) -> None:
        with self._lock:
            self._finished += 1
            done = self._finished == len(self.threads)
        if done:
            self.shutdown()
            self.proxy.forget(self)

    def shutdown(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class FaultProxy:
    """Forward `listen_host:listen_port` to `target_host:target_port`, with injectable silence."""

    def __init__(
        self,
        listen_port: int,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        target_host: str = "127.0.0.1",
        max_connections: int = 16,
        connect_timeout: float = 2.0,
        rewrite: Callable[[str, bytes], bytes] | None = None,
    ) -> None:
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.rewrite = rewrite
        self.flowing = threading.Event()
        self.flowing.set()
        self.closing = False
        self.bytes_up = 0  # client → target
        self.bytes_down = 0  # target → client
        self.accepted = 0
        self.refused = 0
        self.cuts_done = 0  # links cut by RESET or TRUNCATE so far
        self._cut: _Cut | None = None
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return Mode.PASS if self.flowing.is_set() else Mode.BLACKHOLE

    def blackhole(self) -> None:
        """Stop moving bytes in both directions; keep every connection open."""
        self.flowing.clear()

    def heal(self) -> None:
        """Move bytes again, including those held while blackholed."""
        self.flowing.set()

    def set_mode(self, mode: Mode) -> None:
        if mode not in (Mode.PASS, Mode.BLACKHOLE):
            raise ValueError(f"{mode} is a cut: use cut()")
        self.heal() if mode is Mode.PASS else self.blackhole()

    def cut(self, mode: Mode, after: int, *, direction: str = "down", times: int = 1) -> None:
        """Cut the next `times` connections to move `after` bytes in `direction`, at that
        byte: RESET (RST both sides) or TRUNCATE (FIN both sides). `uncut()` disarms."""
        if mode not in (Mode.RESET, Mode.TRUNCATE) or direction not in ("up", "down"):
            raise ValueError(f"not a cut: {mode} {direction}")
        with self._lock:
            self._cut = _Cut(mode, after, direction, times)

    def uncut(self) -> None:
        """Disarm the cut: connections not yet cut pass whole (those cut stay closed)."""
        with self._lock:
            self._cut = None

    def take_cut(self, direction: str, moved: int) -> _Cut | None:
        """The armed cut, taken, if a link that will have moved `moved` bytes `direction`
        reaches it."""
        with self._lock:
            cut = self._cut
            if cut is None or cut.direction != direction or cut.times <= 0 or moved < cut.after:
                return None
            cut.times -= 1
            self.cuts_done += 1
            return cut

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FaultProxy:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(self.listen)
            server.listen(self.max_connections)
        except OSError:
            server.close()
            raise
        server.settimeout(_POLL_SECONDS)
        self._server = server
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name="faultproxy-accept")
        self._acceptor.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, and join every thread."""
        self.closing = True
        self.flowing.set()  # wake pumps parked on the event so they see `closing`
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        if self._server is not None:
            self._server.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.shutdown()
        for link in links:
            for thread in link.threads:
                thread.join(timeout)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------
    def count(self, direction: str, n: int) -> None:
        with self._lock:
            if direction == "up":
                self.bytes_up += n
            else:
                self.bytes_down += n

    def forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self.closing:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setblocking(True)
            with self._lock:
                full = len(self._links) >= self.max_connections
            if full:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
            except OSError:
                # Target down: the client sees the connection end, as with a refused connect.
                self.refused += 1
                client.close()
                continue
            upstream.settimeout(None)
            link = _Link(self, client, upstream)
            with self._lock:
                self._links.add(link)
                self.accepted += 1
            link.start()
