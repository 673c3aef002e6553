"""`mysqlsts checksum`: one consistency pass now, from the primary's sidecar container."""

from __future__ import annotations

from dataclasses import replace

import click

from mysqlsts.adapters.fs import read_secret
from mysqlsts.errors import ConfigError
from mysqlsts.options import (
    ConsistencyOptions,
    HeartbeatOptions,
    IsolationOptions,
    LocalServerOptions,
    PeerOptions,
    PodOptions,
    RootPasswordOptions,
    use,
)


@click.command()
@use(PodOptions, "pod")
@use(PeerOptions, "peer")
@use(RootPasswordOptions, "root")
@use(LocalServerOptions, "local")
@use(HeartbeatOptions, "heartbeat")
@use(ConsistencyOptions, "consistency")
@use(IsolationOptions, "isolation")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds to wait for each replica to apply the pass.")
def checksum(
    pod: PodOptions, peer: PeerOptions, root: RootPasswordOptions, local: LocalServerOptions,
    heartbeat: HeartbeatOptions, consistency: ConsistencyOptions, isolation: IsolationOptions,
    timeout: float,
) -> None:
    """Run one consistency pass now on the primary, wait for every replica to apply it, print
    each pod's result; exit 1 if any pod differs or could not be read. Run it in the primary's
    sidecar container, whose environment it reads:
    `kubectl exec mysql-0 -c sidecar -- mysqlsts checksum`."""
    from mysqlsts.consistency.on_demand import check_set

    identity = pod.identity()
    if not identity.is_primary:
        raise ConfigError(f"{identity.pod_name} is a replica: run `mysqlsts checksum` in the "
                          f"primary's sidecar container ({identity.statefulset}-0)")
    peers = peer.directory(identity)
    server = local.server(identity, peers)
    # The primary is this pod's own server, reached as the sidecar reaches it.
    primary = replace(peers.address(0), host=server.host, mysql_port=server.port)
    replicas = [peers.address(n) for n in range(1, isolation.replicas)]
    result = check_set(
        identity.statefulset, primary, replicas,
        password=read_secret(root.root_password_file, "root password"),
        database=heartbeat.heartbeat_database, options=consistency, wait_timeout=timeout,
    )
    click.echo(f"checksum: pass on {identity.pod_name}: {result.check.sentence()}", err=True)
    for line in result.lines():
        click.echo(line)
    raise SystemExit(result.exit_code)
