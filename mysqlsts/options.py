"""Every option of the pod commands, defined once: flag, environment variable, default, help.

Options come in groups by topic, each a frozen dataclass whose fields are the options:
`@use(Group, "name")` adds the group's flags to a command and hands the command one `Group`
value, which it passes whole to the one part that reads it (kopf's `OperatorSettings`). A new
option is a field of its group plus the line that reads it; nothing in between copies fields.
The dataclass default is the option's default (so `Group()` is the defaults, e.g. for tests), and
`to_env(*groups)` turns values back into the environment a pod runs with (the local set's pods).
A group may also hold plain fields without a flag (tunables tests shorten): `use` leaves them at
their defaults. Env names are explicit (`MYSQLSTS_DATA_DIR`, not click's per-command auto names)
so one Kubernetes env block serves every container of the pod. Commands that run outside the pod
(`takeover`) declare their groups beside them, with the same `option` and `use`.

Why not typed-settings (attrs/dataclass settings that generate click options): it names a
variable `{PREFIX}{OPTION_NAME}` from the field, loads the environment itself when the decorator
runs (at import) and hands click the result as the option's default. That loses what this module
is for: an explicit name where the field's is not the contract (`CLONE_PREPARE_MEMORY`), a
fallback variable the downward API sets (`POD_NAME`), an empty variable that means "disabled"
rather than "unset" (`--srv-name`), click's own `show_envvar` help, and `to_env` for the local
set. What is left here is ~100 lines; a dependency would not make it shorter.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from mysqlsts.core import clone_compression
from mysqlsts.core.clone_protocol import IDLE_TIMEOUT
from mysqlsts.core.cnf import parse_memory_quantity
from mysqlsts.core.endpoint import host_port
from mysqlsts.core.identity import Identity, identify
from mysqlsts.core.lease import LeaseTimings
from mysqlsts.core.peers import PeerDirectory
from mysqlsts.core.watchdog import WatchdogTimings, stop_bound
from mysqlsts.errors import ConfigError
from mysqlsts.settings import Accounts, Flavor, LocalServer, SecretFiles

F = TypeVar("F", bound=Callable[..., Any])
ENV_PREFIX = "MYSQLSTS_"
SECRETS_DIR = Path("/etc/mysqlsts/secrets")
PORT = click.IntRange(1, 65535)
PATH = click.Path(path_type=Path)
POSITIVE = click.FloatRange(min=0, min_open=True)


def env(name: str) -> str:
    return f"{ENV_PREFIX}{name}"


@dataclass(frozen=True)
class _Spec:
    help: str
    type: Any
    env: str | None  # None: the field's name in capitals
    fallback_env: tuple[str, ...]  # tried after ours, without our prefix
    show_default: bool | str
    is_flag: bool
    empty_is_a_value: bool


class _EmptyIsAValue(click.Option):
    """click skips empty variables; for `--srv-name` empty means "disabled"."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        names = [self.envvar] if isinstance(self.envvar, str) else list(self.envvar or ())
        for name in names:
            if name in os.environ:
                return os.environ[name]
        return None


def option(
    default: Any, help: str, *, type: Any = None, env: str | None = None,  # noqa: A002
    fallback_env: tuple[str, ...] = (), show_default: bool | str = True,
    is_flag: bool = False, empty_is_a_value: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    spec = _Spec(help, type, env, fallback_env, show_default, is_flag, empty_is_a_value)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"option": spec})
    return dataclasses.field(default=default, metadata={"option": spec})


def _spec(field: dataclasses.Field[Any]) -> _Spec:
    spec: _Spec = field.metadata["option"]
    return spec


def option_fields(group: Any) -> list[dataclasses.Field[Any]]:
    """The group's fields that are options (a plain field has no flag)."""
    return [f for f in dataclasses.fields(group) if "option" in f.metadata]


def env_name(field: dataclasses.Field[Any]) -> str:
    return env(_spec(field).env or field.name.upper())


def _click_option(field: dataclasses.Field[Any]) -> Callable[[F], F]:
    spec = _spec(field)
    has_factory = field.default_factory is not dataclasses.MISSING
    default = field.default_factory if has_factory else field.default
    return click.option(
        "--" + field.name.replace("_", "-"), field.name,
        envvar=[env_name(field), *spec.fallback_env], show_envvar=True, default=default,
        show_default=spec.show_default, type=spec.type, is_flag=spec.is_flag, help=spec.help,
        cls=_EmptyIsAValue if spec.empty_is_a_value else click.Option,
    )


def use(group: type[Any], param: str) -> Callable[[F], F]:
    """Add `group`'s options to a command, which receives them as one value named `param`."""
    fields = option_fields(group)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = group(**{f.name: kwargs.pop(f.name) for f in fields})
            if hasattr(value, "check"):
                value.check()  # what a type cannot say, e.g. "a directory if it exists"
            kwargs[param] = value
            return func(*args, **kwargs)

        for field in reversed(fields):  # click lists options in the order they are declared
            _click_option(field)(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def to_env(*groups: Any) -> dict[str, str]:
    """The environment that gives the commands these option values: every value that differs
    from its option's default (a default needs no variable)."""
    result: dict[str, str] = {}
    for group in groups:
        for field in option_fields(group):
            value = getattr(group, field.name)
            factory = field.default_factory
            default = field.default if factory is dataclasses.MISSING else factory()
            if value != default:
                result[env_name(field)] = str(value)
    return result


# -- the groups --------------------------------------------------------------------------


@dataclass(frozen=True)
class PodOptions:
    pod_name: str = option(
        None, "This pod's name, <statefulset>-<ordinal>.", fallback_env=("POD_NAME",),
        show_default="$POD_NAME, else the hostname", factory=socket.gethostname,
    )
    service: str = option("mysql", "The headless Service that names the pods.")
    server_id_base: int = option(100, "server-id = base + ordinal.",
                                  type=click.IntRange(min=1))

    def identity(self) -> Identity:
        return identify(self.pod_name, self.service, self.server_id_base)


@dataclass(frozen=True)
class PeerOptions:
    peer_host_template: str = option(
        "{statefulset}-{ordinal}.{service}",
        "How a peer's host is named from {statefulset}, {ordinal}, {service}.",
    )
    mysql_port: int = option(3306, "Server port (ordinal 0's, with a stride).", type=PORT)
    clone_port: int = option(3307, "Port of the sidecar's backup stream.", type=PORT)
    http_port: int = option(8080, "Port of the sidecar's probes and metrics.", type=PORT)
    peer_port_stride: int = option(0, "Added per ordinal to every port (local sets on one "
                                       "address).", type=click.IntRange(min=0))

    def directory(self, identity: Identity) -> PeerDirectory:
        return PeerDirectory(
            statefulset=identity.statefulset, service=identity.service,
            host_template=self.peer_host_template, mysql_port=self.mysql_port,
            clone_port=self.clone_port, http_port=self.http_port,
            port_stride=self.peer_port_stride,
        )

    @classmethod
    def of(cls, peers: PeerDirectory) -> PeerOptions:
        return cls(peers.host_template, peers.mysql_port, peers.clone_port, peers.http_port,
                   peers.port_stride)


@dataclass(frozen=True)
class DataDirOptions:
    data_dir: Path = option(Path("/var/lib/mysql"), "The server's data directory.",
                             type=PATH)

    def check(self) -> None:
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ConfigError(f"data dir {self.data_dir} is not a directory")


@dataclass(frozen=True)
class FlavorOptions:
    flavor: str = option(Flavor.MARIADB,
                          "Server family; selects the backup tool and SQL dialect.",
                          type=click.Choice(Flavor.ALL))


@dataclass(frozen=True)
class RootPasswordOptions:
    root_password_file: Path = option(
        SECRETS_DIR / "root-password", "File holding the server's root password.", type=PATH,
    )


@dataclass(frozen=True)
class SecretOptions:
    replication_password_file: Path = option(
        SECRETS_DIR / "replication-password",
        "File holding the replication account's password.", type=PATH,
    )
    backup_password_file: Path = option(
        SECRETS_DIR / "backup-password",
        "File holding the backup account's password (the donor's backup tool).", type=PATH,
    )
    clone_token_file: Path = option(
        SECRETS_DIR / "clone-token",
        "File holding the token donor and receiver authenticate each other with.", type=PATH,
    )
    replication_user: str = option("repl", "Account replicas connect with.")
    backup_user: str = option("mysqlsts_backup", "Account the donor's backup tool uses.")

    def files(self, root: RootPasswordOptions) -> SecretFiles:
        return SecretFiles(
            root_password=root.root_password_file,
            replication_password=self.replication_password_file,
            backup_password=self.backup_password_file,
            clone_token=self.clone_token_file,
        )

    def accounts(self) -> Accounts:
        return Accounts(replication_user=self.replication_user, backup_user=self.backup_user)


@dataclass(frozen=True)
class LocalServerOptions:
    local_host: str = option("127.0.0.1", "Where this pod's own server listens.")

    def server(self, identity: Identity, peers: PeerDirectory) -> LocalServer:
        """The pod's own server: on its own host, at its own ordinal's port."""
        return LocalServer(host=self.local_host, port=peers.address(identity.ordinal).mysql_port)


class _MemoryQuantity(click.ParamType):  # type: ignore[type-arg]  # generic in click 8.2+ only
    """A Kubernetes memory quantity (`2Gi`, `512M`, or bytes as the downward API gives them)."""

    name = "BYTES"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == "" or isinstance(value, int):
            return value or None
        try:
            return parse_memory_quantity(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@dataclass(frozen=True)
class InitOptions:
    config_map_dir: Path = option(Path("/mnt/config-map"),
                                   "Mounted ConfigMap with master.cnf and slave.cnf.", type=PATH)
    conf_dir: Path = option(Path("/mnt/conf.d"),
                             "Where the server reads extra cnf files (its conf.d).", type=PATH)
    server_memory_limit: int | None = option(
        None, "The server container's memory limit (downward API limits.memory, or e.g. 2Gi); "
              "sizes innodb_buffer_pool_size. Unset: the server's default.",
        type=_MemoryQuantity(),
    )
    buffer_pool_percent: int = option(
        60, "Share of --server-memory-limit given to the InnoDB buffer pool.",
        type=click.IntRange(5, 90),
    )


@dataclass(frozen=True)
class ListenOptions:
    listen_address: str = option(
        "0.0.0.0", "Address the HTTP endpoints bind (the sidecar's, its donor's, and the clone "
                   "step's progress endpoints on the same http port).",
    )


@dataclass(frozen=True)
class CloneOptions:
    srv_name: str | None = option(
        None, "DNS SRV name listing the peers, tried when the previous ordinal is not ready; "
              "empty disables.", show_default="_mysql._tcp.<service>",
        empty_is_a_value=True,
    )
    clone_deadline: float = option(900.0, "Seconds to wait for a ready donor before failing.",
                                    type=click.FloatRange(min=0))
    clone_idle_timeout: float = option(
        IDLE_TIMEOUT, "Seconds of silence from the donor after which the stream counts as broken.",
        type=click.FloatRange(min=1),
    )
    clone_parallel: int = option(2, "Extraction threads (mbstream/xbstream --parallel).",
                                  type=click.IntRange(1, 64))
    clone_progress_interval: float = option(
        5.0, "Seconds between progress log lines.", type=click.FloatRange(min=0.1),
    )
    prepare_memory: str = option("256M", "--use-memory for the backup tool's prepare step.",
                                  env="CLONE_PREPARE_MEMORY")


@dataclass(frozen=True)
class IsolationOptions:
    """The isolation fence of a primary's sidecar (docs/sidecar.md, "Isolation fence")."""

    isolation_fence_after: int = option(
        60, "A primary that reaches neither the API endpoint nor any peer's sidecar for this "
            "long (seconds) turns read-only.", type=click.IntRange(min=1),
    )
    isolation_api_endpoint: str = option(
        "kubernetes.default.svc:443", "host:port the fence probes with a TLS handshake (no "
        "credentials); empty: only the peers count.", empty_is_a_value=True,
    )
    replicas: int = option(
        1, "Pods in the set (the StatefulSet's replicas): the fence probes ordinals 0..N-1 "
           "but its own; 1 never fences.", type=click.IntRange(min=1),
    )

    def check(self) -> None:
        endpoint = self.isolation_api_endpoint
        if not endpoint:
            return
        if host_port(endpoint) is None:
            raise ConfigError(f"isolation API endpoint {endpoint!r} must be host:port, or empty")


def _in_cluster_api_url() -> str:
    """The API server as a pod sees it (the variables the kubelet sets in every container);
    "" outside a cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return ""
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


LEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DEFAULT_PRIMARY_LEASE = "mysql-primary"  # the Lease the kustomize base ships


@dataclass(frozen=True)
class PrimaryLeaseOptions:
    """The primary's lease (docs/takeover.md, "Writable only under a lease"). On by default:
    every server starts read-only and the primary's sidecar makes it writable only while it holds
    the lease; `none` opts out (the sidecar then makes its primary writable at set-up)."""

    primary_lease: str = option(
        "kubernetes", "Where the primary's lease lives: kubernetes (the Lease "
        f"{DEFAULT_PRIMARY_LEASE} in the pod's namespace) or kubernetes:NAME (another Lease "
        "there); file:PATH (a file every contender locks; `mysqlsts local` and tests); or none "
        "(no lease: the primary is writable once set up). The primary's server is writable only "
        "while its sidecar holds the lease, and is shut down when it cannot renew in time.",
    )
    lease_duration: float = option(
        15.0, "Seconds a lease lasts unrenewed: another holder may take it after watching it "
              "unchanged this long.", type=POSITIVE,
    )
    lease_renew_deadline: float = option(
        10.0, "Seconds after its last renew began that the holder fences its server unless it "
              "renewed again (monotonic clock); shorter than --lease-duration.", type=POSITIVE,
    )
    lease_renew_interval: float = option(2.0, "Seconds between renews.", type=POSITIVE)
    lease_holder_uid: str = option(
        "", "Added to the pod's name in the lease's holder, so a re-created pod of the same name "
            "is another holder (the downward API's metadata.uid); a restarted container keeps it.",
        fallback_env=("POD_UID",), show_default="$POD_UID, else none",
    )
    lease_namespace: str = option(
        "", "The namespace of the kubernetes lease's Lease (the downward API's "
            "metadata.namespace).", fallback_env=("POD_NAMESPACE",),
        show_default="$POD_NAMESPACE, else the service account's namespace file",
    )
    lease_api_url: str = option(
        None, "The Kubernetes API server the kubernetes lease is read from and written to.",
        factory=_in_cluster_api_url,
        show_default="https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT",
    )

    def holder(self, pod_name: str) -> str:
        return f"{pod_name}/{self.lease_holder_uid}" if self.lease_holder_uid else pod_name

    @property
    def enabled(self) -> bool:
        return self.primary_lease != "none"

    @property
    def file(self) -> Path | None:
        """The file store's path (file:PATH), else None."""
        kind, _, rest = self.primary_lease.partition(":")
        return Path(rest) if kind == "file" and rest else None

    @property
    def kubernetes(self) -> str | None:
        """The Lease's name (kubernetes, kubernetes:NAME), else None."""
        kind, colon, rest = self.primary_lease.partition(":")
        if kind != "kubernetes":
            return None
        return rest if colon else DEFAULT_PRIMARY_LEASE

    def timings(self) -> LeaseTimings:
        return LeaseTimings(self.lease_duration, self.lease_renew_deadline,
                            self.lease_renew_interval)

    def check(self) -> None:
        name = self.kubernetes
        if self.enabled and self.file is None and name is None:
            raise ConfigError(f"primary lease {self.primary_lease!r} must be none, kubernetes, "
                              "kubernetes:NAME or file:PATH")
        if name is not None:
            if len(name) > 253 or not LEASE_NAME.fullmatch(name):
                raise ConfigError(f"primary lease {self.primary_lease!r}: {name!r} is not a "
                                  "Kubernetes object name (lowercase letters, digits, '-', '.')")
            # Empty (not in a pod) matters only where the lease is used: the primary's sidecar.
            if self.lease_api_url and not self.lease_api_url.startswith("https://"):
                # The token travels with every request: never in clear text.
                raise ConfigError(f"lease API URL {self.lease_api_url!r} must be "
                                  "https://HOST[:PORT]")
        problems = self.timings().problems()
        if problems:
            raise ConfigError(f"primary lease: {problems[0]}")


@dataclass(frozen=True)
class WatchdogOptions:
    """The mysql container's watchdog (docs/takeover.md, "The watchdog"): the sidecar refreshes
    the heartbeat file while its server may run; `mysqlsts server` stops the server when the
    file stays unchanged. Both containers read the same variables."""

    watchdog_file: str = option(
        "/run/mysqlsts/watchdog/heartbeat",
        "The sidecar's heartbeat file, on a volume both containers share; empty: no watchdog "
        "(the server is only supervised, the sidecar writes nothing).", empty_is_a_value=True,
    )
    watchdog_timeout: float = option(
        10.0, "Seconds the heartbeat may stay unchanged before `mysqlsts server` stops the "
              "server.", type=POSITIVE,
    )
    watchdog_grace: float = option(
        3.0, "Seconds between the watchdog's SIGTERM and its SIGKILL of the server.",
        type=POSITIVE,
    )
    watchdog_startup: float = option(
        120.0, "Seconds the server may run before the sidecar's first heartbeat, on the pod's "
               "first start (after a container restart it starts only once the heartbeat "
               "changes).", type=POSITIVE,
    )

    @property
    def poll(self) -> float:
        """How often the watchdog reads the file (not an option: a tenth of the timeout,
        at most half a second)."""
        return min(0.5, self.watchdog_timeout / 10)

    @property
    def file(self) -> Path | None:
        """The heartbeat file; None: no watchdog."""
        return Path(self.watchdog_file) if self.watchdog_file else None

    def timings(self) -> WatchdogTimings:
        return WatchdogTimings(self.watchdog_timeout, self.watchdog_startup)

    @property
    def bound_file(self) -> Path | None:
        """Beside the heartbeat: the stop bound `mysqlsts server` enforces, written by it before
        it starts the server, read by the primary's sidecar for its self-fence claim."""
        file = self.file
        return None if file is None else file.with_name(file.name + ".bound")

    def stop_bound(self) -> float:
        """The longest a server runs after the sidecar's last heartbeat, with these settings
        (core/watchdog.py); what the sidecar claims is the server's own, from `bound_file`."""
        return stop_bound(self.watchdog_timeout, poll=self.poll, grace=self.watchdog_grace)


@dataclass(frozen=True)
class StreamOptions:
    """The clone stream, on both ends: one environment variable serves the pod's init
    container (the receiver) and its sidecar (the donor)."""

    clone_compression: str = option(
        clone_compression.AUTO, "zstd on the clone stream, when both ends allow it: auto "
        "compresses while the link, not the donor's CPU, is the bottleneck; zstd every chunk "
        "that shrinks; none never.",
        type=click.Choice(clone_compression.CHOICES),
    )


@dataclass(frozen=True)
class ReplicationOptions:
    """How a replica's sidecar points its server at the primary (once, at set-up)."""

    primary_host: str | None = option(None, "Where replicas replicate from.",
                                       show_default="ordinal 0's peer host")
    primary_port: int | None = option(None, "The primary's server port.", type=PORT,
                                       show_default="ordinal 0's server port")
    connect_retry: int = option(10, "MASTER_CONNECT_RETRY: seconds between a replica's "
                                     "reconnects.", type=click.IntRange(1, 86400))


@dataclass(frozen=True)
class LoopOptions:
    """The sidecar's control loop and what its probes answer (docs/sidecar.md, "Readiness")."""

    poll_interval: float = option(1.0, "Seconds between observations of the local server.",
                                   type=click.FloatRange(min=0.1))
    max_lag: float = option(30.0, "A replica whose heartbeat lag exceeds this (seconds) is "
                                   "not ready.", type=POSITIVE)
    max_staleness_primary_down: float = option(
        300.0, "While its primary is unreachable, a replica that was current and has applied all "
               "it received serves reads until its last heartbeat is this old (seconds).",
        type=POSITIVE,
    )
    liveness_threshold: float = option(
        30.0, "/livez fails when the sidecar's own loop has not run for this long (seconds).",
        type=POSITIVE,
    )
    # Not options. Per-query timeouts of the loop and the workers on the local server: a hung
    # server costs a probe at most this, never a hang.
    connect_timeout: float = 1.0
    read_timeout: float = 1.0
    # Set-up statements (CREATE USER, CHANGE MASTER) may wait for locks; longer than a poll.
    setup_timeout: float = 10.0
    # Longest pause between connection attempts while the server is down.
    max_backoff: float = 5.0
    # How often a still-unreachable server is logged again.
    waiting_log_every: float = 30.0

    def check(self) -> None:
        for name in ("poll_interval", "connect_timeout", "read_timeout", "max_lag",
                     "max_staleness_primary_down", "liveness_threshold"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")

    @property
    def stale_after(self) -> float:
        """An observation older than this means the loop is stuck: not ready."""
        longest_pause = max(self.max_backoff, self.poll_interval)
        return longest_pause + 2 * self.poll_interval + self.connect_timeout + self.read_timeout


_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@dataclass(frozen=True)
class HeartbeatOptions:
    """The primary's heartbeat writer, and the database of the sidecar's own tables."""

    heartbeat_interval: float = option(1.0, "Seconds between the primary's heartbeat writes.",
                                        type=click.FloatRange(min=0.05))
    # The flag keeps its first name; the database also holds the consistency check's tables.
    heartbeat_database: str = option(
        "mysqlsts", "Database of the sidecar's own tables: the pt-heartbeat compatible "
        "heartbeat table and the consistency check's checksum tables.",
    )

    def check(self) -> None:
        if not _IDENTIFIER.match(self.heartbeat_database):
            raise ConfigError(
                f"heartbeat database {self.heartbeat_database!r} must be 1-64 letters, "
                "digits or underscores"
            )
        if self.heartbeat_interval <= 0:
            raise ConfigError("heartbeat-interval must be positive")


@dataclass(frozen=True)
class DonorOptions:
    """The sidecar's clone donor (the stream's compression is `StreamOptions`, both ends')."""

    no_donor: bool = option(False, "Do not serve backup streams on the clone port.",
                             is_flag=True, show_default=False)
    clone_max_rate: float | None = option(
        None, "Cap on a clone stream's bytes per second on the wire, to spare the donor's "
              "disk and network.", type=POSITIVE, show_default="unlimited",
    )


@dataclass(frozen=True)
class ArchiveWorkerOptions:
    """The sidecar's binlog archiver (docs/backup.md, "The binlog archive"): opt-in, on every
    pod of the set, one writing at a time (the store's archive lease)."""

    archive_store: str = option(
        "", "Archive the primary's binary log into this object store (s3:// or file://) from "
        "every pod's sidecar, one at a time under the store's archive lease; empty: no "
        "archiver.", show_default=False)
    archive_primary_patience: float = option(
        3.0, "Lease durations the primary's archiver waits, the archive lease unchanged (free, "
        "or its holder silent), before it archives itself; it then gives the lease up every 20 "
        "durations for a replica's archiver. Replicas contend at once. 0: the primary contends "
        "at once and keeps the lease (a set of one pod).", type=click.FloatRange(min=0))
    archive_encryption_key_file: Path | None = option(
        None, "File holding the key segments are encrypted with at rest (the backups' key). "
        "None: not encrypted.", type=PATH, show_default=False)
    archive_server_id: int = option(
        4000000001, "The server id the archiver announces to the primary: unique among its "
        "replicas.", type=click.IntRange(1, 4294967295))
    archive_lease_seconds: float = option(
        15.0, "How long the store's archive lease lasts unrenewed: another archiver on the same "
        "store takes over this long after the holder stops renewing (the holder stops writing "
        "after two thirds of it).", type=click.FloatRange(1, 3600))
    archive_binlog_keep_hours: float = option(
        24.0, "The primary's sidecar purges an archived binary log only once the file after it "
        "has existed this long (as the sidecar saw it), for replicas that resume from it.",
        type=click.FloatRange(min=0))
    archive_purge_interval: float = option(
        60.0, "Seconds between the primary's sidecar's purges of archived binary logs (each "
        "also refreshes the mysqlsts_binlog_* metrics).", type=POSITIVE)


@dataclass(frozen=True)
class ConsistencyOptions:
    """The consistency check (docs/sidecar.md, "Consistency check")."""

    consistency_check_interval: int = option(
        86400, "Seconds between the primary's consistency passes (pt-table-checksum style, "
               "docs/sidecar.md), counted from the last completed one; 0 disables them.",
        type=click.IntRange(min=0),
    )
    consistency_chunk_rows: int = option(
        1000, "Rows per chunk of a consistency pass (ranges of the primary key's first column).",
        type=click.IntRange(min=1),
    )
    consistency_duty_cycle: float = option(
        0.25, "Largest share of wall time a consistency pass keeps the primary busy: it pauses "
              "after each chunk in proportion to the chunk's own time.",
        type=click.FloatRange(0, 1, min_open=True),
    )
    # Not options. Every sidecar reads its checksum table's pass record every `poll` seconds
    # and the whole summary when that changed, else every `reread`.
    poll: float = 5.0
    reread: float = 60.0
    # A pass's statements may wait for a chunk's scan: far longer than a poll.
    pass_timeout: float = 600.0
