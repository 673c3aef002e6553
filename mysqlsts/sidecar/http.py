"""The sidecar's HTTP endpoints: /livez, /readyz, /metrics, /status.

Handlers only read the latest immutable state (no query to the server), so every answer is
immediate even while the server hangs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from mysqlsts.core.health import Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    livez: Callable[[], Verdict]
    readyz: Callable[[], Verdict]
    metrics: Callable[[], bytes]
    status: Callable[[], dict[str, Any]]


def _handler(endpoints: Endpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: scrapers reuse connections
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's
        # delayed ACK of the headers (up to 40 ms on Linux) on every keep-alive response.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?", 1)[0]
            if path in ("/livez", "/readyz"):
                verdict = (endpoints.livez if path == "/livez" else endpoints.readyz)()
                self._send(200 if verdict.ok else 503, f"{verdict.reason}\n".encode(),
                           "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._send(200, endpoints.metrics(), CONTENT_TYPE_LATEST)
            elif path == "/status":
                body = json.dumps(endpoints.status(), indent=2, sort_keys=True) + "\n"
                self._send(200, body.encode(), "application/json")
            else:
                self._send(404, b"not found: try /livez /readyz /metrics /status\n",
                           "text/plain; charset=utf-8")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # probes every few seconds would drown the log

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpServer:
    def __init__(self, address: str, port: int, endpoints: Endpoints) -> None:
        # Binds now, so a port in use fails the start, not a thread later.
        self._server = _Server((address, port), _handler(endpoints))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
