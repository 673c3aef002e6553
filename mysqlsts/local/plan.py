"""What a local pod runs: the same containers and environment a StatefulSet pod gets.

Pure: the plan is computed from the spec and the set's layout; `pod.py` carries it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mysqlsts.clone.store_options import FromBackupOptions
from mysqlsts.core.peers import PeerAddress
from mysqlsts.core.version import Flavor
from mysqlsts.local import store_access
from mysqlsts.local.mariadbd import ServerSpec, supervised_argv
from mysqlsts.local.spec import HOST, SetLayout, SetSpec
from mysqlsts.options import (
    ENV_PREFIX,
    ArchiveWorkerOptions,
    CloneOptions,
    DataDirOptions,
    FlavorOptions,
    InitOptions,
    ListenOptions,
    LocalServerOptions,
    PeerOptions,
    PodOptions,
    PrimaryLeaseOptions,
    RootPasswordOptions,
    SecretOptions,
    WatchdogOptions,
    to_env,
)

# Inherited variables we never pass on: a pod's env is exactly what its StatefulSet gives.
# Except the log level, the outage window and the primary and archive leases' timings, which
# one edits in the StatefulSet's env too (tests shorten them to see a set cross them).
_PREFIX = ENV_PREFIX
_PASSED_THROUGH = frozenset({"MYSQLSTS_LOG_LEVEL", "MYSQLSTS_MAX_STALENESS_PRIMARY_DOWN",
                             "MYSQLSTS_LEASE_DURATION", "MYSQLSTS_LEASE_RENEW_DEADLINE",
                             "MYSQLSTS_LEASE_RENEW_INTERVAL", "MYSQLSTS_ARCHIVE_LEASE_SECONDS",
                             "MYSQLSTS_ARCHIVE_BINLOG_KEEP_HOURS",
                             "MYSQLSTS_ARCHIVE_PURGE_INTERVAL"})


@dataclass(frozen=True)
class Step:
    """One container: `init` steps run to completion in order; `main` ones run together."""

    name: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class PodPlan:
    ordinal: int
    name: str
    address: PeerAddress
    env: Mapping[str, str]
    init_steps: tuple[Step, ...]
    server: ServerSpec
    server_step: Step  # the server container: `mysqlsts server -- <mariadbd's arguments>`
    sidecar: Step


def archive_primary_patience(replicas: int) -> float:
    """How long mysql-0's archiver waits for the archive lease: the default (the replicas'
    archivers first), at once in a one-pod set."""
    default = ArchiveWorkerOptions().archive_primary_patience
    return default if replicas > 1 else 0.0


def pod_env(spec: SetSpec, layout: SetLayout, ordinal: int) -> dict[str, str]:
    """The env block of the StatefulSet, pointed at this set's files and loopback ports."""
    pod = layout.pod(spec.pod_name(ordinal))
    return to_env(
        PodOptions(spec.pod_name(ordinal), spec.service, spec.server_id_base),
        FlavorOptions(Flavor.MARIADB),
        # Ordinal 0's ports: every command adds ordinal × stride through PeerDirectory.
        PeerOptions.of(spec.peers()),
        LocalServerOptions(local_host=HOST),
        ListenOptions(listen_address=HOST),
        CloneOptions(srv_name=""),  # no DNS here: the clone tries no SRV lookup
        DataDirOptions(pod.data),
        InitOptions(config_map_dir=layout.config_map, conf_dir=pod.conf),
        RootPasswordOptions(layout.secret("root-password")),
        SecretOptions(
            replication_password_file=layout.secret("replication-password"),
            backup_password_file=layout.secret("backup-password"),
            clone_token_file=layout.secret("clone-token"),
        ),
        # A restored set: mysql-0's clone step restores (once; later starts skip it), the
        # others clone from their peers as in any set.
        FromBackupOptions(from_backup=spec.restore_from if ordinal == 0 else "",
                          to_gtid=spec.restore_to_gtid if ordinal == 0 else "",
                          to_time=spec.restore_to_time if ordinal == 0 else ""),
        # A set with a store archives its binary log there, as a StatefulSet given
        # --archive-store does: every pod gets the same variables, every sidecar runs an
        # archiver and one writes at a time (the store's archive lease), a replica's first.
        ArchiveWorkerOptions(archive_store=spec.store,
                             archive_primary_patience=archive_primary_patience(spec.replicas))
        if spec.store else ArchiveWorkerOptions(),
        # The server container's watchdog and the sidecar's heartbeat, in the pod's run dir
        # (its shared emptyDir): a SIGKILLed or SIGSTOPped sidecar stops the server.
        WatchdogOptions(watchdog_file=str(pod.watchdog_heartbeat)),
        # The primary lease in a file every pod of the set contends for (a StatefulSet's pods
        # use the Kubernetes Lease, the option's default); the holder adds POD_UID, which the
        # pod process makes anew each time it is created (pod.py).
        PrimaryLeaseOptions(primary_lease=f"file:{layout.primary_lease}"),
        # How both reach an s3:// store (`--s3-*` of `up` or `restore`): every pod, as a
        # StatefulSet's env block gives every container the same variables.
        store_access.options(spec.s3),
    )


def merged_env(inherited: Mapping[str, str], pod: Mapping[str, str]) -> dict[str, str]:
    """The process env: the host's (PATH, locale) minus any stray MYSQLSTS_*, plus the pod's."""
    kept = {
        key: value
        for key, value in inherited.items()
        if not key.startswith(_PREFIX) or key in _PASSED_THROUGH
    }
    kept.pop("POD_NAME", None)
    kept.pop(POD_UID, None)
    return {**kept, **pod}


POD_UID = "POD_UID"  # the downward API's metadata.uid in a StatefulSet pod


def plan_pod(spec: SetSpec, layout: SetLayout, ordinal: int, tool: tuple[str, ...]) -> PodPlan:
    """`tool` is how to run the console script, e.g. ("/venv/bin/mysqlsts",)."""
    name = spec.pod_name(ordinal)
    pod = layout.pod(name)
    address = spec.peers().address(ordinal)
    init_steps = [Step("init", (*tool, "init")), Step("clone", (*tool, "clone"))]
    if ordinal == 0:
        # What the official image's entrypoint does before the server starts: initialise an
        # empty data dir. Replicas never bootstrap; their data comes from a clone.
        init_steps.append(Step("bootstrap", (*tool, "bootstrap")))
    server = ServerSpec(
        data_dir=pod.data, conf_dir=pod.conf, run_dir=pod.run, port=address.mysql_port,
        host=HOST, log_dir=pod.logs,
    )
    return PodPlan(
        ordinal=ordinal,
        name=name,
        address=address,
        env=pod_env(spec, layout, ordinal),
        init_steps=tuple(init_steps),
        server=server,
        server_step=Step("server", tuple(supervised_argv(server, tool))),
        sidecar=Step("sidecar", (*tool, "sidecar")),
    )
