"""/livez, /readyz and /metrics of the controller; handlers only read the latest state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

Verdict = tuple[bool, str]


def serve(host: str, port: int, livez: Callable[[], Verdict], readyz: Callable[[], Verdict],
          metrics: Callable[[], bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?", 1)[0]
            if path in ("/livez", "/readyz"):
                ok, reason = (livez if path == "/livez" else readyz)()
                self._send(200 if ok else 503, f"{reason}\n".encode(), "text/plain")
            elif path == "/metrics":
                self._send(200, metrics(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: try /livez /readyz /metrics\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # probes every few seconds would drown the decisions

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="takeover-http", daemon=True).start()
    return server
