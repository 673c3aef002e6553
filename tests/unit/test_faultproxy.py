"""The fault proxy itself, with plain sockets and a tiny HTTP server: forwards, goes silent
without closing, heals, and cuts a connection with a reset or a clean early end."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faultproxy import FaultProxy, Mode
from tests.ports import PortPool

free_port = PortPool("proxy-unit")


class EchoServer:
    """Echoes every byte back and records what it received and which connections it saw end."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.05)
        self.received = bytearray()
        self.connections = 0
        self.closed_by_peer = 0
        self.stop = False
        self.threads: list[threading.Thread] = []
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self.accepted.append(conn)
            thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        with conn:
            while not self.stop:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    self.closed_by_peer += 1
                    return
                self.received += data
                with contextlib.suppress(OSError):
                    conn.sendall(data)

    def close(self) -> None:
        self.stop = True
        self.sock.close()
        self.thread.join(2)
        for thread in self.threads:
            thread.join(2)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(free_port(), echo.port) as running:
        yield running


def connect(proxy: FaultProxy) -> socket.socket:
    client = socket.create_connection(proxy.listen, timeout=2)
    return client


def recv_exactly(sock: socket.socket, n: int, timeout: float = 2.0) -> bytes:
    sock.settimeout(timeout)
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def wait_for(predicate: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.02)
    return False


def test_pass_forwards_both_ways(proxy: FaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as client:
        client.sendall(b"hello")
        assert recv_exactly(client, 5) == b"hello"
    assert proxy.mode is Mode.PASS
    assert wait_for(lambda: proxy.bytes_up == 5)  # counted after it is forwarded
    assert wait_for(lambda: proxy.bytes_down == 5)
    assert bytes(echo.received) == b"hello"


def test_large_transfer_is_intact(proxy: FaultProxy) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, several chunks and buffer fills
    with connect(proxy) as client:
        sender = threading.Thread(target=client.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(client, len(payload), timeout=10) == payload
        sender.join(5)


def test_blackhole_is_silent_both_ways_without_closing(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    with connect(proxy) as client:
        client.sendall(b"before")
        assert recv_exactly(client, 6) == b"before"

        proxy.blackhole()
        assert proxy.mode is Mode.BLACKHOLE
        client.sendall(b"during")
        # Nothing reaches the target...
        time.sleep(0.5)
        assert bytes(echo.received) == b"before"
        # ...nothing comes back, and the connection is not closed (a timeout, not EOF).
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(100)
        assert proxy.open_connections == 1
        assert echo.closed_by_peer == 0

        proxy.heal()
        # Bytes held during the blackhole arrive intact, as after a partition heals.
        assert recv_exactly(client, 6) == b"during"
        assert bytes(echo.received) == b"beforeduring"


def test_blackhole_holds_target_to_client_direction(proxy: FaultProxy, echo: EchoServer) -> None:
    with connect(proxy) as client:
        client.sendall(b"x")
        assert recv_exactly(client, 1) == b"x"
        assert wait_for(lambda: len(echo.accepted) == 1)
        proxy.blackhole()
        echo.accepted[0].sendall(b"from-target")
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(100)
        proxy.heal()
        assert recv_exactly(client, 11) == b"from-target"


def test_new_connection_during_blackhole_stays_silent(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.blackhole()
    with connect(proxy) as client:
        client.sendall(b"ping")
        client.settimeout(0.4)
        with pytest.raises(TimeoutError):
            client.recv(10)
        assert bytes(echo.received) == b""
        proxy.heal()
        assert recv_exactly(client, 4) == b"ping"


def test_client_close_is_passed_on_and_forgotten(proxy: FaultProxy, echo: EchoServer) -> None:
    client = connect(proxy)
    client.sendall(b"a")
    assert recv_exactly(client, 1) == b"a"
    client.close()
    assert wait_for(lambda: echo.closed_by_peer == 1)
    assert wait_for(lambda: proxy.open_connections == 0)


def test_target_down_closes_client(echo: EchoServer) -> None:
    dead_port = free_port()
    with FaultProxy(free_port(), dead_port) as proxy, connect(proxy) as client:
        client.settimeout(2)
        assert client.recv(10) == b""
        assert proxy.refused == 1


def test_connections_are_bounded(echo: EchoServer) -> None:
    with FaultProxy(free_port(), echo.port, max_connections=2) as proxy:
        clients = [connect(proxy) for _ in range(2)]
        for client in clients:
            client.sendall(b"k")
            assert recv_exactly(client, 1) == b"k"
        with connect(proxy) as extra:
            extra.settimeout(2)
            with contextlib.suppress(ConnectionResetError):
                assert extra.recv(10) == b""
        assert proxy.refused == 1
        assert proxy.open_connections == 2
        for client in clients:
            client.close()


def test_close_ends_connections_and_threads(echo: EchoServer) -> None:
    before = {t.ident for t in threading.enumerate()}
    proxy = FaultProxy(free_port(), echo.port).start()
    client = connect(proxy)
    client.sendall(b"z")
    assert recv_exactly(client, 1) == b"z"
    proxy.blackhole()  # closing must work even while pumps are parked
    started = time.monotonic()
    proxy.close()
    assert time.monotonic() - started < 2
    client.settimeout(2)
    with contextlib.suppress(ConnectionResetError):
        assert client.recv(10) == b""
    client.close()
    leftover = [t for t in threading.enumerate()
                if t.ident not in before and t.name.startswith("faultproxy")]
    assert leftover == []
    # The listen port is free again for the next test run.
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(proxy.listen)


BODY = bytes(range(256)) * 400  # 102 400 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_PUT(self) -> None:  # noqa: N802
        length = int(self.headers["Content-Length"])
        got = self.rfile.read(length)
        self.send_response(200 if got == BODY else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_proxy() -> Iterator[FaultProxy]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with FaultProxy(free_port(), server.server_address[1]) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


def get(proxy: FaultProxy) -> bytes:
    conn = http.client.HTTPConnection(*proxy.listen, timeout=5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read()
    finally:
        conn.close()


def test_truncate_ends_a_body_short_of_its_length_cleanly_then_passes(
        http_proxy: FaultProxy) -> None:
    http_proxy.cut(Mode.TRUNCATE, after=5000)
    with pytest.raises(http.client.IncompleteRead) as short:
        get(http_proxy)
    # Headers plus part of the body arrived, then a clean end: no reset.
    assert 0 < len(short.value.partial) < 5000
    assert http_proxy.cuts_done == 1
    assert get(http_proxy) == BODY  # once only: the next connection is whole


def test_reset_sends_an_rst_mid_response(http_proxy: FaultProxy) -> None:
    http_proxy.cut(Mode.RESET, after=5000, times=2)
    for _ in range(2):
        with pytest.raises(ConnectionResetError):
            get(http_proxy)
    assert http_proxy.cuts_done == 2
    assert get(http_proxy) == BODY


def test_reset_mid_upload_and_uncut(http_proxy: FaultProxy) -> None:
    http_proxy.cut(Mode.RESET, after=20_000, direction="up", times=5)
    conn = http.client.HTTPConnection(*http_proxy.listen, timeout=5)
    with pytest.raises((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        conn.request("PUT", "/", body=BODY)
        conn.getresponse().read()
    conn.close()
    assert http_proxy.cuts_done == 1
    http_proxy.uncut()
    conn = http.client.HTTPConnection(*http_proxy.listen, timeout=5)
    conn.request("PUT", "/", body=BODY)
    assert conn.getresponse().status == 200
    conn.close()


def test_a_cut_is_not_a_mode(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError):
        proxy.set_mode(Mode.RESET)
    with pytest.raises(ValueError):
        proxy.cut(Mode.BLACKHOLE, after=1)
