"""Pods made of containers, as a StatefulSet makes them, for the container suite.

A pod is a `pause` container that owns the network namespace (the pod's IP, its aliases
`mysql-N.mysql` and `mysql` on the test network, its ports published on 127.0.0.1), the init
containers `init` and `clone` run to completion, then the server and the sidecar, all joined to
the pause container's namespace. Named volumes stand in for the PVC (`data`) and the emptyDir
(`conf`); they outlive the containers, as PVCs outlive pods.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pymysql
from docker.errors import NotFound
from docker.types import EndpointConfig, Mount
from lease_api import API_NETWORK, LeaseApi
from testcontainers.core.container import DockerContainer

REPO = Path(__file__).resolve().parents[2]
LABEL = "org.mysqlsts.test"
NETWORK = "mysqlsts-test"
SUBNET = "172.29.77.0/24"
GATEWAY = "172.29.77.1"
DNS_IP = "172.29.77.2"
SERVICE = "mysql"
STATEFULSET = "mysql"
SECRETS_MOUNT = "/etc/mysqlsts/secrets"
DATA_DIR = "/var/lib/mysql"
CLONE_RECORD = "mysqlsts-clone.json"
# How long a run-to-completion container may take: a clone waits for its donor with backoff.
INIT_TIMEOUT = 240.0
READY_TIMEOUT = 180.0
# The server container's memory limit, as the StatefulSet sets it (smaller, for a shared test
# machine); init reads it from the environment, where the downward API puts it in a pod.
SERVER_MEMORY_LIMIT = 1024 * 1024 * 1024
WATCHDOG_DIR = "/run/mysqlsts/watchdog"  # the StatefulSet's shared emptyDir


@dataclass(frozen=True)
class Flavor:
    """What the suite runs: MariaDB from the local images, or MySQL 8.4 with xtrabackup."""

    name: str
    init_image: str
    sidecar_image: str
    server_image: str
    cnf_dir: Path

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.init_image, self.sidecar_image, self.server_image)))

    def server_spec(self) -> dict[str, Any]:
        """Entrypoint, command and env of the server container."""
        if self.name == "mysql":
            # The official image initialises an empty data dir itself (ordinal 0 only: the
            # others hold a clone by then) and reads /etc/mysql/conf.d.
            # As uid 999 (the manifests' runAsUser): the entrypoint then needs no root.
            return {
                "environment": {"MYSQL_ROOT_PASSWORD_FILE": f"{SECRETS_MOUNT}/root-password"},
                "user": "999:999",
            }
        # mysqlsts-server as the manifests run it: its own entrypoint (bootstrap, then exec
        # mariadbd), its own user.
        return {"environment": {}}


@dataclass(frozen=True)
class Secrets:
    directory: Path
    root_password: str


class Engine:
    """The Docker engine and the suite's network; sweeps what an earlier run left behind."""

    def __init__(self) -> None:
        self.client = docker.from_env(timeout=120)

    def sweep(self) -> None:
        for container in self.client.containers.list(all=True, filters={"label": LABEL}):
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=False)
        for network in self.client.networks.list(names=[NETWORK, API_NETWORK]):
            with contextlib.suppress(NotFound):
                network.remove()
        for volume in self.client.volumes.list(filters={"label": LABEL}):
            with contextlib.suppress(NotFound):
                volume.remove(force=True)

    def create_network(self) -> None:
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=GATEWAY)]
        )
        self.client.networks.create(
            NETWORK, driver="bridge", ipam=ipam, labels={LABEL: "network"}, check_duplicate=True
        )

    def missing_images(self, flavor: Flavor) -> list[str]:
        missing = []
        for image in flavor.images:
            try:
                self.client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
        return missing


def endpoint(aliases: list[str], ip: str | None = None) -> dict[str, Any]:
    return {NETWORK: EndpointConfig(docker.__version__, aliases=aliases, ipv4_address=ip)}


def start_container(image: str, name: str | None, **kwargs: Any) -> Any:
    """Create and start a container through testcontainers; returns the docker-py container.

    `ports` maps container ports to (host address, host port); the rest goes to docker-py's
    `containers.create` as is.
    """
    labels = {LABEL: kwargs.pop("label", "pod")}
    spec = DockerContainer(
        image, command=kwargs.pop("command", None), env=kwargs.pop("environment", {}), name=name
    )
    spec.ports.update(kwargs.pop("ports", {}))
    spec.tmpfs.update(kwargs.pop("tmpfs", {}))
    spec.with_kwargs(labels=labels, **kwargs)
    spec.start()
    return spec.get_wrapped_container()


def tail(container: Any, lines: int = 30) -> str:
    with contextlib.suppress(NotFound):
        return str(container.logs(tail=lines).decode(errors="replace"))
    return "(container gone)"


class DnsServer:
    """dnsmasq answering `_mysql._tcp.mysql` SRV for the pods a headless Service would list."""

    def __init__(self, engine: Engine, image: str) -> None:
        self.engine = engine
        self.image = image
        self.name = "mysqlsts-test-dns"

    def serve(self, ordinals: list[int]) -> None:
        self.stop()
        srv = [
            f"--srv-host=_{SERVICE}._tcp.{SERVICE},{STATEFULSET}-{n}.{SERVICE},3306,0,100"
            for n in ordinals
        ]
        start_container(
            # --local: the zone is ours, so a name we do not list is NXDOMAIN, as in cluster DNS.
            self.image, self.name, command=["--listen-address=" + DNS_IP, "--bind-interfaces",
                                            f"--local=/{SERVICE}/", *srv],
            network=NETWORK, networking_config=endpoint([], DNS_IP), label="dns",
        )

    def stop(self) -> None:
        with contextlib.suppress(NotFound):
            self.engine.client.containers.get(self.name).remove(force=True)


@dataclass
class Pod:
    cluster: Cluster
    ordinal: int
    containers: dict[str, Any] = field(default_factory=dict)
    uid: str = ""  # metadata.uid: new for each pod `up` makes, kept by its containers

    @property
    def name(self) -> str:
        return f"{STATEFULSET}-{self.ordinal}"

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{SERVICE}"

    def _cname(self, role: str) -> str:
        return f"{self.cluster.prefix}-{self.name}-{role}"

    @property
    def data_volume(self) -> str:
        return f"{self.cluster.prefix}-{self.name}-data"

    @property
    def conf_volume(self) -> str:
        return f"{self.cluster.prefix}-{self.name}-conf"

    def _env(self) -> dict[str, str]:
        # One env block for every container of the pod, as the StatefulSet has.
        # A clone gives up well within INIT_TIMEOUT, so a missing donor fails with its reason.
        # The primary lease lives in the Lease API stand-in (lease_api.py), in a namespace
        # of the cluster's own; the official MySQL image has no watchdog, as its overlay says.
        env = {"POD_NAME": self.name, "POD_UID": self.uid, "POD_NAMESPACE": self.cluster.prefix,
               "MYSQLSTS_FLAVOR": self.cluster.flavor.name,
               "MYSQLSTS_LOG_LEVEL": "info", "MYSQLSTS_CLONE_DEADLINE": "120",
               "MYSQLSTS_SERVER_MEMORY_LIMIT": str(SERVER_MEMORY_LIMIT),
               **self.cluster.api.env()}
        if self.cluster.flavor.name == "mysql":
            env["MYSQLSTS_WATCHDOG_FILE"] = ""
        return {**env, **self.cluster.env}

    @property
    def watchdog_dir(self) -> Path:
        """The emptyDir the server and sidecar containers share: a host directory anyone in
        the pod may write (the containers run as 999)."""
        path = self.cluster.scratch / f"{self.name}-watchdog"
        path.mkdir(exist_ok=True)
        path.chmod(0o1777)
        return path

    def _watchdog_mount(self) -> list[Mount]:
        return [Mount(WATCHDOG_DIR, str(self.watchdog_dir), type="bind")]

    def _mounts(self, *, data: bool = True, conf: tuple[str, ...] = ("/mnt/conf.d",),
                secrets: bool = True, config_map: bool = False) -> list[Mount]:
        mounts = [Mount(target, self.conf_volume, type="volume") for target in conf]
        if data:
            mounts.append(Mount(DATA_DIR, self.data_volume, type="volume"))
        if secrets:
            mounts.append(Mount(SECRETS_MOUNT, str(self.cluster.secrets.directory), type="bind",
                                read_only=True))
        if config_map:
            mounts.append(Mount("/mnt/config-map", str(self.cluster.flavor.cnf_dir), type="bind",
                                read_only=True))
        return [*mounts, *self.cluster.mounts]

    def _joined(self, *writable: str) -> dict[str, Any]:
        """Join the pod's network namespace, with the manifests' container security: read-only
        root filesystem, no capabilities, no privilege escalation, scratch space in tmpfs."""
        return {
            "network_mode": f"container:{self.containers['pause'].id}",
            "label": self.cluster.prefix,
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "tmpfs": {path: "rw,uid=999,gid=999,mode=1777" for path in ("/tmp", *writable)},
        }

    # -- lifecycle ------------------------------------------------------------------------

    def ensure_volumes(self) -> None:
        client = self.cluster.engine.client
        for name in (self.data_volume, self.conf_volume):
            try:
                client.volumes.get(name)
            except NotFound:
                client.volumes.create(name, labels={LABEL: self.cluster.prefix})

    def start_pause(self) -> None:
        kwargs: dict[str, Any] = {
            "hostname": self.name,
            "entrypoint": ["sh", "-c"],
            "command": ["trap 'exit 0' TERM; sleep infinity & wait"],
            "network": NETWORK,
            "networking_config": endpoint([self.fqdn, SERVICE]),
            "ports": {"3306/tcp": ("127.0.0.1", None), "8080/tcp": ("127.0.0.1", None)},
            "label": self.cluster.prefix,
        }
        if self.cluster.dns:
            kwargs["dns"] = [DNS_IP]
        self.containers["pause"] = start_container(
            self.cluster.flavor.init_image, self._cname("pause"), **kwargs
        )
        # The route to the API server, which a test may cut while the pod network stays.
        self.cluster.api.join(self.containers["pause"])

    def run_to_completion(self, role: str, command: list[str], mounts: list[Mount]) -> str:
        """Run an init container; returns its log, raises with its log if it fails."""
        container = start_container(
            self.cluster.flavor.init_image, self._cname(role), command=command,
            environment=self._env(), mounts=mounts, **self._joined(),
        )
        try:
            status = container.wait(timeout=INIT_TIMEOUT)
            logs = str(container.logs().decode(errors="replace"))
        finally:
            container.remove(force=True)
        if status.get("StatusCode") != 0:
            raise AssertionError(
                f"{self.name} {role} exited with {status.get('StatusCode')}:\n{logs[-3000:]}"
            )
        return logs

    def run_init(self) -> str:
        return self.run_to_completion(
            "init", ["init"], self._mounts(data=False, secrets=False, config_map=True)
        )

    def run_clone(self) -> str:
        # conf.d also where the backup tool looks for the server's settings.
        return self.run_to_completion(
            "clone", ["clone"], self._mounts(conf=("/mnt/conf.d", "/etc/mysql/conf.d"))
        )

    def start_server(self) -> None:
        flavor = self.cluster.flavor
        spec = flavor.server_spec()
        env = {**self._env(), **spec.pop("environment")}
        self.containers["server"] = start_container(
            flavor.server_image, self._cname("server"), environment=env,
            mounts=[*self._mounts(conf=("/etc/mysql/conf.d",)), *self._watchdog_mount()],
            mem_limit=SERVER_MEMORY_LIMIT,
            **spec, **self._joined("/run/mysqld"),
        )

    def start_sidecar(self) -> None:
        self.containers["sidecar"] = start_container(
            self.cluster.flavor.sidecar_image, self._cname("sidecar"), command=["sidecar"],
            environment=self._env(),
            mounts=[*self._mounts(conf=("/mnt/conf.d", "/etc/mysql/conf.d")),
                    *self._watchdog_mount(), self.cluster.api.mount(self.cluster.prefix)],
            **self._joined(),
        )

    def up(self) -> None:
        """Create the pod as the kubelet does: init containers in order, then the rest.

        A pod that fails to come up is removed again (its volumes stay), so the next attempt
        starts from what a new pod would find.
        """
        self.remove()
        self.ensure_volumes()
        self.uid = str(uuid.uuid4())  # a new pod, a new uid: another lease holder
        for stale in self.watchdog_dir.iterdir():  # an emptyDir starts empty
            stale.unlink()
        try:
            self.start_pause()
            self.init_log = self.run_init()
            self.clone_log = self.run_clone()
            self.start_server()
            self.start_sidecar()
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the pod, keeping its volumes (as deleting a pod keeps its PVC)."""
        for role in ("sidecar", "server", "pause"):
            container = self.containers.pop(role, None)
            if container is None:
                continue
            # SIGTERM and a grace period first, as the kubelet gives: a clean server shutdown.
            with contextlib.suppress(docker.errors.APIError):
                container.stop(timeout=30)
            with contextlib.suppress(NotFound):
                container.remove(force=True)

    # -- observation ----------------------------------------------------------------------

    def host_port(self, port: int) -> int:
        pause = self.containers["pause"]
        pause.reload()
        return int(pause.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])

    def readyz(self) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.host_port(8080)}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)

    def wait_readyz(self, want: int, timeout: float = READY_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        status, body = 0, ""
        while time.monotonic() < deadline:
            status, body = self.readyz()
            if status == want:
                return body
            time.sleep(0.5)
        raise AssertionError(
            f"{self.name} /readyz stayed {status} ({body.strip()}) instead of {want} for "
            f"{timeout:.0f}s\n--- server:\n{self.logs('server')}\n--- sidecar:\n"
            f"{self.logs('sidecar')}"
        )

    def logs(self, role: str) -> str:
        container = self.containers.get(role)
        return tail(container) if container is not None else "(not running)"

    @contextlib.contextmanager
    def connect(self, database: str | None = None) -> Iterator[pymysql.connections.Connection]:
        conn = pymysql.connect(
            host="127.0.0.1", port=self.host_port(3306), user="root",
            password=self.cluster.secrets.root_password, database=database,
            connect_timeout=5, read_timeout=30, write_timeout=30, autocommit=True,
        )
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.connect() as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def data_file(self, name: str) -> str | None:
        """A file of the data volume as text (None when absent), read by a helper container."""
        return self.cluster.read_volume(self.data_volume, name)

    def data_stat(self, name: str) -> str | None:
        return self.cluster.run_on_volume(
            self.data_volume, f"stat -c '%i %Y' /v/{name} 2>/dev/null || true"
        ) or None

    def clone_record(self) -> dict[str, Any] | None:
        text = self.data_file(CLONE_RECORD)
        return json.loads(text) if text else None


@dataclass
class Cluster:
    """The pods of one StatefulSet on the test network; `prefix` keeps volumes apart."""

    engine: Engine
    flavor: Flavor
    secrets: Secrets
    prefix: str
    api: LeaseApi  # the primary lease's API server, a namespace per cluster (the prefix)
    dns: bool = False
    pods: dict[int, Pod] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # added to every container's env
    # Added to every container of every pod (e.g. an object store volume and its key files).
    mounts: list[Mount] = field(default_factory=list)
    scratch: Path = field(init=False)

    def __post_init__(self) -> None:
        # Host directories the cluster's pods mount (their watchdog emptyDirs); `discard`
        # removes them.
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.api.create_lease(self.prefix)

    def discard(self) -> None:
        """Close, and remove the host directories too: the cluster is not used again."""
        self.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def pod(self, ordinal: int) -> Pod:
        return self.pods.setdefault(ordinal, Pod(self, ordinal))

    def running(self) -> list[int]:
        return sorted(n for n, pod in self.pods.items() if "server" in pod.containers)

    def scale(self, replicas: int) -> None:
        """Like `kubectl scale`: start missing ordinals in order, each ready before the next;
        delete the highest ordinals first, keeping their volumes."""
        for ordinal in sorted(self.running(), reverse=True):
            if ordinal >= replicas:
                self.pods[ordinal].remove()
        for ordinal in range(replicas):
            pod = self.pod(ordinal)
            if "server" not in pod.containers:
                pod.up()
                pod.wait_readyz(200)

    def resolve_srv(self, name: str) -> list[str]:
        """SRV targets of `name` as a container on the test network resolves them."""
        script = (
            "import sys; sys.path.insert(0, '/opt/mysqlsts/lib'); import dns.resolver\n"
            f"for r in dns.resolver.resolve({name!r}, 'SRV'): print(r.target, r.port)\n"
        )
        return self._python_on_network(script).splitlines()

    def _python_on_network(self, script: str) -> str:
        container = start_container(
            self.flavor.init_image, None, entrypoint=["mysqlsts-python", "-I", "-c"],
            command=[script], network=NETWORK, label=self.prefix,
            mounts=[Mount(SECRETS_MOUNT, str(self.secrets.directory), type="bind",
                          read_only=True)],
            **({"dns": [DNS_IP]} if self.dns else {}),
        )
        try:
            status = container.wait(timeout=60)
            out = str(container.logs(stderr=False).decode(errors="replace")).strip()
            err = str(container.logs(stdout=False).decode(errors="replace")).strip()
        finally:
            container.remove(force=True)
        if status.get("StatusCode") != 0:
            raise AssertionError(f"a client container on the test network failed: {err[-2000:]}")
        return out

    def sql_via(self, host: str, statements: list[str]) -> list[list[Any]]:
        """Run SQL from a client container on the test network, addressing the server by its
        DNS name as an application in the cluster would; returns the last statement's rows."""
        script = (
            "import json, sys; sys.path.insert(0, '/opt/mysqlsts/lib'); import pymysql\n"
            f"password = open('{SECRETS_MOUNT}/root-password').read().strip()\n"
            f"conn = pymysql.connect(host={host!r}, user='root', password=password,"
            " connect_timeout=10, autocommit=True)\n"
            "rows = []\n"
            f"for sql in {statements!r}:\n"
            "    with conn.cursor() as cursor:\n"
            "        cursor.execute(sql)\n"
            "        rows = [list(r) for r in cursor.fetchall()]\n"
            "print(json.dumps(rows, default=str))\n"
        )
        rows: list[list[Any]] = json.loads(self._python_on_network(script))
        return rows

    def run_on_volume(self, volume: str, script: str) -> str:
        container = start_container(
            self.flavor.init_image, None, entrypoint=["sh", "-c"], command=[script],
            mounts=[Mount("/v", volume, type="volume", read_only=True)], label=self.prefix,
        )
        try:
            container.wait(timeout=60)
            return str(container.logs(stderr=False).decode(errors="replace")).strip()
        finally:
            container.remove(force=True)

    def read_volume(self, volume: str, name: str, strip: bool = False) -> str | None:
        """A file of a volume as text, or None when it is absent."""
        out = self.run_on_volume(volume, f"cat /v/{name} 2>/dev/null && echo '<<present>>'")
        if not out.endswith("<<present>>"):
            return None
        text = out.removesuffix("<<present>>")
        return text.strip() if strip else text

    def close(self) -> None:
        for pod in self.pods.values():
            pod.remove()
        client = self.engine.client
        mine = {"label": f"{LABEL}={self.prefix}"}
        for container in client.containers.list(all=True, filters=mine):
            with contextlib.suppress(NotFound):
                container.remove(force=True)
        for volume in client.volumes.list(filters=mine):
            with contextlib.suppress(NotFound):
                volume.remove(force=True)
