"""The Kubernetes API the container suite's pods take their primary lease from.

A stand-in for kube-apiserver (lease_apiserver.py, run by the sidecar image's python3) serves the
set's Lease over TLS on a network of its own, `mysqlsts-test-api`, as the API server sits
behind the node's route rather than on the pod network. Every pod's pause container joins that
network too, so a test can cut one pod off the API (`docker network disconnect`) while it still
reaches its peers: the case of a dead kubelet or a broken route to the control plane.

Each cluster is a namespace of its own holding the Lease `mysql-primary`, created before its
pods start as the kustomize base ships it; the sidecar gets what a pod's projected service
account volume holds (token, ca.crt, namespace), and reads and replaces the Lease with the real
store (mysqlsts/adapters/kube_lease_store.py).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import secrets as random
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import docker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from docker.errors import NotFound
from docker.types import EndpointConfig, Mount

API_NETWORK = "mysqlsts-test-api"
API_SUBNET = "172.29.78.0/24"
API_GATEWAY = "172.29.78.1"
API_IP = "172.29.78.10"  # what KUBERNETES_SERVICE_HOST holds in a pod: an address
API_PORT = 6443  # the stand-in runs unprivileged: not 443
LEASE = "mysql-primary"
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
STANDIN = Path(__file__).with_name("lease_apiserver.py")
_LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


def _certificate(directory: Path) -> None:
    """A self-signed serving certificate for the API's address: its own CA, as a cluster's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=6))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(API_IP)),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


class LeaseApi:
    """The stand-in's container and the files pods mount; `url` is for the host's own calls
    (the stand-in's port published on 127.0.0.1)."""

    def __init__(self, client: docker.DockerClient, image: str, directory: Path,
                 label: dict[str, str]) -> None:
        self.client = client
        self.directory = directory
        directory.chmod(0o755)
        _certificate(directory)
        (directory / "token").write_text(random.token_hex(24) + "\n")
        for name in ("tls.crt", "tls.key", "token"):
            (directory / name).chmod(0o644)
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=API_SUBNET, gateway=API_GATEWAY)])
        self.network = client.networks.create(API_NETWORK, driver="bridge", ipam=ipam,
                                              labels=label, check_duplicate=True)
        self.container = client.containers.run(
            image, name="mysqlsts-test-lease-api", detach=True, labels=label,
            entrypoint=["python3", "/standin/lease_apiserver.py"],
            command=[str(API_PORT), "/standin/tls.crt", "/standin/tls.key", "/standin/token"],
            mounts=[Mount("/standin/lease_apiserver.py", str(STANDIN), type="bind",
                          read_only=True),
                    Mount("/standin/tls.crt", str(directory / "tls.crt"), type="bind",
                          read_only=True),
                    Mount("/standin/tls.key", str(directory / "tls.key"), type="bind",
                          read_only=True),
                    Mount("/standin/token", str(directory / "token"), type="bind",
                          read_only=True)],
            network=API_NETWORK,
            networking_config={API_NETWORK: EndpointConfig(docker.__version__,
                                                           ipv4_address=API_IP)},
            ports={f"{API_PORT}/tcp": ("127.0.0.1", None)},
        )
        self.container.reload()
        port = self.container.attrs["NetworkSettings"]["Ports"][f"{API_PORT}/tcp"][0]["HostPort"]
        self.url = f"https://127.0.0.1:{port}"
        self._context = ssl.create_default_context(cafile=str(directory / "tls.crt"))
        self._wait_up()

    def _wait_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._request("GET", "/version")
            except urllib.error.HTTPError:
                return  # it answers (404): up
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise AssertionError("the Lease API stand-in did not start:\n"
                                         + self.container.logs().decode(errors="replace")
                                         ) from exc
                time.sleep(0.3)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {(self.directory / 'token').read_text().strip()}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10, context=self._context) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    # -- what a cluster needs ------------------------------------------------------------

    def create_lease(self, namespace: str) -> None:
        """The Lease as the kustomize base ships it: free, no spec (again free, when an
        earlier cluster of this name left it held)."""
        try:
            self._request("POST", _LEASES.format(namespace=namespace),
                          {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": LEASE}, "spec": {}})
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
            lease = self.lease(namespace)
            lease["spec"] = {}
            self._request("PUT", _LEASES.format(namespace=namespace) + f"/{LEASE}", lease)

    def lease(self, namespace: str) -> dict[str, Any]:
        return self._request("GET", _LEASES.format(namespace=namespace) + f"/{LEASE}")

    def take(self, namespace: str, holder: str) -> None:
        """Another holder takes the Lease, as a new primary's sidecar would."""
        lease = self.lease(namespace)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"] = {**lease.get("spec", {}), "holderIdentity": holder,
                         "renewTime": now, "acquireTime": now, "leaseDurationSeconds": 3600}
        self._request("PUT", _LEASES.format(namespace=namespace) + f"/{LEASE}", lease)

    def service_account(self, namespace: str) -> Path:
        """The directory a pod's projected service account volume would be, for `namespace`."""
        path = self.directory / namespace
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
        (path / "namespace").write_text(namespace)
        (path / "token").write_text((self.directory / "token").read_text())
        (path / "ca.crt").write_bytes((self.directory / "tls.crt").read_bytes())
        for name in ("namespace", "token", "ca.crt"):
            (path / name).chmod(0o644)
        return path

    def mount(self, namespace: str) -> Mount:
        return Mount(SERVICE_ACCOUNT, str(self.service_account(namespace)), type="bind",
                     read_only=True)

    def env(self) -> dict[str, str]:
        return {"MYSQLSTS_PRIMARY_LEASE": "kubernetes",
                "KUBERNETES_SERVICE_HOST": API_IP, "KUBERNETES_SERVICE_PORT": str(API_PORT)}

    def join(self, container: Any) -> None:
        self.network.connect(container)

    def cut(self, container: Any) -> None:
        self.network.disconnect(container)

    def close(self) -> None:
        with contextlib.suppress(NotFound):
            self.container.remove(force=True)
        with contextlib.suppress(NotFound):
            self.network.remove()
