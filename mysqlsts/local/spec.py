"""The local set's spec (its StatefulSet object) and where its files live (its volumes).

Pure: paths are computed, never touched, here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mysqlsts.core.peers import PeerDirectory
from mysqlsts.core.records import decode, encode
from mysqlsts.errors import ConfigError

DEFAULT_BASE_PORT = 13306
DEFAULT_PORT_STRIDE = 10
HOST = "127.0.0.1"
# Offsets from an ordinal's mysql port: clone P+1, http P+2.
CLONE_OFFSET = 1
HTTP_OFFSET = 2
SECRET_NAMES = ("root-password", "replication-password", "backup-password", "clone-token")


@dataclass(frozen=True)
class StoreAccess:
    """How the set's commands and pods reach an s3:// store: the `--s3-*` options (endpoint,
    region, path-style, the key files by absolute path, never their contents). Empty: the
    defaults (AWS, the standard credential chain); a file:// store needs none."""

    endpoint: str = ""
    region: str = ""
    path_style: bool = False
    access_key_file: str = ""
    secret_key_file: str = ""


@dataclass(frozen=True)
class SetSpec:
    """What `up`/`scale` ask for; persisted as DIR/spec.json, re-read by the supervisor."""

    replicas: int
    base_port: int = DEFAULT_BASE_PORT
    port_stride: int = DEFAULT_PORT_STRIDE
    statefulset: str = "mysql"
    service: str = "mysql"
    server_id_base: int = 100
    # The object store `local backup` writes base backups to (`local up --store`); "" = none.
    store: str = ""
    # STORE_URL@BACKUP_ID mysql-0's clone step restores from (`local restore`); "" = none.
    restore_from: str = ""
    # With restore_from: the point mysql-0 is recovered to (`local restore --to-gtid/--to-time`).
    restore_to_gtid: str = ""
    restore_to_time: str = ""
    # How the store (and the one restored from) is reached: every pod using one gets it.
    s3: StoreAccess = StoreAccess()

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ConfigError(f"replicas must be >= 0, got {self.replicas}")
        if self.port_stride < HTTP_OFFSET + 1:
            raise ConfigError(
                f"port stride {self.port_stride} is too small: each pod needs "
                f"{HTTP_OFFSET + 1} ports"
            )
        top = self.base_port + max(self.replicas - 1, 0) * self.port_stride + HTTP_OFFSET
        if self.base_port < 1024 or top > 65535:
            raise ConfigError(
                f"base port {self.base_port} with {self.replicas} replicas needs ports "
                f"{self.base_port}..{top}, outside 1024..65535"
            )

    def scaled(self, replicas: int) -> SetSpec:
        return replace(self, replicas=replicas)

    def peers(self) -> PeerDirectory:
        return PeerDirectory(
            statefulset=self.statefulset,
            service=self.service,
            host_template=HOST,
            mysql_port=self.base_port,
            clone_port=self.base_port + CLONE_OFFSET,
            http_port=self.base_port + HTTP_OFFSET,
            port_stride=self.port_stride,
        )

    def pod_name(self, ordinal: int) -> str:
        return f"{self.statefulset}-{ordinal}"

    def to_json(self) -> str:
        return encode(self)

    @classmethod
    def from_json(cls, data: bytes | str, what: str = "local set spec") -> SetSpec:
        return decode(cls, data, what)


@dataclass(frozen=True)
class PodPaths:
    root: Path

    @property
    def data(self) -> Path:
        """The pod's PVC: outlives the pod, reused by a later pod of the same ordinal."""
        return self.root / "data"

    @property
    def conf(self) -> Path:
        return self.root / "conf.d"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def watchdog_heartbeat(self) -> Path:
        """The sidecar's heartbeat for the server's watchdog: the pod's shared emptyDir, so a
        new pod process starts without one (pod.py)."""
        return self.run / "watchdog-heartbeat"

    @property
    def record(self) -> Path:
        """Written by the pod process: its pid (= process group), phase, failure reason."""
        return self.root / "pod.json"

    @property
    def keep_down(self) -> Path:
        """Present while `local stop` keeps the pod down, as if its node were gone."""
        return self.root / "keep-down"

    def log(self, container: str) -> Path:
        return self.logs / f"{container}.log"


@dataclass(frozen=True)
class SetLayout:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def supervisor_pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def supervisor_lock(self) -> Path:
        return self.root / "supervisor.lock"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def secret(self, name: str) -> Path:
        return self.secrets / name

    @property
    def config_map(self) -> Path:
        return self.root / "config-map"

    @property
    def primary_lease(self) -> Path:
        """The set's primary lease (a file store every pod's sidecar contends for)."""
        return self.root / "primary-lease.json"

    @property
    def pods(self) -> Path:
        return self.root / "pods"

    def pod(self, name: str) -> PodPaths:
        return PodPaths(self.pods / name)
