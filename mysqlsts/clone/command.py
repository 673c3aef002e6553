"""`mysqlsts clone`: the init step that gives an empty replica a verified copy of a peer's data.

Observe (ordinal, data dir state) → decide (skip, clone, wipe and clone, refuse) → act:
find a donor and authenticate, and only then wipe an interrupted clone and fill the data dir
through `fill_data_dir` (marker → staging → prepare → record → sync → move → remove marker).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from prometheus_client import CollectorRegistry, generate_latest

from mysqlsts.adapters.datadir import (
    count_clone_failure,
    fill_data_dir,
    read_clone_failures,
    read_set_record,
    state_of,
    wipe_incomplete,
    write_clone_record,
    write_set_record,
)
from mysqlsts.adapters.fs import read_secret
from mysqlsts.adapters.http import Endpoints, HttpServer
from mysqlsts.clone.plan import decide, srv_candidates
from mysqlsts.clone.progress import ClonePhase, CloneProgress, ProgressCollector, StepTimes
from mysqlsts.clone.receiver import (
    Session,
    Timeouts,
    find_donor,
    open_session,
    prepare,
    read_coordinates,
)
from mysqlsts.clone.store_options import FromBackupOptions, S3Options, recovery_target
from mysqlsts.clone.tools import BackupTool, tool_for
from mysqlsts.core.backup_manifest import Manifest
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.core.clone_record import DonorAddress, record_clone
from mysqlsts.core.datadir import Fill
from mysqlsts.core.health import Verdict
from mysqlsts.core.identity import Identity
from mysqlsts.core.peers import PeerDirectory
from mysqlsts.core.pitr import Plan, Target
from mysqlsts.core.set_record import recorded_elsewhere, set_name
from mysqlsts.core.version import Flavor
from mysqlsts.errors import CloneError, ConfigError, MysqlstsError, describe
from mysqlsts.options import (
    CloneOptions,
    DataDirOptions,
    FlavorOptions,
    ListenOptions,
    PeerOptions,
    PodOptions,
    RootPasswordOptions,
    SecretOptions,
    StreamOptions,
    use,
)
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.settings import S3Settings

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
    compression: str  # what we offer the donor (--clone-compression)
    # STORE_URL[@BACKUP_ID]: restore from a backup instead of cloning a peer ("" = clone).
    from_backup: str = ""
    s3: S3Settings = S3Settings()
    encryption_key_file: Path | None = None
    # The set's root password file: restored MariaDB data is adopted with it (from_backup).
    root_password_file: Path | None = None
    # With from_backup: restore to this point (the backup is then the newest before it).
    recovery_target: Target | None = None


def _srv_discovery(settings: CloneSettings) -> list[DonorAddress]:
    if not settings.srv_name:
        return []
    from mysqlsts.adapters.dns import lookup_srv

    identity = settings.identity
    ports = {n: settings.peers.address(n).clone_port for n in range(identity.ordinal)}
    return srv_candidates(lookup_srv(settings.srv_name), identity.statefulset,
                          identity.ordinal, ports)


def _populate(settings: CloneSettings, session: Session, tool: BackupTool,
              started: float, progress: CloneProgress, steps: StepTimes) -> Any:
    def on_bytes(total: int) -> None:
        progress.bytes = total

    def populate(staging: Path) -> None:
        progress.phase = ClonePhase.STREAMING
        with steps.step("stream"):
            received = session.receive_into(staging, tool, settings.parallel,
                                            settings.timeouts, on_bytes)
            session.close()
        progress.phase = ClonePhase.PREPARING
        with steps.step("prepare"):
            prepare(staging, tool, settings.prepare_memory)
        with steps.step("record"):
            record = record_clone(
                read_coordinates(staging), session.candidate, settings.flavor, received,
                time.monotonic() - started, datetime.now(UTC).isoformat(timespec="seconds"),
            )
            write_clone_record(staging, record)
            write_set_record(staging, set_name(settings.identity))
        position = record.coordinates
        log.info("clone recorded coordinates gtid=%s binlog_file=%s binlog_position=%s "
                 "origin=%s", position.gtid, position.binlog_file, position.binlog_position,
                 record.coordinates_origin)
        progress.phase = ClonePhase.MOVING  # fill_data_dir moves the staging dir next

    return populate


def _restore(settings: CloneSettings, progress: CloneProgress) -> str:
    """The clone step with a backup as its source: any ordinal, ordinal 0 included (a set
    created from a backup); the same staging dir, prepare, record and marker. With no
    target and no backup named: the latest recoverable point (point_in_time.choose_latest)."""
    from mysqlsts.clone.from_backup import choose_backup, restore_into, restore_skipped
    from mysqlsts.clone.store_options import keys_from_file, split_backup_url
    from mysqlsts.store.open import open_store

    # The init step runs at every pod start: a pod whose data is in place starts whether or
    # not the store answers (and its key file is readable) today.
    skipped = restore_skipped(settings.data_dir)
    if skipped:
        return skipped
    url, wanted = split_backup_url(settings.from_backup)
    store = open_store(url, settings.s3)
    keys = keys_from_file(settings.encryption_key_file)
    if settings.recovery_target is not None:
        return _recover(settings, store, keys, wanted, settings.recovery_target, progress)
    if wanted:
        manifest = choose_backup(store, keys, wanted)
    else:
        from mysqlsts.clone.point_in_time import choose_latest

        latest = choose_latest(store, keys)
        log.info("%s", latest.said)
        if latest.plan is not None:
            return _recover(settings, store, keys, "", Target(), progress,
                            (latest.plan, latest.manifest), latest.records)
        manifest = latest.manifest
    # Restored data carries the backup's accounts; this set's sidecar logs in with this set's
    # root password, so the restore adopts the data (docs/backup.md, "Adopting restored data").
    # MySQL data keeps the backup's root password (no adoption built for it yet).
    root_password = None
    if settings.root_password_file is not None and manifest.flavor == Flavor.MARIADB:
        root_password = read_secret(settings.root_password_file, "root password")
    return restore_into(settings.data_dir, store, manifest, keys,
                        parallel=settings.parallel, prepare_memory=settings.prepare_memory,
                        set_record=set_name(settings.identity), root_password=root_password)


def _recover(settings: CloneSettings, store: ObjectStore, keys: BackupKeys | None,
             wanted: str, target: Target, progress: CloneProgress,
             planned: tuple[Plan, Manifest] | None = None,
             index: Sequence[SegmentRecord] | None = None) -> str:
    """The restore step to a point in time (MariaDB): the backup is the newest the target is
    reached from, the archive's transactions applied before the marker goes."""
    from mysqlsts.clone.point_in_time import recover_into

    if wanted:
        raise ConfigError(f"--from-backup names backup {wanted} and a recovery target is "
                          "given: a recovery chooses its backup (give the store URL alone)")
    root_password = None
    if settings.root_password_file is not None:
        root_password = read_secret(settings.root_password_file, "root password")
    return recover_into(settings.data_dir, store, keys, target,
                        prepare_memory=settings.prepare_memory,
                        set_record=set_name(settings.identity), root_password=root_password,
                        on_replay=progress.replayed, planned=planned, index=index)


def run_clone(settings: CloneSettings, progress: CloneProgress | None = None) -> str:
    """Clone if this pod needs it; returns the sentence to log. `progress` follows it."""
    progress = CloneProgress(failures=0) if progress is None else progress
    identity, data_dir = settings.identity, settings.data_dir
    try:
        # Every pod, the primary too, and a restore: the first look at the volume before a
        # server starts.
        elsewhere = recorded_elsewhere(read_set_record(data_dir), set_name(identity))
        if elsewhere is not None:
            raise ConfigError(elsewhere)
        if settings.from_backup:
            return _restore(settings, progress)
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
    steps = StepTimes()

    def attempt(candidate: DonorAddress) -> Session:
        progress.donor_attempts += 1
        return open_session(candidate, token, settings.timeouts)

    progress.phase = ClonePhase.WAITING_FOR_DONOR
    with steps.step("donor"):
        session = find_donor(
            DonorAddress(previous.ordinal, previous.host, previous.clone_port),
            lambda: _srv_discovery(settings), attempt, settings.deadline_seconds,
        )
    progress.donor = str(session.candidate)
    try:
        log.info("clone authenticated with donor=%s data_dir=%s", session.candidate, data_dir)
        if fill is Fill.REDO:
            log.warning("data dir %s holds an interrupted clone; wiping it", data_dir)
            wipe_incomplete(data_dir)
        fill_data_dir(data_dir, _populate(settings, session, tool, started, progress, steps),
                      steps.step)
    except Exception:
        progress.phase = ClonePhase.FAILED
        # Counted only once the donor is authenticated: before that nothing may be written here.
        try:
            failures = count_clone_failure(data_dir)
            progress.failures = failures
            log.warning("clone failed after authentication failures=%d data_dir=%s",
                        failures, data_dir)
        except OSError as exc:
            log.warning("cannot count the failed clone in %s: %s", data_dir, exc.strerror)
        raise
    finally:
        session.close()
    progress.phase = ClonePhase.DONE
    return (f"clone complete: {identity.pod_name} from {session.candidate} "
            f"in {time.monotonic() - started:.1f}s ({steps.summary()}) data_dir={data_dir}")


@click.command()
@use(PodOptions, "pod")
@use(PeerOptions, "peer")
@use(RootPasswordOptions, "root")
@use(SecretOptions, "secret")
@use(DataDirOptions, "data")
@use(FlavorOptions, "flavor")
@use(CloneOptions, "options")
@use(ListenOptions, "listen")
@use(StreamOptions, "stream")
@use(FromBackupOptions, "backup")
@use(S3Options, "s3")
def clone(
    pod: PodOptions, peer: PeerOptions, root: RootPasswordOptions, secret: SecretOptions,
    data: DataDirOptions, flavor: FlavorOptions, options: CloneOptions, listen: ListenOptions,
    stream: StreamOptions, backup: FromBackupOptions, s3: S3Options,
) -> None:
    """Receive, verify and prepare a physical backup from a peer, or restore one from an
    object store with --from-backup (init container)."""
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
        from_backup=backup.from_backup,
        s3=s3.settings(),
        encryption_key_file=backup.encryption_key_file,
        root_password_file=root.root_password_file,
        recovery_target=recovery_target(backup.to_gtid, backup.to_time),
    )
    if settings.recovery_target is not None and not settings.from_backup:
        raise ConfigError("--to-gtid/--to-time recover from a store: give --from-backup URL")
    progress = CloneProgress(failures=_volume_failures(data.data_dir))
    own = settings.peers.address(identity.ordinal)
    with _serving(listen.listen_address, own.http_port, progress):
        log.info("%s", run_clone(settings, progress))


def _volume_failures(data_dir: Path) -> int:
    try:
        return read_clone_failures(data_dir)
    except (OSError, MysqlstsError) as exc:
        log.warning("ignoring the clone-failure count in %s: %s", data_dir, describe(exc))
        return 0


def clone_endpoints(progress: CloneProgress, registry: CollectorRegistry) -> Endpoints:
    """The sidecar's endpoints, answered by the clone step: alive, not ready, progress."""
    def readyz() -> Verdict:
        return Verdict(False, f"clone in progress: {progress.snapshot().phase}")

    return Endpoints(
        livez=lambda: Verdict(True, "alive: clone in progress"), readyz=readyz,
        metrics=lambda: generate_latest(registry),
        status=lambda: {"clone": progress.snapshot().as_dict()},
    )


@contextlib.contextmanager
def _serving(address: str, port: int, progress: CloneProgress) -> Iterator[None]:
    """/metrics and /readyz on the sidecar's port while the clone runs, so the PodMonitor
    scrapes it unchanged; a port in use is a warning, never a failed clone."""
    registry = CollectorRegistry()
    registry.register(ProgressCollector(progress))
    try:
        server = HttpServer(address, port, clone_endpoints(progress, registry))
    except OSError as exc:
        log.warning("clone progress not served: cannot listen on %s:%d: %s", address, port,
                    exc.strerror or exc)
        yield
        return
    server.start()
    try:
        yield
    finally:
        server.stop()
