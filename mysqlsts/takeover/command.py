"""`mysqlsts takeover`: parses and wires only. Every option is also a MYSQLSTS_TAKEOVER_* or
MYSQLSTS_* environment variable."""

from __future__ import annotations

import getpass
import logging
import signal
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from mysqlsts.errors import ConfigError, MysqlstsError, describe
from mysqlsts.options import IsolationOptions, env
from mysqlsts.takeover.fence import window_problem
from mysqlsts.takeover.model import TAKEOVER_ACTIONS, Action, Settings

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _seconds(name: str, default: int, help_text: str, minimum: int = 0) -> Callable[[F], F]:
    flag = "--" + name.lower().replace("_", "-")
    return click.option(
        flag, name.lower(), envvar=env(f"TAKEOVER_{name}"), show_envvar=True,
        type=click.IntRange(min=minimum), default=default, show_default=True,
        help=f"{help_text} (seconds).",
    )


def _option(*args: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*args, show_envvar=True, **kwargs)


@click.group(invoke_without_command=True)
@_option("--namespace", envvar=env("TAKEOVER_NAMESPACE"), default="default", show_default=True,
         help="Namespace of the watched StatefulSet's pods.")
@_option("--selector", envvar=env("TAKEOVER_SELECTOR"), default="app.kubernetes.io/name=mysql",
         show_default=True, help="Label selector of the watched pods.")
@_seconds("NODE_DOWN_AFTER", 300, "A node is down once not Ready and its Lease silent this long")
@click.option(
    "--isolation-fence-after", envvar=env("ISOLATION_FENCE_AFTER"), show_envvar=True,
    type=click.IntRange(min=1), default=IsolationOptions().isolation_fence_after,
    show_default=True,
    help="The sidecars' isolation fence window (seconds): an isolated primary turns read-only "
    "after it. --node-down-after must be at least twice this plus 60.",
)
@_seconds("HEALTHY_AFTER", 60, "Ready this long before our taint comes off a returned node")
@_option("--max-unhealthy", envvar=env("TAKEOVER_MAX_UNHEALTHY"), type=click.IntRange(min=0),
         default=1, show_default=True,
         help="Act only while at most this many nodes are down (and never more than half).")
@_seconds("COOLDOWN", 300, "At most one takeover per this long")
@_option("--action", envvar=env("TAKEOVER_ACTION"), default=str(Action.TAINT), show_default=True,
         type=click.Choice([str(a) for a in TAKEOVER_ACTIONS]),
         help="taint: the out-of-service taint (Kubernetes >= 1.28); delete-pods: force-delete "
         "the pods and their VolumeAttachments; delete-node: UNSAFE, see docs/takeover.md.")
@_option("--dry-run", envvar=env("TAKEOVER_DRY_RUN"), is_flag=True,
         help="Decide and report, write nothing (no Lease, no Event).")
@_option("--fence-command", envvar=env("TAKEOVER_FENCE_COMMAND"),
         type=click.Path(path_type=Path, dir_okay=False, exists=True),
         help="Run as `PATH NODE` before a takeover; it must exit 0 only when the machine is off.")
@_seconds("FENCE_TIMEOUT", 60, "How long the fence command may take", minimum=1)
@_option("--once", envvar=env("TAKEOVER_ONCE"), is_flag=True,
         help="One reconcile pass: one line per decision on stdout, then exit.")
@_seconds("INTERVAL", 10, "Between passes", minimum=1)
@_seconds("LEASE_DURATION", 30, "The leader Lease's duration", minimum=2)
@_option("--lease-name", envvar=env("TAKEOVER_LEASE_NAME"), default="mysqlsts-takeover",
         show_default=True, help="The leader-election Lease.")
@_option("--lease-namespace", envvar=[env("TAKEOVER_LEASE_NAMESPACE"), "POD_NAMESPACE"],
         default="default", show_default=True,
         help="Namespace of the leader Lease and the Events (the controller's own).")
@_option("--identity", envvar=[env("TAKEOVER_IDENTITY"), "POD_NAME"], default=socket.gethostname,
         show_default="$POD_NAME, else the hostname", help="This replica's name in the Lease.")
@_option("--http-port", envvar=env("TAKEOVER_HTTP_PORT"), type=click.IntRange(0, 65535),
         default=8080, show_default=True, help="/livez, /readyz, /metrics; 0 for none.")
@click.pass_context
def takeover(ctx: click.Context, /, **kw: Any) -> None:
    """Move the set's pods off a node that is really down (docs/takeover.md)."""
    if ctx.invoked_subcommand is not None:
        return
    problem = window_problem(timedelta(seconds=kw["node_down_after"]),
                             timedelta(seconds=kw["isolation_fence_after"]))
    if problem:
        raise ConfigError(problem)
    from mysqlsts.takeover.kube import Kube, connect

    settings = Settings(
        node_down_after=timedelta(seconds=kw["node_down_after"]),
        healthy_after=timedelta(seconds=kw["healthy_after"]),
        max_unhealthy=kw["max_unhealthy"],
        cooldown=timedelta(seconds=kw["cooldown"]),
        action=Action(kw["action"]),
        dry_run=kw["dry_run"],
    )
    kube = Kube(connect(), namespace=kw["namespace"], selector=kw["selector"],
                own_namespace=kw["lease_namespace"], lease_name=kw["lease_name"],
                identity=kw["identity"], read_attachments=settings.action is Action.DELETE_PODS)
    _run(kube, settings, kw)


def _one_pass(controller: Any) -> list[Any]:
    """--once: an API server that cannot be reached or refuses is one line, not a traceback
    (the loop instead logs it and tries again next pass)."""
    from mysqlsts.takeover.kube import API_FAILURES

    # urllib3's warning per retry would bury that line.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        decisions: list[Any] = controller.run_pass(report_all=True)
    except API_FAILURES as exc:
        # An ApiException's text carries the response's headers and body; a MaxRetryError's
        # the whole URL: the status, or the last connection error, says it.
        status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
        why = f"HTTP {status} {reason}" if status else describe(reason or exc)
        raise MysqlstsError(f"the Kubernetes API failed: {why}") from exc
    return decisions


def _run(kube: Any, settings: Settings, kw: dict[str, Any]) -> None:
    from mysqlsts.takeover.controller import Controller, Loop
    from mysqlsts.takeover.http import serve
    from mysqlsts.takeover.metrics import TakeoverMetrics

    loop = Loop(interval=timedelta(seconds=kw["interval"]),
                lease_duration=timedelta(seconds=kw["lease_duration"]),
                fence_command=kw["fence_command"],
                fence_timeout=timedelta(seconds=kw["fence_timeout"]))
    controller = Controller(kube, settings, loop, TakeoverMetrics())
    if kw["once"]:
        decisions = _one_pass(controller)
        if not controller.leading:
            click.echo(f"standby: the Lease {kw['lease_name']} is held by another replica")
        for decision in decisions:
            click.echo(decision.sentence())
        if not decisions and controller.leading:
            click.echo("nothing to do: no watched pod on a node that is not Ready")
        if any(d.error for d in decisions):
            raise SystemExit(1)
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the loop acts on it

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if kw["http_port"]:
        server = serve("0.0.0.0", kw["http_port"], controller.livez, controller.readyz,
                       controller.metrics.render)
    log.info("takeover: watching %s in namespace %s, action=%s dry_run=%s",
             kw["selector"], kw["namespace"], settings.action, settings.dry_run)
    controller.run(stop)
    if server is not None:
        server.shutdown()
        server.server_close()


@takeover.command()
@click.argument("node")
@_option("--by", envvar=env("TAKEOVER_FENCED_BY"), default=getpass.getuser,
         show_default="the current user", help="Who confirms it (kept in the annotation).")
def fence(node: str, by: str) -> None:
    """Record that NODE's machine is powered off, so the controller may act at once."""
    from mysqlsts.takeover.controller import utc_now
    from mysqlsts.takeover.kube import Kube, connect

    kube = Kube(connect(), namespace="", selector="", own_namespace="", lease_name="",
                identity=by, read_attachments=False)
    kube.fence(node, by, utc_now())
    click.echo(f"fenced: node {node} marked as powered off by {by}; the controller may now "
               "move its pods")
