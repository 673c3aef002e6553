"""`mysqlsts sidecar`: parse flags into SidecarSettings, run the app until SIGTERM/SIGINT.
`mysqlsts checksum`: one consistency pass now, from the primary's sidecar container."""

from __future__ import annotations

import signal
from typing import Any

import click

from mysqlsts.adapters.fs import read_secret
from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.options import (
    DataDirOptions,
    FlavorOptions,
    IsolationOptions,
    ListenOptions,
    LocalServerOptions,
    PeerOptions,
    PodOptions,
    RootPasswordOptions,
    SecretOptions,
    SidecarOptions,
    StreamOptions,
    use,
)
from mysqlsts.secrets import Secrets
from mysqlsts.sidecar.settings import Endpoint, SidecarSettings


def build_settings(
    pod: PodOptions, peer: PeerOptions, root: RootPasswordOptions, secret: SecretOptions,
    data: DataDirOptions, flavor: FlavorOptions, local: LocalServerOptions,
    options: SidecarOptions, isolation: IsolationOptions | None = None,
    listen: ListenOptions | None = None, stream: StreamOptions | None = None,
) -> SidecarSettings:
    isolation = IsolationOptions() if isolation is None else isolation
    listen = ListenOptions() if listen is None else listen
    stream = StreamOptions() if stream is None else stream
    identity = pod.identity()
    peers = peer.directory(identity)
    primary = peers.primary()
    own = peers.address(identity.ordinal)
    files = secret.files(root)
    # Fail now, as one line, on a missing or empty Secret file; read again where used so a
    # rotated value takes effect without a restart.
    secrets = Secrets(files)
    secrets.root()
    secrets.replication()
    if identity.is_primary or not options.no_donor:
        secrets.backup()
    if not options.no_donor:
        secrets.token()
    return SidecarSettings(
        identity=identity,
        local=local.server(identity, peers),
        secrets=files,
        primary=Endpoint(options.primary_host or primary.host,
                         options.primary_port or primary.mysql_port),
        data_dir=data.data_dir,
        flavor=flavor.flavor,
        accounts=secret.accounts(),
        listen_address=listen.listen_address,
        http_port=own.http_port,
        clone_port=None if options.no_donor else own.clone_port,
        clone_max_rate=options.clone_max_rate,
        clone_compression=stream.clone_compression,
        poll_interval=options.poll_interval,
        heartbeat_interval=options.heartbeat_interval,
        heartbeat_database=options.heartbeat_database,
        max_lag=options.max_lag,
        max_staleness_primary_down=options.max_staleness_primary_down,
        liveness_threshold=options.liveness_threshold,
        connect_retry=options.connect_retry,
        consistency_check_interval=options.consistency_check_interval,
        consistency_chunk_rows=options.consistency_chunk_rows,
        consistency_duty_cycle=options.consistency_duty_cycle,
        isolation_fence_after=isolation.isolation_fence_after,
        isolation_api_endpoint=isolation.isolation_api_endpoint,
        peers=tuple(peers.address(n) for n in range(isolation.replicas)
                    if n != identity.ordinal),
    )


@click.command()
@use(PodOptions, "pod")
@use(PeerOptions, "peer")
@use(RootPasswordOptions, "root")
@use(SecretOptions, "secret")
@use(DataDirOptions, "data")
@use(FlavorOptions, "flavor")
@use(LocalServerOptions, "local")
@use(SidecarOptions, "options")
@use(IsolationOptions, "isolation")
@use(ListenOptions, "listen")
@use(StreamOptions, "stream")
def sidecar(
    pod: PodOptions, peer: PeerOptions, root: RootPasswordOptions, secret: SecretOptions,
    data: DataDirOptions, flavor: FlavorOptions, local: LocalServerOptions,
    options: SidecarOptions, isolation: IsolationOptions, listen: ListenOptions,
    stream: StreamOptions,
) -> None:
    """Set up replication, write heartbeats, serve clones, probes and metrics."""
    from mysqlsts.sidecar.app import SidecarApp

    settings = build_settings(pod, peer, root, secret, data, flavor, local, options,
                              isolation, listen, stream)
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


@click.command()
@use(PodOptions, "pod")
@use(PeerOptions, "peer")
@use(RootPasswordOptions, "root")
@use(LocalServerOptions, "local")
@use(SidecarOptions, "options")
@use(IsolationOptions, "isolation")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for each replica to apply the pass.")
def checksum(
    pod: PodOptions, peer: PeerOptions, root: RootPasswordOptions, local: LocalServerOptions,
    options: SidecarOptions, isolation: IsolationOptions, timeout: float,
) -> None:
    """Run one consistency pass now on the primary, wait for every replica to apply it, print
    each pod's result; exit 1 if any pod differs or could not be read. Run it in the primary's
    sidecar container, whose environment it reads:
    `kubectl exec mysql-0 -c sidecar -- mysqlsts checksum`."""
    from mysqlsts.consistency import Pod, check_set

    identity = pod.identity()
    if not identity.is_primary:
        raise ConfigError(f"{identity.pod_name} is a replica: run `mysqlsts checksum` in the "
                          f"primary's sidecar container ({identity.statefulset}-0)")
    peers = peer.directory(identity)
    server = local.server(identity, peers)
    primary = Pod(identity.pod_name, server.host, server.port)
    replicas = [Pod(f"{identity.statefulset}-{n}", peers.address(n).host,
                    peers.address(n).mysql_port) for n in range(1, isolation.replicas)]
    result = check_set(
        primary, replicas, password=read_secret(root.root_password_file, "root password"),
        database=options.heartbeat_database, chunk_rows=options.consistency_chunk_rows,
        duty_cycle=options.consistency_duty_cycle, wait_timeout=timeout,
    )
    click.echo(f"checksum: pass on {primary.name}: {result.check.sentence()}", err=True)
    for line in result.lines():
        click.echo(line)
    raise SystemExit(result.exit_code)
