"""A stand-in for kube-apiserver that serves one thing: the set's Lease, over TLS, for the
container suite (run with the sidecar image's python3; standard library only).

It does what the sidecar's Lease store relies on, as kube-apiserver does: a bearer token on
every request (401 otherwise), GET of the Lease (404 for another name), PUT that replaces it only
when the body's metadata.resourceVersion is the stored one (409 otherwise), the name in the body
matching the URL (400 otherwise), and a new resourceVersion on each write. The Lease's store
client itself is tested against tests/api/validating_server.py; this one lets the real images
run the lease across a real network that a test can cut.

Leases are created by POST to a namespace's collection (the test's stand-in for the kustomize
base that ships the Lease); the sidecar only reads and replaces.

Usage: lease_apiserver.py PORT CERT KEY TOKEN_FILE
"""

from __future__ import annotations

import http.server
import itertools
import json
import re
import ssl
import sys
import threading
from typing import Any

PORT, CERT, KEY, TOKEN_FILE = sys.argv[1:5]
_ROUTE = re.compile(
    r"/apis/coordination\.k8s\.io/v1/namespaces/([a-z0-9-]+)/leases(?:/([a-z0-9.-]+))?")
_versions = itertools.count(1000)
_lock = threading.Lock()
_leases: dict[tuple[str, str], dict[str, Any]] = {}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        sys.stderr.write("lease-apiserver: " + (format % args) + "\n")

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        with open(TOKEN_FILE) as handle:
            token = handle.read().strip()
        if self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self._send(401, _status(401, "Unauthorized", "Unauthorized"))
        return False

    def _route(self) -> tuple[str, str | None] | None:
        found = _ROUTE.fullmatch(self.path.split("?")[0])
        if found is None:
            self._send(404, _status(404, "NotFound", f"{self.path} not found"))
            return None
        return found.group(1), found.group(2)

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
            if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
                return body
        except ValueError:
            pass
        self._send(400, _status(400, "BadRequest", "the body is not an object"))
        return None

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        route = self._route() if self._authorised() else None
        if route is None:
            return
        with _lock:
            lease = _leases.get((route[0], route[1] or ""))
            if lease is None:
                self._send(404, _status(404, "NotFound", f'leases "{route[1]}" not found'))
            else:
                self._send(200, lease)

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        route = self._route() if body is not None and self._authorised() else None
        if body is None or route is None:
            return
        namespace, name = route[0], body["metadata"].get("name", "")
        with _lock:
            if (namespace, name) in _leases:
                self._send(409, _status(409, "AlreadyExists", f'leases "{name}" already exists'))
                return
            body["metadata"] = {"name": name, "namespace": namespace,
                                "resourceVersion": str(next(_versions))}
            _leases[(namespace, name)] = body
            self._send(201, body)

    def do_PUT(self) -> None:  # noqa: N802
        body = self._body()
        route = self._route() if body is not None and self._authorised() else None
        if body is None or route is None:
            return
        namespace, name = route[0], route[1] or ""
        meta = body["metadata"]
        if meta.get("name") != name:
            self._send(400, _status(400, "BadRequest", "the name of the object does not "
                                                        "match the name on the URL"))
            return
        with _lock:
            stored = _leases.get((namespace, name))
            if stored is None:  # no create on update, as for a Lease in kube-apiserver
                self._send(404, _status(404, "NotFound", f'leases "{name}" not found'))
                return
            if meta.get("resourceVersion") != stored["metadata"]["resourceVersion"]:
                self._send(409, _status(409, "Conflict", f'Operation cannot be fulfilled on '
                                        f'leases.coordination.k8s.io "{name}": the object has '
                                        f'been modified; please apply your changes to the '
                                        f'latest version and try again'))
                return
            body["metadata"] = {**meta, "namespace": namespace,
                                "resourceVersion": str(next(_versions))}
            _leases[(namespace, name)] = body
            self._send(200, body)


def main() -> None:
    server = http.server.ThreadingHTTPServer(("0.0.0.0", int(PORT)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
