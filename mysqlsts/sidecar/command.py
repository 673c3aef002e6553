"""`mysqlsts sidecar`: parse flags into SidecarSettings, run the app until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
from typing import Any

import click

from mysqlsts.clone.store_options import S3Options
from mysqlsts.errors import MysqlstsError
from mysqlsts.options import (
    ArchiveWorkerOptions,
    ConsistencyOptions,
    DataDirOptions,
    DonorOptions,
    FlavorOptions,
    HeartbeatOptions,
    IsolationOptions,
    ListenOptions,
    LocalServerOptions,
    LoopOptions,
    PeerOptions,
    PodOptions,
    PrimaryLeaseOptions,
    ReplicationOptions,
    RootPasswordOptions,
    SecretOptions,
    StreamOptions,
    WatchdogOptions,
    use,
)
from mysqlsts.secrets import Secrets
from mysqlsts.sidecar.settings import Endpoint, SidecarSettings


@click.command()
@use(PodOptions, "pod")
@use(PeerOptions, "peer")
@use(RootPasswordOptions, "root")
@use(SecretOptions, "secret")
@use(DataDirOptions, "data")
@use(FlavorOptions, "flavor")
@use(LocalServerOptions, "local")
@use(ListenOptions, "listen")
@use(LoopOptions, "loop")
@use(ReplicationOptions, "replication")
@use(HeartbeatOptions, "heartbeat")
@use(DonorOptions, "donor")
@use(StreamOptions, "stream")
@use(IsolationOptions, "isolation")
@use(ConsistencyOptions, "consistency")
@use(PrimaryLeaseOptions, "lease")
@use(ArchiveWorkerOptions, "archive")
@use(WatchdogOptions, "watchdog")
@use(S3Options, "s3")
def sidecar(
    pod: PodOptions, peer: PeerOptions, root: RootPasswordOptions, secret: SecretOptions,
    data: DataDirOptions, flavor: FlavorOptions, local: LocalServerOptions,
    listen: ListenOptions, loop: LoopOptions, replication: ReplicationOptions,
    heartbeat: HeartbeatOptions, donor: DonorOptions, stream: StreamOptions,
    isolation: IsolationOptions, consistency: ConsistencyOptions, lease: PrimaryLeaseOptions,
    archive: ArchiveWorkerOptions, watchdog: WatchdogOptions, s3: S3Options,
) -> None:
    """Set up replication, write heartbeats, serve clones, probes and metrics."""
    from mysqlsts.sidecar.app import SidecarApp

    identity = pod.identity()
    peers = peer.directory(identity)
    own = peers.address(identity.ordinal)
    files = secret.files(root)
    # Fail now, as one line, on a missing or empty Secret file; read again where used so a
    # rotated value takes effect without a restart.
    secrets = Secrets(files)
    secrets.root()
    secrets.replication()
    if identity.is_primary or not donor.no_donor:
        secrets.backup()
    if not donor.no_donor:
        secrets.token()
    settings = SidecarSettings(
        identity=identity,
        local=local.server(identity, peers),
        secrets=files,
        primary=Endpoint(replication.primary_host or peers.primary().host,
                         replication.primary_port or peers.primary().mysql_port),
        data_dir=data.data_dir,
        listen_address=listen.listen_address,
        http_port=own.http_port,
        clone_port=None if donor.no_donor else own.clone_port,
        peers=tuple(peers.address(n) for n in range(isolation.replicas)
                    if n != identity.ordinal),
        flavor=flavor.flavor,
        accounts=secret.accounts(),
        loop=loop, replication=replication, heartbeat=heartbeat, donor=donor, stream=stream,
        isolation=isolation, consistency=consistency, lease=lease, archive=archive,
        watchdog=watchdog,
        s3=s3.settings(),
    )
    app = SidecarApp(settings)

    def on_signal(signum: int, frame: Any) -> None:
        app.request_stop()  # only a flag: the main thread does the stopping

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.start()
    try:
        while not app.wait(0.5):
            pass
    finally:
        app.stop()
    if app.fatal is not None:
        raise MysqlstsError(app.fatal)
    click.echo(f"sidecar: stopped pod={settings.identity.pod_name}", err=True)
