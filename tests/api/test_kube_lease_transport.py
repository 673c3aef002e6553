"""The Kubernetes Lease store's transport, against real sockets: HTTPS verified with the
cluster CA (an untrusted certificate is refused before the token is sent), a stopped API
server, one that never answers and one that drips its answer are each LeaseUnavailable within
the timeout, which bounds the whole request; a missing token or CA is one sentence."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mysqlsts.adapters.kube_lease_store import KubernetesLeaseStore
from mysqlsts.adapters.lease_store import LeaseUnavailable
from mysqlsts.core.lease import LeaseRecord
from tests.ports import PortPool

TOKEN = "pod-token-NEVER-LOGGED"
HOLDER = "mysql-0/uid-0"
LEASE = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
         "metadata": {"name": "mysql-primary", "namespace": "db", "resourceVersion": "77"},
         "spec": {"holderIdentity": HOLDER, "leaseDurationSeconds": 15,
                  "renewTime": "2026-03-01T12:00:00.000000Z", "leaseTransitions": 2}}
SLACK = 1.0  # scheduling on a loaded two-core machine
free_port = PortPool("api")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(directory: Path, common: str) -> tuple[Path, ec.EllipticCurvePrivateKey,
                                                   x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    path = directory / f"{common}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def server_context(directory: Path, ca_key: ec.EllipticCurvePrivateKey,
                   ca_cert: x509.Certificate) -> ssl.SSLContext:
    """The API server's certificate for 127.0.0.1, signed by the cluster CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("kube-apiserver"))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.crt", directory / "server.key")
    return context


class LeaseHandler(BaseHTTPRequestHandler):
    seen: list[str | None]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(self.headers.get("Authorization"))
        body = json.dumps(LEASE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def https_api(context: ssl.SSLContext) -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    handler = type("Handler", (LeaseHandler,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def store(url: str, token: Path, ca: Path) -> KubernetesLeaseStore:
    return KubernetesLeaseStore("mysql-primary", "db", api_url=url, token_path=token, ca_path=ca)


def test_https_verified_with_the_cluster_ca(tmp_path: Path, token: Path) -> None:
    ca_path, ca_key, ca_cert = make_ca(tmp_path, "cluster-ca")
    with https_api(server_context(tmp_path, ca_key, ca_cert)) as (url, seen):
        record, version = store(url, token, ca_path).read(5)
    assert (record, version) == (LeaseRecord(HOLDER, 1_772_366_400.0, 15.0, 2), "77")
    assert seen == [f"Bearer {TOKEN}"]


def test_an_untrusted_certificate_is_refused_before_the_token_is_sent(
        tmp_path: Path, token: Path) -> None:
    _, ca_key, ca_cert = make_ca(tmp_path, "cluster-ca")
    other_ca, _, _ = make_ca(tmp_path, "some-other-ca")
    with (https_api(server_context(tmp_path, ca_key, ca_cert)) as (url, seen),
          pytest.raises(LeaseUnavailable, match="TLS verification failed") as caught):
        store(url, token, other_ca).read(5)
    assert seen == [] and TOKEN not in str(caught.value)


def test_no_token_or_no_ca_is_one_sentence(tmp_path: Path, token: Path) -> None:
    ca_path, ca_key, ca_cert = make_ca(tmp_path, "cluster-ca")
    with https_api(server_context(tmp_path, ca_key, ca_cert)) as (url, seen):
        with pytest.raises(LeaseUnavailable, match="cannot read the service account token"):
            store(url, tmp_path / "no-token", ca_path).read(5)
        with pytest.raises(LeaseUnavailable, match="cannot load the cluster CA"):
            store(url, token, tmp_path / "no-ca.crt").read(5)
        (tmp_path / "empty").write_text("\n")
        with pytest.raises(LeaseUnavailable, match="is empty"):
            store(url, tmp_path / "empty", ca_path).read(5)
    assert seen == []


def _bounded(call: object, timeout: float) -> tuple[LeaseUnavailable, float]:
    started = time.monotonic()
    with pytest.raises(LeaseUnavailable) as caught:
        call(timeout)  # type: ignore[operator]
    return caught.value, time.monotonic() - started


def test_a_stopped_api_server_is_unavailable_at_once(tmp_path: Path, token: Path) -> None:
    port = free_port()  # reserved, nothing listens
    ca_path, _, _ = make_ca(tmp_path, "cluster-ca")
    leases = store(f"https://127.0.0.1:{port}", token, ca_path)
    error, took = _bounded(leases.read, 2)
    assert "Connection refused" in str(error) and took < 2
    error, took = _bounded(lambda t: leases.write(LeaseRecord(HOLDER, 1.0, 15.0), "77", t), 2)
    assert "Connection refused" in str(error) and took < 2


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_api_server_that_never_answers_is_unavailable_within_the_timeout(
        tmp_path: Path, token: Path, scheme: str) -> None:
    """It accepts the connection (the kernel's backlog) and says nothing: no TLS handshake,
    no HTTP answer."""
    ca_path, _, _ = make_ca(tmp_path, "cluster-ca")
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"{scheme}://127.0.0.1:{silent.getsockname()[1]}"
        error, took = _bounded(store(url, token, ca_path).read, 0.5)
    assert "did not answer get Lease db/mysql-primary within 0.5s" in str(error)
    assert 0.4 <= took < 0.5 + SLACK


def test_an_answer_dripping_in_is_cut_off_at_the_timeout(tmp_path: Path, token: Path) -> None:
    """Each byte arrives well inside a socket timeout, so only a deadline for the whole
    request ends it."""
    stop = threading.Event()

    def drip(server: socket.socket) -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"X-Slow: y\r\n")
                except OSError:
                    return
                time.sleep(0.05)

    with socket.create_server(("127.0.0.1", 0)) as server:
        thread = threading.Thread(target=drip, args=(server,), daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        try:
            error, took = _bounded(store(url, token, tmp_path / "ca").read, 0.6)
        finally:
            stop.set()
            thread.join(5)
    assert "did not answer get Lease db/mysql-primary within 0.6s" in str(error)
    assert 0.5 <= took < 0.6 + SLACK
