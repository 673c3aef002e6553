"""The sidecar's settings: one frozen value built at the CLI edge (or by a test).

Where the pod is (identity, its server, its peers) is resolved here once; everything else is
the option groups of options.py, held whole: each part of the sidecar reads its own group
(`settings.heartbeat` by the heartbeat writer, `settings.consistency` by the consistency
worker, ...), so a new option is a field of its group and the line that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mysqlsts.core.identity import Identity
from mysqlsts.core.peers import PeerAddress
from mysqlsts.options import (
    ArchiveWorkerOptions,
    ConsistencyOptions,
    DonorOptions,
    FlavorOptions,
    HeartbeatOptions,
    IsolationOptions,
    LoopOptions,
    PrimaryLeaseOptions,
    ReplicationOptions,
    SecretOptions,
    StreamOptions,
    WatchdogOptions,
)
from mysqlsts.settings import Accounts, LocalServer, SecretFiles
from mysqlsts.store.settings import S3Settings


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SidecarSettings:
    """What the sidecar does and where."""

    identity: Identity
    local: LocalServer
    secrets: SecretFiles
    # The primary replicas connect to (`mysql-0.mysql:3306` by default).
    primary: Endpoint
    data_dir: Path
    listen_address: str
    http_port: int  # 0 picks a free port (tests)
    clone_port: int | None  # the backup donor's port; None runs no donor
    # Every other pod of the set, whose sidecars the isolation fence probes (none never fences).
    peers: tuple[PeerAddress, ...] = ()
    flavor: str = field(default_factory=lambda: FlavorOptions().flavor)
    accounts: Accounts = field(default_factory=lambda: SecretOptions().accounts())
    loop: LoopOptions = field(default_factory=LoopOptions)
    replication: ReplicationOptions = field(default_factory=ReplicationOptions)
    heartbeat: HeartbeatOptions = field(default_factory=HeartbeatOptions)
    donor: DonorOptions = field(default_factory=DonorOptions)
    stream: StreamOptions = field(default_factory=StreamOptions)
    isolation: IsolationOptions = field(default_factory=IsolationOptions)
    consistency: ConsistencyOptions = field(default_factory=ConsistencyOptions)
    lease: PrimaryLeaseOptions = field(default_factory=PrimaryLeaseOptions)
    archive: ArchiveWorkerOptions = field(default_factory=ArchiveWorkerOptions)
    watchdog: WatchdogOptions = field(default_factory=WatchdogOptions)
    s3: S3Settings = field(default_factory=S3Settings)  # how the archive's store is reached

    def __post_init__(self) -> None:
        # What a type cannot say, checked however the groups were made (flags or a test).
        for group in (self.loop, self.heartbeat, self.isolation, self.lease):
            group.check()

    @property
    def is_primary(self) -> bool:
        return self.identity.is_primary
