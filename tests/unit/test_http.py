"""The sidecar's HTTP port against hostile clients: resets, floods of idle connections, slow
and oversized requests. Loops are bounded in count and time."""

from __future__ import annotations

import logging
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from mysqlsts.adapters.http import Endpoints, HttpLimits, HttpServer
from mysqlsts.core.health import Verdict

METRICS = b"# a large scrape\n" + b"mysqlsts_x 1\n" * 50_000  # ~650 KB: writes meet the reset


def _endpoints() -> Endpoints:
    return Endpoints(livez=lambda: Verdict(True, "alive"), readyz=lambda: Verdict(True, "ready"),
                     metrics=lambda: METRICS, status=lambda: {"pod": "mysql-0"})


@pytest.fixture
def server() -> Iterator[HttpServer]:
    made = HttpServer("127.0.0.1", 0, _endpoints(),
                      HttpLimits(max_connections=32, request_timeout=1.0))
    made.start()
    try:
        yield made
    finally:
        made.stop()


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # linger 0: the kernel sends RST instead of FIN


def test_probes_and_keep_alive(server: HttpServer) -> None:
    assert _get(server.port, "/readyz") == (200, b"ready\n")
    assert _get(server.port, "/nope")[0] == 404
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        for _ in range(3):  # one connection, three answers
            conn.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = conn.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"\r\n\r\nalive\n")


def test_resetting_clients_add_no_log_lines(
    server: HttpServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for index in range(200):
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if index % 3:  # most send a whole request first; the others reset before or mid-way
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" if index % 3 == 1
                         else b"GET /met")
        _reset(conn)
    assert _get(server.port, "/readyz") == (200, b"ready\n")  # and it still answers
    time.sleep(0.2)
    records = [r for r in caplog.records if r.name.startswith("mysqlsts") or r.name == "asyncio"]
    assert [r.getMessage() for r in records if r.levelno > logging.DEBUG] == []
    assert len(records) <= 200  # at most one debug line per reset
    assert capfd.readouterr().err == ""  # and no stack trace printed past the logger


def test_a_flood_of_idle_connections_neither_blocks_probes_nor_grows_threads(
    server: HttpServer,
) -> None:
    threads_before = threading.active_count()
    flood: list[socket.socket] = []
    try:
        for index in range(1000):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if index % 2:
                conn.sendall(b"GET /readyz HTTP/1.1\r\n")  # a request that never ends
            flood.append(conn)
        started = time.monotonic()
        assert _get(server.port, "/readyz", timeout=1.0) == (200, b"ready\n")
        assert time.monotonic() - started < 1.0
        assert threading.active_count() <= threads_before
        # Over the cap the longest idle were closed; the rest within the request timeout.
        deadline = time.monotonic() + 5.0
        open_ones = list(flood)
        while open_ones and time.monotonic() < deadline:
            still = []
            for conn in open_ones:
                conn.settimeout(0.0)
                try:
                    if conn.recv(1) == b"":
                        continue
                except BlockingIOError:
                    still.append(conn)
                except OSError:
                    continue
            open_ones = still
            time.sleep(0.1)
        assert open_ones == []
    finally:
        for conn in flood:
            conn.close()


def test_a_dripping_request_is_cut_at_the_total_deadline(server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        started = time.monotonic()
        closed = False
        for byte in b"GET /readyz HTTP/1.1\r\nHost: x\r\n":  # one byte every 0.1 s
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            conn.settimeout(0.0)
            try:
                if conn.recv(1) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            conn.settimeout(5)
        assert closed and time.monotonic() - started < 2.0  # request_timeout is 1 s


def test_an_oversized_request_head_is_refused(server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"GET /readyz HTTP/1.1\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 431 ")


def _exchange(port: int, request: bytes) -> tuple[bytes, float]:
    """Send `request` and read until the server closes; the reply and how long it took."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        return data, time.monotonic() - started


@pytest.mark.parametrize(
    ("request_bytes", "status", "header"),
    [
        # Each header small, the head well under the byte limit: too many of them.
        (b"GET /readyz HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150))
         + b"\r\n", b"431", None),
        (b"DELETE /readyz HTTP/1.1\r\nHost: x\r\n\r\n", b"405", b"Allow: GET, HEAD"),
        # Keep-alive asked for, but a refused method ends the connection all the same.
        (b"POST /readyz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", b"405", None),
        (b"GET /readyz\r\n", b"400", None),  # HTTP/0.9: no version, no headers will follow
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", b"400", None),  # TLS-ish noise
    ],
    ids=["150-headers", "delete", "post-keep-alive", "http-0.9", "noise"],
)
def test_a_refused_request_is_answered_at_once_and_closed(
    server: HttpServer, request_bytes: bytes, status: bytes, header: bytes | None
) -> None:
    reply, took = _exchange(server.port, request_bytes)
    head = reply.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0].split(b" ")[:2] == [b"HTTP/1.1", status], reply
    assert b"Connection: close" in head
    assert header is None or header in head, reply
    assert took < 0.5  # the request timeout is 1 s: this is the answer, not the timeout
    assert _get(server.port, "/readyz") == (200, b"ready\n")


def test_headers_up_to_the_limit_are_served(server: HttpServer) -> None:
    reply, _ = _exchange(server.port, b"GET /readyz HTTP/1.1\r\nConnection: close\r\n"
                         + b"".join(b"X-H%d: v\r\n" % i for i in range(99)) + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b"\r\n\r\nready\n")


def test_the_listen_backlog_is_ours_not_asyncios(server: HttpServer) -> None:
    """asyncio's start_server sets its own backlog (100) on the socket it is given; under a
    connect flood a short queue drops SYNs, which the client retries only after 1 s."""
    ss = shutil.which("ss")
    assert ss, "ss not found: run scripts/setup-host test (iproute2)"
    listing = subprocess.run([ss, "-ltnH", f"sport = :{server.port}"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.split()
    assert listing[0] == "LISTEN" and int(listing[2]) == HttpLimits().backlog, listing
