"""The sidecar's settings: one frozen value built at the CLI edge (or by a test)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mysqlsts.core.identity import Identity
from mysqlsts.core.peers import PeerAddress
from mysqlsts.errors import ConfigError
from mysqlsts.options import (
    FlavorOptions,
    IsolationOptions,
    ListenOptions,
    PeerOptions,
    SecretOptions,
    SidecarOptions,
    StreamOptions,
)
from mysqlsts.settings import Accounts, LocalServer, SecretFiles

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# Fields that have an option take its default from there: a default is stated once.
_OPTIONS, _PEERS, _ISOLATION = SidecarOptions(), PeerOptions(), IsolationOptions()


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SidecarSettings:
    """What the sidecar does and where; every field with a flag is defined in options.py."""

    identity: Identity
    local: LocalServer
    secrets: SecretFiles
    # The primary replicas connect to (`mysql-0.mysql:3306` by default).
    primary: Endpoint
    data_dir: Path
    flavor: str = FlavorOptions().flavor
    accounts: Accounts = field(default_factory=lambda: SecretOptions().accounts())
    listen_address: str = ListenOptions().listen_address
    http_port: int = _PEERS.http_port  # 0 picks a free port (tests)
    # The backup donor's port; None runs no donor.
    clone_port: int | None = _PEERS.clone_port
    clone_max_rate: float | None = _OPTIONS.clone_max_rate
    clone_compression: str = StreamOptions().clone_compression
    poll_interval: float = _OPTIONS.poll_interval
    # Per-query timeouts of the poller and the heartbeat writer: a hung server costs a probe
    # at most this, never a hang.
    connect_timeout: float = 1.0
    read_timeout: float = 1.0
    # Set-up statements (CREATE USER, CHANGE MASTER) may wait for locks; longer than a poll.
    setup_timeout: float = 10.0
    heartbeat_interval: float = _OPTIONS.heartbeat_interval
    heartbeat_database: str = _OPTIONS.heartbeat_database
    max_lag: float = _OPTIONS.max_lag
    max_staleness_primary_down: float = _OPTIONS.max_staleness_primary_down
    liveness_threshold: float = _OPTIONS.liveness_threshold
    # MASTER_CONNECT_RETRY: seconds between a replica's attempts to reach its primary.
    connect_retry: int = _OPTIONS.connect_retry
    # Longest pause between connection attempts while the server is down.
    max_backoff: float = 5.0
    # How often a still-unreachable server is logged again.
    waiting_log_every: float = 30.0
    # The isolation fence (a primary's only): its window, the API endpoint it probes ("" not),
    # and the peers' sidecars it probes (every other pod of the set; none never fences).
    # The consistency check (docs/sidecar.md): the primary's pass schedule and pace; every
    # sidecar reads its checksum table's pass record every `consistency_poll` seconds and the
    # whole summary when that changed, else every `consistency_reread`.
    consistency_check_interval: float = _OPTIONS.consistency_check_interval
    consistency_chunk_rows: int = _OPTIONS.consistency_chunk_rows
    consistency_duty_cycle: float = _OPTIONS.consistency_duty_cycle
    consistency_poll: float = 5.0
    consistency_reread: float = 60.0
    # A pass's statements may wait for a chunk's scan: far longer than a poll.
    consistency_timeout: float = 600.0
    isolation_fence_after: float = _ISOLATION.isolation_fence_after
    isolation_api_endpoint: str = _ISOLATION.isolation_api_endpoint
    peers: tuple[PeerAddress, ...] = ()

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.heartbeat_database):
            raise ConfigError(
                f"heartbeat database {self.heartbeat_database!r} must be 1-64 letters, "
                "digits or underscores"
            )
        for name in ("poll_interval", "connect_timeout", "read_timeout", "heartbeat_interval",
                     "max_lag", "max_staleness_primary_down", "liveness_threshold"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")

    @property
    def is_primary(self) -> bool:
        return self.identity.is_primary

    @property
    def stale_after(self) -> float:
        """An observation older than this means the loop is stuck: not ready."""
        longest_pause = max(self.max_backoff, self.poll_interval)
        return longest_pause + 2 * self.poll_interval + self.connect_timeout + self.read_timeout
