"""`mysqlsts clone`: the init step that gives an empty replica a verified copy of a peer's data.

Observe (ordinal, data dir state) → decide (skip, clone, wipe and clone, refuse) → act:
find a donor and authenticate, and only then wipe an interrupted clone and fill the data dir
through `fill_data_dir` (marker → staging → prepare → record → move → remove marker).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mysqlsts.adapters.datadir import (
    count_clone_failure,
    fill_data_dir,
    state_of,
    wipe_incomplete,
    write_clone_record,
)
from mysqlsts.adapters.fs import read_secret
from mysqlsts.clone.plan import decide, srv_candidates
from mysqlsts.clone.receiver import (
    Session,
    Timeouts,
    find_donor,
    open_session,
    prepare,
    read_coordinates,
)
from mysqlsts.clone.tools import BackupTool, tool_for
from mysqlsts.core.clone_record import DonorAddress, record_clone
from mysqlsts.core.datadir import Fill
from mysqlsts.core.identity import Identity
from mysqlsts.core.peers import PeerDirectory
from mysqlsts.errors import CloneError, ConfigError
from mysqlsts.options import (
    CloneOptions,
    DataDirOptions,
    FlavorOptions,
    PeerOptions,
    PodOptions,
    RootPasswordOptions,
    SecretOptions,
    StreamOptions,
    use,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CloneSettings:
    identity: Identity
    peers: PeerDirectory
    data_dir: Path
    flavor: str
    token_file: Path
    srv_name: str  # "" disables the DNS fallback
    deadline_seconds: float
    timeouts: Timeouts
    parallel: int
    prepare_memory: str
    compression: str = "auto"  # what we offer the donor: auto|zstd|none


def _srv_discovery(settings: CloneSettings) -> list[DonorAddress]:
    if not settings.srv_name:
        return []
    from mysqlsts.adapters.dns import lookup_srv

    identity = settings.identity
    ports = {n: settings.peers.address(n).clone_port for n in range(identity.ordinal)}
    return srv_candidates(lookup_srv(settings.srv_name), identity.statefulset,
                          identity.ordinal, ports)


def _populate(settings: CloneSettings, session: Session, tool: BackupTool,
              started: float) -> Any:
    def populate(staging: Path) -> None:
        received = session.receive_into(staging, tool, settings.parallel, settings.timeouts)
        session.close()
        prepare(staging, tool, settings.prepare_memory)
        record = record_clone(
            read_coordinates(staging), session.candidate, settings.flavor, received,
            time.monotonic() - started, datetime.now(UTC).isoformat(timespec="seconds"),
        )
        write_clone_record(staging, record)
        position = record.coordinates
        log.info("clone recorded coordinates gtid=%s binlog_file=%s binlog_position=%s "
                 "origin=%s", position.gtid, position.binlog_file, position.binlog_position,
                 record.coordinates_origin)

    return populate


def run_clone(settings: CloneSettings) -> str:
    """Clone if this pod needs it; returns the sentence to log."""
    identity, data_dir = settings.identity, settings.data_dir
    try:
        fill = decide(identity.ordinal, state_of(data_dir))
    except ConfigError as exc:
        raise CloneError(f"{exc} (data dir {data_dir})") from exc
    if fill is None:
        return f"clone skipped: {identity.pod_name} is the primary (ordinal 0)"
    if fill is Fill.SKIP:
        return f"clone skipped: data dir {data_dir} already holds a server's data"
    tool = tool_for(settings.flavor)
    token = read_secret(settings.token_file, "clone token")
    previous = settings.peers.address(identity.ordinal - 1)
    started = time.monotonic()
    session = find_donor(
        DonorAddress(previous.ordinal, previous.host, previous.clone_port),
        lambda: _srv_discovery(settings),
        lambda candidate: open_session(candidate, token, settings.timeouts,
                                       settings.compression),
        settings.deadline_seconds,
    )
    try:
        log.info("clone authenticated with donor=%s data_dir=%s", session.candidate, data_dir)
        if fill is Fill.REDO:
            log.warning("data dir %s holds an interrupted clone; wiping it", data_dir)
            wipe_incomplete(data_dir)
        fill_data_dir(data_dir, _populate(settings, session, tool, started))
    except Exception:
        # Counted only once the donor is authenticated: before that nothing may be written here.
        try:
            failures = count_clone_failure(data_dir)
            log.warning("clone failed after authentication failures=%d data_dir=%s",
                        failures, data_dir)
        except OSError as exc:
            log.warning("cannot count the failed clone in %s: %s", data_dir, exc.strerror)
        raise
    finally:
        session.close()
    return (f"clone complete: {identity.pod_name} from {session.candidate} "
            f"in {time.monotonic() - started:.0f}s data_dir={data_dir}")


@click.command()
@use(PodOptions, "pod")
@use(PeerOptions, "peer")
@use(RootPasswordOptions, "root")
@use(SecretOptions, "secret")
@use(DataDirOptions, "data")
@use(FlavorOptions, "flavor")
@use(CloneOptions, "options")
@use(StreamOptions, "stream")
def clone(
    pod: PodOptions, peer: PeerOptions, root: RootPasswordOptions, secret: SecretOptions,
    data: DataDirOptions, flavor: FlavorOptions, options: CloneOptions, stream: StreamOptions,
) -> None:
    """Receive, verify and prepare a physical backup from a peer (init container)."""
    identity = pod.identity()
    srv_name = options.srv_name
    settings = CloneSettings(
        identity=identity,
        peers=peer.directory(identity),
        data_dir=data.data_dir,
        flavor=flavor.flavor,
        token_file=secret.clone_token_file,
        srv_name=f"_mysql._tcp.{identity.service}" if srv_name is None else srv_name,
        deadline_seconds=options.clone_deadline,
        timeouts=Timeouts(idle=options.clone_idle_timeout,
                          progress_interval=options.clone_progress_interval),
        parallel=options.clone_parallel,
        prepare_memory=options.prepare_memory,
        compression=stream.clone_compression,
    )
    log.info("%s", run_clone(settings))
