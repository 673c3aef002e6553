"""The isolation fence on real containers: `docker network disconnect` cuts mysql-0's pod off
from the API stand-in and from mysql-1; within the window its server refuses writes, and after
`docker network connect` it takes them again. With mysql-1 gone but the API reachable, mysql-0
never fences.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from container_pods import NETWORK, Cluster, Engine, Flavor, endpoint, start_container

FENCE_AFTER = 10
API_HOST = "kubernetes.default.svc"
API_PORT = 6443  # the stand-in runs unprivileged: not 443
READ_ONLY = "1290"  # ER_OPTION_PREVENTS_STATEMENT

# The API stand-in: completes TLS handshakes with a throwaway self-signed certificate.
API_STANDIN = f"""
import datetime, socket, ssl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "{API_HOST}")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
open("/tmp/api.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open("/tmp/api.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/tmp/api.crt", "/tmp/api.key")
server = socket.create_server(("0.0.0.0", {API_PORT}))
while True:
    conn, _ = server.accept()
    try:
        conn.settimeout(3)
        context.wrap_socket(conn, server_side=True).close()
    except OSError:
        conn.close()
"""


@pytest.fixture(scope="module")
def api_standin(engine: Engine, flavor: Flavor) -> Iterator[Any]:
    container = start_container(
        flavor.sidecar_image, "mysqlsts-test-fence-api", entrypoint=["python3", "-c"],
        command=[API_STANDIN], network=NETWORK, networking_config=endpoint([API_HOST]),
        label="fence",
    )
    try:
        yield container
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def cluster(make_cluster: Callable[..., Cluster], api_standin: Any) -> Iterator[Cluster]:
    yield make_cluster("fence", env={
        "MYSQLSTS_REPLICAS": "2",
        "MYSQLSTS_ISOLATION_FENCE_AFTER": str(FENCE_AFTER),
        "MYSQLSTS_ISOLATION_API_ENDPOINT": f"{API_HOST}:{API_PORT}",
    })


def _app_user(cluster: Cluster) -> None:
    # %% : Pod.query always formats its statement
    for sql in ("CREATE DATABASE IF NOT EXISTS fence",
                "CREATE TABLE IF NOT EXISTS fence.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
                "CREATE USER IF NOT EXISTS 'app'@'%%' IDENTIFIED BY 'app-password'",
                "GRANT ALL ON fence.* TO 'app'@'%%'"):
        cluster.pod(0).query(sql)


# The image's Python packages live beside the `mysqlsts` launcher (images/install_wheels.py).
_PACKAGE_PATH = (
    "import re, shutil, sys\n"
    "sys.path.insert(0, re.search(r\"sys.path.insert\\(0, '([^']+)'\\)\", "
    "open(shutil.which('mysqlsts')).read()).group(1))\n"
)


def _write_inside(cluster: Cluster) -> str:
    """An app write from inside mysql-0's pod (its published ports go with its network): ""
    when it commits, else the error."""
    sidecar = cluster.pod(0).containers["sidecar"]
    script = (_PACKAGE_PATH + "import os, pymysql\n"
              "try:\n"
              " c = pymysql.connect(host='127.0.0.1', user='app', password=os.environ['PW'],"
              " connect_timeout=5, read_timeout=10, autocommit=True)\n"
              " c.cursor().execute('INSERT INTO fence.t (v) VALUES (1)')\n"
              "except pymysql.MySQLError as e:\n"
              " print(e.args[0], e.args[-1])\n")
    _, output = sidecar.exec_run(["python3", "-c", script],
                                 environment={"PW": "app-password"})
    return str(output.decode(errors="replace").strip())


def _readyz_inside(cluster: Cluster) -> str:
    sidecar = cluster.pod(0).containers["sidecar"]
    script = ("import urllib.request, urllib.error\n"
              "try:\n"
              " r = urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=3)\n"
              " print(r.status, r.read().decode())\n"
              "except urllib.error.HTTPError as e:\n"
              " print(e.code, e.read().decode())\n")
    _, output = sidecar.exec_run(["python3", "-c", script])
    return str(output.decode(errors="replace").strip())


def _wait(what: str, check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def test_a_cut_off_primary_refuses_writes_within_the_window_and_takes_them_back(
    cluster: Cluster, engine: Engine,
) -> None:
    cluster.scale(2)
    _app_user(cluster)
    assert _write_inside(cluster) == ""
    network = engine.client.networks.get(NETWORK)
    pause = cluster.pod(0).containers["pause"]
    network.disconnect(pause)
    try:
        took = _wait("writes refused", lambda: READ_ONLY in _write_inside(cluster),
                     FENCE_AFTER + 20)
        assert took <= FENCE_AFTER + 15
        assert _readyz_inside(cluster).startswith("503 isolation fence")
    finally:
        network.connect(pause, aliases=[cluster.pod(0).fqdn, "mysql"])
    _wait("writes resume", lambda: _write_inside(cluster) == "", 30)
    cluster.pod(0).wait_readyz(200, timeout=30)


def test_with_the_peers_gone_the_api_alone_keeps_the_primary_writable(
    cluster: Cluster,
) -> None:
    cluster.scale(1)
    _app_user(cluster)
    time.sleep(2 * FENCE_AFTER)
    assert _write_inside(cluster) == ""
    status, body = cluster.pod(0).readyz()
    assert status == 200, body
