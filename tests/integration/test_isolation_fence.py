"""The isolation fence on loopback, against a real mariadbd: a primary whose sidecar reaches
neither the "API endpoint" (a local TLS listener the test opens and closes) nor a peer's sidecar
turns read-only within the window and kills a write transaction; reaching the API again lifts
the fence. The API alone, or a set of one, never fences.

The container tier's Docker-network version (docker network disconnect) is not written yet;
this is the same sidecar code with the network cut simulated by closed ports.
"""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mysqlsts.adapters.lease_store import FileLeaseStore
from mysqlsts.core.peers import PeerAddress
from mysqlsts.options import IsolationOptions, LoopOptions, PrimaryLeaseOptions
from mysqlsts.sidecar.app import SidecarApp
from tests.integration.sidecar_servers import Harness, Server, http_get, wait_for

pytestmark = pytest.mark.integration

WINDOW = 3.0
READ_ONLY = 1290  # ER_OPTION_PREVENTS_STATEMENT


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes.default.svc")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "api.crt", directory / "api.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@contextmanager
def _tls_listener(port: int, certs: tuple[Path, Path]) -> Iterator[None]:
    """A stand-in for the API server: completes TLS handshakes, answers nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certs)
    sock = socket.create_server(("127.0.0.1", port))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            try:
                conn.settimeout(2)
                context.wrap_socket(conn, server_side=True).close()
            except OSError:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def _app_user(primary: Server) -> None:
    """A client without READ_ONLY ADMIN (root has it and writes through read_only)."""
    primary.sql("CREATE DATABASE IF NOT EXISTS app",
                "CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)",
                "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app-pw'",
                "GRANT ALL ON app.* TO 'app'@'%'")


def _app_conn(primary: Server) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(host="127.0.0.1", port=primary.port, user="app", password="app-pw",
                           database="app", autocommit=True, connect_timeout=3, read_timeout=5)


def _write(primary: Server) -> int | None:
    """None when the insert commits, else the server's error number."""
    try:
        conn = _app_conn(primary)
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO app.t (v) VALUES (1)")
            return None
        finally:
            conn.close()
    except pymysql.MySQLError as exc:
        return int(exc.args[0])


def _fenced_metric(app: SidecarApp) -> str:
    body = http_get(app.http_port, "/metrics")[1]
    return next(line for line in body.splitlines() if line.startswith("mysqlsts_isolation_fenced"))


def _closed_port(harness: Harness) -> int:
    return harness.ports()


def _primary(harness: Harness, api_port: int, peers: tuple[PeerAddress, ...],
             **kw: Any) -> tuple[Server, SidecarApp]:
    primary = harness.server("p", 100)
    app = harness.sidecar(harness.settings(
        0, primary, primary, loop=LoopOptions(poll_interval=0.2, max_backoff=1.0),
        isolation=IsolationOptions(isolation_fence_after=WINDOW,
                                   isolation_api_endpoint=f"127.0.0.1:{api_port}"),
        peers=peers, **kw))
    _app_user(primary)
    return primary, app


def _peer(port: int) -> PeerAddress:
    return PeerAddress(ordinal=1, host="127.0.0.1", mysql_port=1, clone_port=1, http_port=port)


def test_an_isolated_primary_fences_itself_and_lifts_the_fence_when_reachable(
    harness: Harness, tmp_path: Path,
) -> None:
    api_port = _closed_port(harness)
    primary, app = _primary(harness, api_port, (_peer(_closed_port(harness)),))
    # A transaction that wrote and did not commit, open before the cut is noticed.
    holder = _app_conn(primary)
    holder.autocommit(False)
    with holder.cursor() as cur:
        cur.execute("INSERT INTO app.t (v) VALUES (2)")

    took = wait_for("fence", lambda: http_get(app.http_port, "/readyz")[0] == 503
                    and "isolation fence" in http_get(app.http_port, "/readyz")[1], WINDOW + 10)
    assert took <= WINDOW + 5
    assert primary.value("SELECT @@global.read_only") == 1
    assert _write(primary) == READ_ONLY
    assert _fenced_metric(app) == "mysqlsts_isolation_fenced 1.0"
    # Its connection was killed (read_only alone would leave it open, holding its locks).
    assert primary.value(f"SELECT COUNT(*) FROM information_schema.processlist "
                         f"WHERE id = {holder.thread_id()}") == 0
    with pytest.raises(pymysql.MySQLError):
        holder.commit()
    assert primary.value("SELECT COUNT(*) FROM app.t WHERE v = 2") == 0

    with _tls_listener(api_port, _self_signed(tmp_path)):
        wait_for("fence lifted", lambda: _write(primary) is None, 10)
        wait_for("ready again", lambda: http_get(app.http_port, "/readyz")[0] == 200, 10)
        assert _fenced_metric(app) == "mysqlsts_isolation_fenced 0.0"


def test_with_a_lease_the_isolation_fence_never_lifts_and_the_lease_worker_waits_for_it(
    harness: Harness, tmp_path: Path,
) -> None:
    """One authority makes the server writable: the lease worker, which lifts nothing while
    the isolation fence holds the server read-only, though it holds the lease all along."""
    api_port = _closed_port(harness)
    lease = PrimaryLeaseOptions(primary_lease=f"file:{tmp_path / 'lease.json'}",
                                lease_duration=3, lease_renew_deadline=2,
                                lease_renew_interval=0.25)
    primary, app = _primary(harness, api_port, (_peer(_closed_port(harness)),), lease=lease)
    wait_for("writable under the lease", lambda: _write(primary) is None, 10)
    wait_for("fence", lambda: "isolation fence" in http_get(app.http_port, "/readyz")[1],
             WINDOW + 10)
    watched_until = time.monotonic() + 8 * lease.lease_renew_interval
    while time.monotonic() < watched_until:
        assert _write(primary) == READ_ONLY
        assert app.lease is not None and app.lease.held and not app.lease.fenced
        time.sleep(0.1)
    with _tls_listener(api_port, _self_signed(tmp_path)):
        wait_for("writable again through the lease", lambda: _write(primary) is None, 10)
        wait_for("ready again", lambda: http_get(app.http_port, "/readyz")[0] == 200, 10)
    record, _ = FileLeaseStore(tmp_path / "lease.json").read(1)
    assert record is not None and (record.holder, record.transitions) == ("mysql-0", 0)


def test_the_api_alone_keeps_a_primary_writable_with_every_peer_down(
    harness: Harness, tmp_path: Path,
) -> None:
    api_port = _closed_port(harness)
    with _tls_listener(api_port, _self_signed(tmp_path)):
        primary, app = _primary(harness, api_port, (_peer(_closed_port(harness)),))
        wait_for("ready", lambda: http_get(app.http_port, "/readyz")[0] == 200, 20)
        wait_for("two windows", lambda: app.state.loop_tick_at - app.state.started_at
                 >= 2 * WINDOW, 4 * WINDOW)
        assert _write(primary) is None
        assert _fenced_metric(app) == "mysqlsts_isolation_fenced 0.0"


def test_a_live_peer_alone_keeps_a_primary_writable(harness: Harness) -> None:
    class Livez(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(503)  # a peer that is not live still proves the network
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    peer = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Livez)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    try:
        primary, app = _primary(harness, _closed_port(harness), (_peer(peer.server_port),))
        wait_for("two windows", lambda: app.state.loop_tick_at - app.state.started_at
                 >= 2 * WINDOW, 4 * WINDOW)
        assert _write(primary) is None
        assert http_get(app.http_port, "/readyz")[0] == 200
    finally:
        peer.shutdown()
        peer.server_close()


def test_a_set_of_one_never_fences(harness: Harness) -> None:
    primary, app = _primary(harness, _closed_port(harness), ())
    wait_for("two windows", lambda: app.state.loop_tick_at - app.state.started_at
             >= 2 * WINDOW, 4 * WINDOW)
    assert _write(primary) is None
    assert _fenced_metric(app) == "mysqlsts_isolation_fenced 0.0"
