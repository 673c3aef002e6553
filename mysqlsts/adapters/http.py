"""The HTTP endpoints of the sidecar and of the clone step: /livez, /readyz, /metrics, /status.

Handlers only read the latest immutable state (no query to the server), so every answer is
immediate even while the server hangs. The port is open to the pod network, so the server is
built to shrug off what a client can do to it (docs/sidecar.md, "HTTP limits"):
- one event-loop thread serves every connection: idle connections cost a few KiB, not a thread;
- at most `max_connections` are open: a new one closes the one idle the longest, so a flood of
  idle connections cannot keep a probe out;
- a request must arrive whole within `request_timeout` of the connection opening or of the
  previous answer (a total deadline, so dripping bytes does not keep it open), and its head is
  at most `max_request_bytes`;
- a client that resets or vanishes is one debug line, never a traceback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from mysqlsts.core.health import Verdict

log = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Endpoints:
    livez: Callable[[], Verdict]
    readyz: Callable[[], Verdict]
    metrics: Callable[[], bytes]
    status: Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class HttpLimits:
    # Probes, a scraper and a person with curl need a handful; the rest is headroom.
    max_connections: int = 64
    # From accept (or the previous answer) to a complete request head; also bounds a keep-alive
    # connection's idle time and the time to write an answer. Probes send at once; Prometheus
    # scrapes every 15-60 s and simply reconnects when we closed first.
    request_timeout: float = 10.0
    max_request_bytes: int = 8192
    # Connections the kernel queues before we accept them (the stdlib server's was 5: a burst
    # saw 1 s SYN retries). The kernel caps it at net.core.somaxconn.
    backlog: int = 1024


@dataclass(frozen=True)
class Response:
    code: int
    body: bytes
    content_type: str = _TEXT


def answer(endpoints: Endpoints, method: str, target: str) -> Response:
    """What a request gets: a pure mapping from its method and path to a response."""
    if method not in ("GET", "HEAD"):
        return Response(405, b"only GET\n")
    path = target.split("?", 1)[0]
    if path in ("/livez", "/readyz"):
        verdict = (endpoints.livez if path == "/livez" else endpoints.readyz)()
        return Response(200 if verdict.ok else 503, f"{verdict.reason}\n".encode())
    if path == "/metrics":
        return Response(200, endpoints.metrics(), CONTENT_TYPE_LATEST)
    if path == "/status":
        body = json.dumps(endpoints.status(), indent=2, sort_keys=True) + "\n"
        return Response(200, body.encode(), "application/json")
    return Response(404, b"not found: try /livez /readyz /metrics /status\n")


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    keep_alive: bool


def _parse_head(head: bytes) -> _Request | None:
    """The request line and the headers that matter; None when it is not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    # A body would be read as the next request: we take none, so such a connection ends.
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    connection = headers.get("connection", "")
    keep_alive = (connection != "close" if parts[2] == "HTTP/1.1" else connection == "keep-alive")
    return _Request(parts[0], parts[1], keep_alive and not has_body)


def _encode(response: Response, keep_alive: bool, head_only: bool) -> bytes:
    head = (
        f"HTTP/1.1 {response.code} {_REASONS.get(response.code, '')}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Cache-Control: no-store\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode("latin-1")
    return head if head_only else head + response.body


class HttpServer:
    def __init__(self, address: str, port: int, endpoints: Endpoints,
                 limits: HttpLimits = HttpLimits()) -> None:
        # Binds now, so a port in use fails the start, not a thread later.
        self._socket = socket.create_server((address, port), backlog=limits.backlog)
        self._endpoints = endpoints
        self._limits = limits
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_error)
        # Connections waiting for a request, the longest waiting first: the ones to close when
        # the cap is reached.
        self._idle: collections.OrderedDict[asyncio.StreamWriter, None] = (
            collections.OrderedDict())
        self._open: set[asyncio.StreamWriter] = set()
        self._stopping = asyncio.Event()  # bound to the loop on first use, in its thread
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
        self._socket.close()

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(
            self._connection, sock=self._socket, limit=self._limits.max_request_bytes,
        )
        await self._stopping.wait()
        server.close()
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Whatever a client's socket does must not reach the log as a stack trace.
        log.debug("http: %s", context.get("exception") or context.get("message"))

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self._limits.max_connections:
            if not self._idle:  # every one is mid-answer: refuse this one, it may retry
                writer.close()
                return
            oldest, _ = self._idle.popitem(last=False)
            oldest.close()
        self._open.add(writer)
        try:
            await self._serve_requests(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError) as exc:
            log.debug("http client %s gone: %s", writer.get_extra_info("peername"),
                      type(exc).__name__)
        finally:
            self._idle.pop(writer, None)
            self._open.discard(writer)
            writer.close()

    async def _serve_requests(self, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        timeout = self._limits.request_timeout
        while True:
            self._idle[writer] = None
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            except asyncio.LimitOverrunError:
                await self._write(writer, Response(431, b"request head too large\n"), False)
                return
            except asyncio.IncompleteReadError:
                return  # the client closed
            self._idle.pop(writer, None)
            request = _parse_head(head)
            if request is None:
                await self._write(writer, Response(400, b"not an HTTP/1.x request\n"), False)
                return
            response = answer(self._endpoints, request.method, request.target)
            await self._write(writer, response, request.keep_alive, request.method == "HEAD")
            if not request.keep_alive:
                return

    async def _write(self, writer: asyncio.StreamWriter, response: Response, keep_alive: bool,
                     head_only: bool = False) -> None:
        writer.write(_encode(response, keep_alive, head_only))
        await asyncio.wait_for(writer.drain(), self._limits.request_timeout)
        if not keep_alive:
            with contextlib.suppress(OSError):
                writer.write_eof()
