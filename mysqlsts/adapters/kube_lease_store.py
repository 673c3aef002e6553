"""The primary lease in a Kubernetes Lease object: GET and PUT of that one object.

The sidecar may not load the `kubernetes` client (.importlinter: a small image that starts
fast), and it needs two requests, so this is a client on the standard library: in-cluster
configuration (the API server from KUBERNETES_SERVICE_HOST/PORT, through options.py), the
service account token re-read at every request (bound tokens rotate: the kubelet replaces the
projected file well before it expires), and the cluster CA. The pod's Role allows `get` and
`update` on this one Lease, which the kustomize base ships (k8s/base/lease.yaml).

`read` is a GET: the record (core/kube_lease.py) and metadata.resourceVersion. `write` PUTs the
object as read, with the new record and that resourceVersion, so kube-apiserver refuses it with
409 (LeaseConflict) when anyone wrote in between. Every other failure (no answer in time, no
connection, TLS, a 5xx, 401/403, a missing Lease, a body that is not a Lease) is
LeaseUnavailable, one sentence that never carries the token: a renew that did not happen.
The timeout bounds the whole request: past it the socket is shut down, whatever phase it is in.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mysqlsts.adapters.lease_store import LeaseConflict, LeaseUnavailable
from mysqlsts.core.kube_lease import lease_version, lease_with_record, record_from_lease
from mysqlsts.core.lease import LeaseRecord
from mysqlsts.errors import ConfigError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN = SERVICE_ACCOUNT / "token"
CA = SERVICE_ACCOUNT / "ca.crt"
NAMESPACE = SERVICE_ACCOUNT / "namespace"
_MESSAGE_CHARS = 300  # of the API server's own message, quoted in ours


def service_account_namespace(path: Path = NAMESPACE) -> str:
    """The pod's namespace from its service account volume (when POD_NAMESPACE is not set)."""
    try:
        namespace = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"no namespace for the primary lease: set POD_NAMESPACE or "
                          f"--lease-namespace (cannot read {path}: {exc.strerror})") from exc
    if not namespace:
        raise ConfigError(f"no namespace for the primary lease: {path} is empty")
    return namespace


class KubernetesLeaseStore:
    def __init__(self, name: str, namespace: str, *, api_url: str, token_path: Path = TOKEN,
                 ca_path: Path = CA, monotonic: Callable[[], float] = time.monotonic) -> None:
        url = urllib.parse.urlsplit(api_url)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ConfigError(f"the Kubernetes API URL {api_url!r} must be https://HOST[:PORT]")
        self.name = name
        self.namespace = namespace
        self.api_url = api_url.rstrip("/")
        self._url = url
        self._path = (f"{url.path.rstrip('/')}/apis/coordination.k8s.io/v1/namespaces/"
                      f"{urllib.parse.quote(namespace)}/leases/{urllib.parse.quote(name)}")
        self._token_path = token_path
        self._ca_path = ca_path
        self._monotonic = monotonic
        self._last: dict[str, Any] | None = None  # the object last read or written

    def describe(self) -> str:
        return f"kubernetes:{self.namespace}/{self.name}"

    @property
    def _lease(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def read(self, timeout: float) -> tuple[LeaseRecord | None, str]:
        lease = self._request("GET", None, self._monotonic() + timeout, timeout)
        try:
            record, version = record_from_lease(lease), lease_version(lease)
        except ValueError as exc:
            raise LeaseUnavailable(f"{self._lease} is malformed: {exc}") from exc
        self._last = lease
        return record, version

    def write(self, record: LeaseRecord, expected: str, timeout: float) -> str:
        deadline = self._monotonic() + timeout
        base = self._last
        if base is None or lease_version(base) != expected:
            # Not the object we read last (another store instance read it): read it again, and
            # a version that moved is the conflict the caller would get from the PUT.
            base = self._request("GET", None, deadline, timeout)
            try:
                current = lease_version(base)
            except ValueError as exc:
                raise LeaseUnavailable(f"{self._lease} is malformed: {exc}") from exc
            if current != expected:
                raise LeaseConflict(f"{self._lease} changed (resourceVersion {current}, "
                                    f"expected {expected})")
        written = self._request("PUT", lease_with_record(base, record), deadline, timeout)
        try:
            version = lease_version(written)
        except ValueError as exc:
            raise LeaseUnavailable(f"the answer to the update of {self._lease} is malformed: "
                                   f"{exc}") from exc
        self._last = written
        return version

    # -- HTTP ---------------------------------------------------------------------------

    def _request(self, method: str, body: dict[str, Any] | None, deadline: float,
                 timeout: float) -> dict[str, Any]:
        verb = "get" if method == "GET" else "update"
        token = self._token()
        status, reason, data = self._exchange(method, body, token, deadline, timeout, verb)
        if status == 200:
            try:
                parsed = json.loads(data)
            except ValueError as exc:
                raise LeaseUnavailable(f"the API server's answer to {verb} {self._lease} is not "
                                       f"JSON: {exc}") from exc
            if not isinstance(parsed, dict):
                raise LeaseUnavailable(f"the API server's answer to {verb} {self._lease} is not "
                                       "an object")
            return parsed
        said, reason = _status_message(data, token), _clean(reason, token)
        if status == 409 and method == "PUT":
            raise LeaseConflict(f"{self._lease} changed since it was read (409 Conflict: "
                                f"{said})")
        if status == 404:
            raise LeaseUnavailable(f"{self._lease} does not exist (404 on {verb}): the kustomize "
                                   "base creates it (k8s/base/lease.yaml)")
        if status in (401, 403):
            raise LeaseUnavailable(f"the API server refused to let this pod {verb} {self._lease} "
                                   f"({status} {reason}: {said}): check its token and the Role "
                                   "mysql-primary-lease")
        raise LeaseUnavailable(f"the API server answered {verb} {self._lease} with {status} "
                               f"{reason}: {said}")

    def _token(self) -> str:
        try:
            token = self._token_path.read_text().strip()
        except OSError as exc:
            raise LeaseUnavailable(f"cannot read the service account token {self._token_path}: "
                                   f"{exc.strerror}") from exc
        if not token:
            raise LeaseUnavailable(f"the service account token {self._token_path} is empty")
        if not token.isprintable() or any(c.isspace() for c in token):
            # http.client would refuse the header and echo it, token and all, in its error.
            raise LeaseUnavailable(f"the service account token {self._token_path} is not one "
                                   "token (it holds spaces or control characters)")
        return token

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        host, port = self._url.hostname, self._url.port
        assert host is not None  # checked in __init__
        if self._url.scheme == "http":  # the tests' API server
            return http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            # Loaded at every request too: the CA ConfigMap can change under a running pod.
            context = ssl.create_default_context(cafile=str(self._ca_path))
        except (OSError, ssl.SSLError) as exc:
            raise LeaseUnavailable(f"cannot load the cluster CA {self._ca_path}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from exc
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)

    def _exchange(self, method: str, body: dict[str, Any] | None, token: str, deadline: float,
                  timeout: float, verb: str) -> tuple[int, str, bytes]:
        left = deadline - self._monotonic()
        if left <= 0:
            raise LeaseUnavailable(f"no time left to {verb} {self._lease} ({timeout:.1f}s)")
        conn = self._connection(left)
        cutoff = threading.Timer(left, _shut_down, (conn,))
        cutoff.daemon = True
        cutoff.start()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                   "User-Agent": "mysqlsts-sidecar"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self._path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if self._monotonic() > deadline:
                raise TimeoutError
            return response.status, response.reason, data
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if isinstance(exc, TimeoutError) or self._monotonic() >= deadline:
                raise LeaseUnavailable(f"the API server {self.api_url} did not answer {verb} "
                                       f"{self._lease} within {timeout:.1f}s") from None
            raise LeaseUnavailable(f"cannot {verb} {self._lease} at {self.api_url}: "
                                   f"{_describe(exc)}") from None
        finally:
            cutoff.cancel()
            conn.close()


def _shut_down(conn: http.client.HTTPConnection) -> None:
    """At the deadline: whatever the request is waiting for (a TLS handshake, a server that
    drips its answer) ends now; the request raises and reports the timeout."""
    sock = conn.sock
    if sock is None:
        return
    # Closed, or not connected yet: the connect's own timeout bounds that phase.
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


def _status_message(data: bytes, token: str) -> str:
    """The message of a Kubernetes Status body, short, and never the token (a server may echo
    the request)."""
    try:
        parsed = json.loads(data)
        text = str(parsed.get("message") or "") if isinstance(parsed, dict) else ""
    except ValueError:
        text = data.decode(errors="replace")
    return _clean(text, token) or "no message"


def _clean(text: str, token: str) -> str:
    return " ".join(text.replace(token, "<token>").split())[:_MESSAGE_CHARS]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
