"""`mysqlsts status` and the kubectl plugin `kubectl-mysqlsts`: parse, wire, print."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.options import PeerOptions
from mysqlsts.status.table import Fetched, build_rows, render_json, render_table


@click.command()
@click.option("-n", "--namespace", default=None,
              help="The set's namespace.  [default: the kubeconfig context's, else default]")
@click.option("-l", "--selector", default="app.kubernetes.io/name=mysql", show_default=True,
              help="Label selector of the set's pods.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=PeerOptions().http_port,
              show_default=True,
              help="The sidecar's HTTP port, reached through the API server's pod proxy.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None,
              help="Kubeconfig file.  [default: $KUBECONFIG, else ~/.kube/config, else the "
              "pod's service account]")
@click.option("--context", default=None, help="Kubeconfig context.  [default: current]")
@click.option("--timeout", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds to wait for each API request.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for scripts.")
@click.option("-w", "--watch", is_flag=True, help="Refresh until interrupted.")
@click.option("--interval", type=click.FloatRange(min=0.5), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="With --watch: stop after this many refreshes.")
def status(
    namespace: str | None, selector: str, http_port: int, kubeconfig: Path | None,
    context: str | None, timeout: float, as_json: bool, watch: bool, interval: float,
    count: int | None,
) -> None:
    """One table of the set: each pod's role, readiness, server_id, GTID position, lag,
    replication threads, errant transactions, last error and clone, from its sidecar's /status
    (read through the API server's pod proxy; a pod that cannot be read shows as unknown)."""
    try:
        from mysqlsts.kubeapi import connect
        from mysqlsts.status.kube import StatusApi
    except ImportError as exc:
        raise ConfigError(
            f"the kubernetes client is not installed ({exc.name}): pip install 'mysqlsts[kube]'"
        ) from exc

    connection = connect(kubeconfig=kubeconfig, context=context, request_timeout=timeout)
    ns = namespace or connection.namespace
    cluster = StatusApi(connection.api)
    shown = 0
    while True:
        pods = cluster.pods(ns, selector)
        if not pods:
            raise MysqlstsError(f"no pods match {selector} in namespace {ns}")
        with ThreadPoolExecutor(max_workers=min(8, len(pods))) as pool:
            fetched: dict[str, Fetched] = dict(zip(
                [pod.name for pod in pods],
                pool.map(lambda pod: cluster.sidecar_status(ns, pod.name, http_port), pods),
                strict=True,
            ))
        rows = build_rows(pods, fetched)
        if as_json:
            text = render_json(ns, rows, fetched)
        else:
            text = render_table(rows)
            if watch:
                text = f"{time.strftime('%H:%M:%S')}  namespace {ns}  ({selector})\n{text}"
        click.echo(text, nl=False)
        shown += 1
        if not watch or (count is not None and shown >= count):
            return
        time.sleep(interval)
        if not as_json:
            click.echo()
