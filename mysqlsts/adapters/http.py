"""The HTTP endpoints of the sidecar and of the clone step: /livez, /readyz, /metrics, /status.

Handlers only read the latest immutable state (no query to the server), so every answer is
immediate even while the server hangs. The port is open to the pod network, so the server is
built to shrug off what a client can do to it (docs/sidecar.md, "HTTP limits"):
- one event-loop thread serves every connection: idle connections cost a few KiB, not a thread;
- at most `max_connections` are open: a new one closes the one idle the longest, so a flood of
  idle connections cannot keep a probe out;
- a request must arrive whole within `request_timeout` of the connection opening or of the
  previous answer (a total deadline, so dripping bytes does not keep it open), and its head is
  at most `max_request_bytes` in at most `max_headers` header lines;
- whatever it will not serve is answered at once and the connection closed: a request line
  that is not HTTP/1.x (400, as soon as that line is in), a method other than GET and HEAD (405
  with Allow), too large a head (431); a client is never left waiting for a timeout;
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
    # Probes send two or three; 100 is what Python's own HTTP client accepts in an answer.
    max_headers: int = 100
    # Connections the kernel queues before we accept them (the stdlib server's was 5: a burst
    # saw 1 s SYN retries). The kernel caps it at net.core.somaxconn.
    backlog: int = 1024
    # Connections accepted per event-loop round; well under max_connections (see _serve).
    accept_batch: int = 16


_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Response:
    code: int
    body: bytes
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def closes(self) -> bool:
        """Whether the connection ends after it: a refused request may have a body we would
        read as the next request, or come from a client that speaks something else."""
        return self.code in (400, 405, 431)


def answer(endpoints: Endpoints, method: str, target: str) -> Response:
    """What a request gets: a pure mapping from its method and path to a response."""
    if method not in _METHODS:
        return Response(405, b"only GET and HEAD\n", headers=(("Allow", ", ".join(_METHODS)),))
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
class _RequestLine:
    method: str
    target: str
    version: str


def _parse_request_line(line: bytes) -> _RequestLine | None:
    """`METHOD TARGET HTTP/1.x`; None for anything else (HTTP/0.9's `GET /`, binary noise)."""
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not parts[0].isalpha():
        return None
    return _RequestLine(parts[0], parts[1], parts[2])


def _keep_alive(version: str, header_lines: list[bytes]) -> bool:
    """Whether the connection stays open after the answer, from the headers that matter."""
    headers = {}
    for line in header_lines:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    # A body would be read as the next request: we take none, so such a connection ends.
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    connection = headers.get("connection", "")
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return keep_alive and not has_body


class _HeadTooLarge(Exception):
    """The request head passed a limit: 431."""


def _encode(response: Response, keep_alive: bool, head_only: bool) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in response.headers)
    head = (
        f"HTTP/1.1 {response.code} {_REASONS.get(response.code, '')}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        f"{extra}"
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
        # asyncio takes one number for two things: how many connections one loop round
        # accepts, and the listen backlog it sets again on our socket (100 by default, silently
        # replacing ours). A small batch lets the handlers of the connections already accepted
        # run (and those a flood opened and closed at once go) before more are accepted, so
        # they do not push a probe's connection out as "idle the longest"; the kernel's queue
        # then gets our backlog back, so a burst of connects is queued, not dropped into 1 s
        # SYN retries.
        server = await asyncio.start_server(
            self._connection, sock=self._socket, limit=self._limits.max_request_bytes,
            backlog=self._limits.accept_batch,
        )
        self._socket.listen(self._limits.backlog)
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
        while True:
            self._idle[writer] = None
            try:
                # One deadline for the whole head, however it is dripped in.
                async with asyncio.timeout(self._limits.request_timeout):
                    line = await reader.readuntil(b"\n")
                    request = _parse_request_line(line)
                    if request is None:  # answered before any header: it may never send one
                        await self._write(writer, Response(400, b"not an HTTP/1.x request\n"),
                                          False)
                        return
                    header_lines = await self._read_headers(reader, len(line))
            except (asyncio.LimitOverrunError, _HeadTooLarge):
                await self._write(writer, Response(431, b"request head too large\n"), False)
                return
            except asyncio.IncompleteReadError:
                return  # the client closed
            self._idle.pop(writer, None)
            response = answer(self._endpoints, request.method, request.target)
            keep_alive = _keep_alive(request.version, header_lines) and not response.closes
            await self._write(writer, response, keep_alive, request.method == "HEAD")
            if not keep_alive:
                return

    async def _read_headers(self, reader: asyncio.StreamReader, size: int) -> list[bytes]:
        """The header lines up to the blank one; _HeadTooLarge past either limit."""
        lines: list[bytes] = []
        while True:
            line = await reader.readuntil(b"\n")
            size += len(line)
            if size > self._limits.max_request_bytes:
                raise _HeadTooLarge
            if line in (b"\r\n", b"\n"):
                return lines
            lines.append(line)
            if len(lines) > self._limits.max_headers:
                raise _HeadTooLarge

    async def _write(self, writer: asyncio.StreamWriter, response: Response, keep_alive: bool,
                     head_only: bool = False) -> None:
        writer.write(_encode(response, keep_alive, head_only))
        await asyncio.wait_for(writer.drain(), self._limits.request_timeout)
        if not keep_alive:
            with contextlib.suppress(OSError):
                writer.write_eof()
