"""`mysqlsts sidecar`: parse flags into SidecarSettings, run the app until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
from typing import Any

import click

from mysqlsts.options import (
    build_accounts,
    build_identity,
    build_local_server,
    build_peers,
    build_secrets,
    data_dir_option,
    env,
    flavor_option,
    local_server_options,
    peer_options,
    pod_options,
    secret_options,
)
from mysqlsts.sidecar.settings import Endpoint, SidecarSettings


def build_settings(kw: dict[str, Any]) -> SidecarSettings:
    identity = build_identity(kw)
    peers = build_peers(kw, identity)
    primary = peers.primary()
    own = peers.address(identity.ordinal)
    secrets = build_secrets(kw)
    # Fail now, as one line, on a missing or empty Secret file; read again where used so a
    # rotated value takes effect without a restart.
    secrets.root()
    secrets.replication()
    if identity.is_primary or not kw["no_donor"]:
        secrets.backup()
    if not kw["no_donor"]:
        secrets.token()
    return SidecarSettings(
        identity=identity,
        local=build_local_server(kw, identity, peers),
        secrets=secrets,
        primary=Endpoint(kw["primary_host"] or primary.host,
                         kw["primary_port"] or primary.mysql_port),
        data_dir=kw["data_dir"],
        flavor=kw["flavor"],
        accounts=build_accounts(kw),
        listen_address=kw["listen_address"],
        http_port=own.http_port,
        clone_port=None if kw["no_donor"] else own.clone_port,
        poll_interval=kw["poll_interval"],
        heartbeat_interval=kw["heartbeat_interval"],
        heartbeat_database=kw["heartbeat_database"],
        max_lag=kw["max_lag"],
        liveness_threshold=kw["liveness_threshold"],
        connect_retry=kw["connect_retry"],
    )


@click.command()
@pod_options
@peer_options
@secret_options
@data_dir_option
@flavor_option
@local_server_options
@click.option("--listen-address", envvar=env("LISTEN_ADDRESS"), default="0.0.0.0",
              show_default=True, help="Address the HTTP endpoints and the donor bind.")
@click.option("--primary-host", envvar=env("PRIMARY_HOST"), default=None,
              show_default="ordinal 0's peer host", help="Where replicas replicate from.")
@click.option("--primary-port", envvar=env("PRIMARY_PORT"), type=click.IntRange(1, 65535),
              default=None, show_default="ordinal 0's server port")
@click.option("--max-lag", envvar=env("MAX_LAG"), type=click.FloatRange(min=0, min_open=True),
              default=30.0, show_default=True,
              help="A replica whose heartbeat lag exceeds this (seconds) is not ready.")
@click.option("--liveness-threshold", envvar=env("LIVENESS_THRESHOLD"),
              type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="/livez fails when the server has not answered for this long (seconds).")
@click.option("--heartbeat-interval", envvar=env("HEARTBEAT_INTERVAL"),
              type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between the primary's heartbeat writes.")
@click.option("--heartbeat-database", envvar=env("HEARTBEAT_DATABASE"), default="mysqlsts",
              show_default=True, help="Database of the pt-heartbeat compatible table.")
@click.option("--poll-interval", envvar=env("POLL_INTERVAL"),
              type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between observations of the local server.")
@click.option("--connect-retry", envvar=env("CONNECT_RETRY"), type=click.IntRange(1, 86400),
              default=10, show_default=True,
              help="MASTER_CONNECT_RETRY: seconds between a replica's reconnects.")
@click.option("--no-donor", envvar=env("NO_DONOR"), is_flag=True, default=False,
              help="Do not serve backup streams on the clone port.")
def sidecar(**kw: Any) -> None:
    """Set up replication, write heartbeats, serve clones, probes and metrics."""
    from mysqlsts.sidecar.app import SidecarApp

    app = SidecarApp(build_settings(kw))

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
    click.echo(f"sidecar: stopped pod={kw['pod_name']}", err=True)

